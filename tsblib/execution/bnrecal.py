"""BatchNorm recalibration: re-estimate each chip's BatchNorm statistics on training images
with the chip's programmed weights (a digital fix that needs no write-verify)."""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call

from tsblib.config import RuntimeConfig
from tsblib.execution.context import Deployed, EvalContext, PerChip, Point, RobustContext
from tsblib.runtime import autocast


def bn_buffer_names(model: nn.Module) -> list[str]:
    """Names of the running_mean / running_var buffers of every BatchNorm."""
    return [f"{m}.{b}" for m, mod in model.named_modules()
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) for b in ("running_mean", "running_var")]


@torch.no_grad()
def recalibrate(model: nn.Module, chip_params: dict[str, torch.Tensor],
                batches: list[tuple[torch.Tensor, torch.Tensor]],
                runtime: RuntimeConfig | None = None) -> dict[str, torch.Tensor]:
    """BatchNorm running statistics of `model` with one chip's weights: the average of the
    batches' statistics weighted by batch size. The model itself is not modified."""
    runtime = runtime or RuntimeConfig()
    work = copy.deepcopy(model)
    norms = [m for m in work.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for module in norms:
        module.reset_running_stats()
    work.train()
    seen = 0
    for x, _ in batches:
        # weight each batch by its size, so a short last batch counts as much as its images
        seen += x.shape[0]
        for module in norms:
            module.momentum = x.shape[0] / seen
        with autocast(runtime, x.device):
            functional_call(work, dict(chip_params), (x,), strict=False)
    buffers = dict(work.named_buffers())
    return {n: buffers[n].detach().clone() for n in bn_buffer_names(work)}


def recalibrate_chips(model: nn.Module, stacked: dict[str, torch.Tensor],
                      batches: list[tuple[torch.Tensor, torch.Tensor]],
                      runtime: RuntimeConfig | None = None) -> dict[str, torch.Tensor]:
    """Per-chip BatchNorm statistics for stacked chip weights [K, ...]; returns stacked buffers."""
    k = next(iter(stacked.values())).shape[0]
    per_chip = [recalibrate(model, {n: w[i] for n, w in stacked.items()}, batches, runtime)
                for i in range(k)]
    return {n: torch.stack([chip[n] for chip in per_chip]) for n in per_chip[0]}


def recalibration_hook(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]],
                       runtime: RuntimeConfig | None = None) -> PerChip:
    """The `per_chip` hook of `monte_carlo` that re-estimates each chip's BatchNorm statistics
    on `batches` (training images)."""

    def hook(index: list[int], stacked: dict[str, torch.Tensor]):
        return stacked, recalibrate_chips(model, stacked, batches, runtime)

    return hook


def evaluate(ctx: EvalContext):
    """The NIT model on every chip of the sweep, each chip's BatchNorm re-estimated."""
    model, clean = ctx.trained("nit")
    images = ctx.exp.methods.of("nit_bnrecal").images
    hook = recalibration_hook(model, ctx.calibration(images), ctx.profile.runtime)
    for sigma in ctx.exp.evaluation.sigmas_for("nit_bnrecal"):
        yield Point("nit_bnrecal", sigma, clean,
                    ctx.monte_carlo(model, sigma, desc=f"bn recal s={sigma}", per_chip=hook))


def robust(ctx: RobustContext) -> Deployed:
    """The NIT model on each robustness chip, the chip's BatchNorm re-estimated."""
    model, clean = ctx.eval.trained("nit")
    calibration = ctx.eval.calibration(ctx.eval.exp.methods.of("nit_bnrecal").images)

    def chips(device):
        hook = recalibration_hook(model, calibration, ctx.eval.profile.runtime)
        return ctx.monte_carlo(model, device, "bnrecal", per_chip=hook)

    return Deployed(chips, clean)


