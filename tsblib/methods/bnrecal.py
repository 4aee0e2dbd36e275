"""BatchNorm recalibration: re-estimate each chip's BatchNorm statistics on training images
with the chip's programmed weights (a digital fix that needs no write-verify)."""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.func import functional_call

from tsblib.config import RuntimeConfig
from tsblib.runtime import autocast


def bn_buffer_names(model: nn.Module) -> list[str]:
    """Names of the running_mean / running_var buffers of every BatchNorm."""
    return [f"{m}.{b}" for m, mod in model.named_modules()
            if isinstance(mod, nn.modules.batchnorm._BatchNorm) for b in ("running_mean", "running_var")]


@torch.no_grad()
def recalibrate(model: nn.Module, chip_params: dict[str, torch.Tensor],
                batches: list[tuple[torch.Tensor, torch.Tensor]],
                runtime: RuntimeConfig | None = None) -> dict[str, torch.Tensor]:
    """BatchNorm running statistics of `model` with one chip's weights, estimated as the
    cumulative average over `batches` (momentum None). The model itself is not modified."""
    runtime = runtime or RuntimeConfig()
    work = copy.deepcopy(model)
    for module in work.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    work.train()
    for x, _ in batches:
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
