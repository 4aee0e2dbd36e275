"""Noise-injection training (NIT): a fresh chip-like weight error on every forward; the model
is programmed once. Its early snapshot is the TSB backbone (DESIGN sections 3 and 5)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from tsblib.config import DeviceConfig
from tsblib.execution.context import Deployed, RobustContext, TrainContext, programmed_once
from tsblib.variation import training_noise


@dataclass
class NITObjective:
    """Cross-entropy of one forward with a fresh weight error at `sigma` on `names`."""

    names: list[str]
    """Weights mapped to devices."""
    sigma: float
    """Noise-injection sigma."""
    device: DeviceConfig
    """Device-variation model."""
    extra: nn.Module | None = None

    def __call__(self, model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noisy = training_noise(params, self.names, self.sigma, self.device, generator)
        return nn.functional.cross_entropy(functional_call(model, {**params, **noisy}, (x,)), y)


def nit_objective(names: list[str], sigma: float, device: DeviceConfig) -> NITObjective:
    """Noise-injection training: a fresh chip-like weight error on every forward."""
    return NITObjective(names, sigma, device)


def objective(ctx: TrainContext) -> NITObjective:
    return nit_objective(ctx.names, ctx.exp.train.sigma_train, ctx.device_model)


def robust(ctx: RobustContext) -> Deployed:
    """The NIT model programmed once onto each robustness chip."""
    model, clean = ctx.eval.trained("nit")
    return Deployed(lambda device: ctx.monte_carlo(model, device, "nit"), clean)


evaluate = programmed_once("nit")
"""The model programmed once onto every chip of the sweep."""
