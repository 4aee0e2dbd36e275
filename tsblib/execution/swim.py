"""SWIM selective write-verify: rank every mapped weight by a second-order estimate of the
loss increase its programming error causes, and write-verify the top p % over all layers.

Reference: Z. Yan, X. S. Hu, Y. Shi, "SWIM: Selective Write-Verify for Computing-in-Memory
Neural Accelerators", DAC 2022. SWIM expands the loss to second order around the trained
weights, L(W + dW) - L(W) ~ g^T dW + 1/2 dW^T H dW; with a zero-mean independent error and a
converged model (g ~ 0) the expected increase is sum_i 1/2 H_ii var(dW_i), so weight i is worth
verifying in proportion to 1/2 H_ii var(dW_i), ranked with one quantile over all layers.
We do not reproduce SWIM's own second-derivative computation: H_ii is estimated by the
diagonal of the empirical Fisher (the Gauss-Newton diagonal of the log-likelihood loss), the
mean over samples of the squared *per-sample* gradient, computed with `torch.func` (vmap of
grad over samples) in bounded-memory chunks.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from tsblib.config import DeviceConfig
from tsblib.devices.base import stack_of
from tsblib.execution.context import Deployed, EvalContext, Point, RobustContext
from tsblib.variation import mapped_weight_names

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""loss(outputs, targets) -> scalar mean loss of a batch (here always a batch of one sample)."""

PER_SAMPLE_GRAD_BUDGET = 512 * 2 ** 20
"""Bytes the per-sample gradients of one chunk may take when `chunk` is not given."""

MAX_AUTO_CHUNK = 256
"""Largest chunk chosen automatically (small models: the whole batch, up to this)."""


