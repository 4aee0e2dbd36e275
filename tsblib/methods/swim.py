"""SWIM-style selective write-verify: rank weights by a second-order sensitivity estimate and
write-verify the top p % (Yan et al., "SWIM", DAC 2022, as we read it)."""
from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call

from tsblib.config import DeviceConfig
from tsblib.variation import error_std_factor


def fisher_sensitivity(model: nn.Module, names: list[str],
                       batches: list[tuple[torch.Tensor, torch.Tensor]],
                       device: DeviceConfig, sigma: float = 1.0) -> dict[str, torch.Tensor]:
    """Expected loss increase of perturbing each weight: 0.5 * F_ii * var(dW_i), where F is the
    empirical Fisher (mean squared mini-batch gradient, a diagonal Hessian estimate) and
    var(dW_i) = (error_std_factor * sigma * max|W_layer|)^2 the weight's programming variance."""
    model.eval()
    params = {n: p.detach().clone().requires_grad_(n in names) for n, p in model.named_parameters()}
    fisher = {n: torch.zeros_like(params[n]) for n in names}
    for x, y in batches:
        loss = nn.functional.cross_entropy(functional_call(model, params, (x,)), y)
        grads = torch.autograd.grad(loss, [params[n] for n in names])
        for n, g in zip(names, grads):
            fisher[n] += g.detach() ** 2
    out = {}
    for n in names:
        var = (error_std_factor(device) * sigma * params[n].detach().abs().max()) ** 2
        out[n] = 0.5 * fisher[n] / len(batches) * var
    return out


def top_fraction_mask(sensitivity: dict[str, torch.Tensor], percent: float) -> dict[str, torch.Tensor]:
    """Boolean masks selecting the `percent` % most sensitive weights across all layers
    (ties broken by position, so exactly round(percent/100 * N) weights are chosen)."""
    if not 0 < percent <= 100:
        raise ValueError(f"percent = {percent!r} is not allowed: expected a value in (0, 100]")
    names = list(sensitivity)
    flat = torch.cat([sensitivity[n].flatten().double().cpu() for n in names])
    k = int(round(percent / 100 * flat.numel()))
    chosen = torch.zeros_like(flat, dtype=torch.bool)
    if k:
        chosen[torch.topk(flat, k, sorted=False).indices] = True
    masks, offset = {}, 0
    for n in names:
        size = sensitivity[n].numel()
        masks[n] = chosen[offset:offset + size].reshape(sensitivity[n].shape)
        offset += size
    return masks