def _auto_chunk(model: nn.Module, names: list[str]) -> int:
    """Samples per vmap chunk so that chunk x (gradient of the `names` parameters) fits the budget."""
    params = dict(model.named_parameters())
    per_sample = sum(params[n].numel() * params[n].element_size() for n in names)
    return max(1, min(MAX_AUTO_CHUNK, PER_SAMPLE_GRAD_BUDGET // max(per_sample, 1)))


def fisher_diagonal(model: nn.Module, names: list[str],
                    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    chunk: int | None = None, loss: LossFn | None = None) -> dict[str, torch.Tensor]:
    """Diagonal of the empirical Fisher of the parameters `names`: F_ii = (1/N) sum_n g_{n,i}^2.

    g_n is the gradient of the loss of sample n alone (not of a batch mean), so F is a
    second-order quantity, the Gauss-Newton / Fisher estimate of the Hessian diagonal H_ii,
    rather than the squared mean gradient (mean_n g_n)^2 that vanishes at a minimum.

    The model is evaluated in eval mode (BatchNorm uses its running statistics, so every
    sample's loss is its own) and every module's mode is restored afterwards; its parameters
    are not modified. Samples are processed `chunk` at a time (`vmap(grad(...))` over each
    chunk), so memory is chunk x (size of the `names` parameters) plus one chunk's
    activations; None picks the chunk from PER_SAMPLE_GRAD_BUDGET. `loss` defaults to
    cross-entropy. Returns tensors shaped like the parameters, on their device, in the
    parameter dtype promoted to at least float32 (the accumulation dtype).
    """
    if chunk is not None and chunk < 1:
        raise ValueError(f"chunk = {chunk!r} is not allowed: expected an integer >= 1")
    named = dict(model.named_parameters())
    missing = [n for n in names if n not in named]
    if missing:
        raise KeyError(f"parameters {missing} are not in the model; it has {sorted(named)}")
    loss_fn = nn.functional.cross_entropy if loss is None else loss
    chunk = _auto_chunk(model, names) if chunk is None else int(chunk)
    trainable = {n: named[n].detach() for n in names}
    frozen = {n: p.detach() for n, p in named.items() if n not in trainable}
    frozen.update({n: b.detach() for n, b in model.named_buffers()})

    def sample_loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (params, frozen), (x.unsqueeze(0),))
        return loss_fn(out, y.unsqueeze(0))

    per_sample_grads = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    total = {n: torch.zeros_like(p, dtype=torch.promote_types(p.dtype, torch.float32))
             for n, p in trainable.items()}
    count = 0
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        for x, y in batches:
            for start in range(0, int(x.shape[0]), chunk):
                grads = per_sample_grads(trainable, x[start:start + chunk], y[start:start + chunk])
                for n, g in grads.items():
                    total[n] += g.to(total[n].dtype).square().sum(0)
            count += int(x.shape[0])
    finally:
        for module, training in modes:
            module.training = training
    if count == 0:
        raise ValueError("batches hold no samples: the Fisher diagonal needs at least one")
    return {n: t / count for n, t in total.items()}


def fisher_sensitivity(model: nn.Module, names: list[str],
                       batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                       device: DeviceConfig, sigma: float = 1.0, chunk: int | None = None,
                       loss: LossFn | None = None) -> dict[str, torch.Tensor]:
    """SWIM sensitivity of each weight: the expected loss increase 0.5 * F_ii * var(dW_i).

    F_ii is the per-sample empirical Fisher diagonal of `fisher_diagonal` (mean over all
    samples of the squared per-sample gradient of `loss`, cross-entropy by default), our
    estimate of SWIM's second derivative H_ii; var(dW_i) is the weight's expected squared error
    under the chips' device models (`stack_of(device).error_variance`; Gaussian:
    (error_std_factor(device) * sigma * max|W_layer|)^2), so sensitivities of different layers
    compare on one scale and a single global quantile (`top_fraction_mask`) can rank them. `batches` are
    (x, y) pairs; `chunk` bounds the samples differentiated at once (see `fisher_diagonal`).
    """
    fisher = fisher_diagonal(model, names, batches, chunk=chunk, loss=loss)
    return sensitivity_from_fisher(model, fisher, device, sigma)


def sensitivity_from_fisher(model: nn.Module, fisher: dict[str, torch.Tensor],
                            device: DeviceConfig, sigma: float = 1.0) -> dict[str, torch.Tensor]:
    """0.5 * F_ii * E[dW_i^2] for every weight of `fisher`, the expected squared error from the
    chips' device models at `sigma` (one Fisher diagonal serves every device model)."""
    params = dict(model.named_parameters())
    stack = stack_of(device)
    out = {}
    for n, f in fisher.items():
        var = stack.error_variance(params[n], sigma)
        out[n] = 0.5 * f * var.to(f.device)
    return out


def top_fraction_mask(sensitivity: dict[str, torch.Tensor], percent: float) -> dict[str, torch.Tensor]:
    """Boolean masks selecting the `percent` % most sensitive weights across all layers
    (one global top-k; ties broken by position, so exactly round(percent/100 * N) weights are chosen)."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent = {percent!r} is not allowed: expected a value in (0, 100]")
    names = list(sensitivity)
    flat = torch.cat([sensitivity[n].flatten().double().cpu() for n in names])
    k = int(round(percent / 100 * flat.numel()))
    chosen = torch.zeros_like(flat, dtype=torch.bool)
    if k:
        # A stable descending sort: among equal scores the earlier position wins.
        chosen[torch.sort(flat, descending=True, stable=True).indices[:k]] = True
    masks, offset = {}, 0
    for n in names:
        size = sensitivity[n].numel()
        masks[n] = chosen[offset:offset + size].reshape(sensitivity[n].shape)
        offset += size
    return masks


def picks_per_layer(masks: dict[str, torch.Tensor]) -> dict[str, int]:
    """Number of weights each layer's mask selects (where the write-verify budget lands)."""
    return {n: int(m.sum()) for n, m in masks.items()}


# ----------------------------------------------------------------------------- registry


def evaluate(ctx: EvalContext):
    """The NIT model with the top p % of weights by sensitivity write-verified: the whole sweep
    at `default_p`, the other p at the operating sigma."""
    params = ctx.exp.methods.of("swim")
    ev = ctx.exp.evaluation
    model, clean = ctx.trained("nit")
    names = mapped_weight_names(model)
    sens = fisher_sensitivity(model, names, ctx.calibration(params.sensitivity_batches * 250),
                              ctx.profile.device)
    for p in params.p_percent:
        mask = top_fraction_mask(sens, p)
        sigmas = ev.sigmas_for("swim") if p == params.default_p else (ev.operating_sigma,)
        for sigma in sigmas:
            yield Point("swim", sigma, clean, ctx.monte_carlo(model, sigma, desc=f"swim p={p} s={sigma}",
                                                              verify=mask), swim_p=p)


def robust(ctx: RobustContext) -> Deployed:
    """The NIT model on each robustness chip with the top `default_p` % of weights write-verified,
    ranked by the sensitivity under that chip's device model."""
    params = ctx.eval.exp.methods.of("swim")
    model, clean = ctx.eval.trained("nit")
    fisher = fisher_diagonal(model, mapped_weight_names(model),
                             ctx.eval.calibration(params.sensitivity_batches * 250))

    def chips(device):
        mask = top_fraction_mask(sensitivity_from_fisher(model, fisher, device, ctx.sigma),
                                 params.default_p)
        return ctx.monte_carlo(model, device, "swim", verify=mask)

    return Deployed(chips, clean)


