"""Clean training: plain cross-entropy, no noise; the ideal-gap reference (DESIGN section 6)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from tsblib.methods.context import TrainContext, programmed_once
from tsblib.methods.registry import MethodSpec, register


@dataclass
class CleanObjective:
    """Plain cross-entropy of the noise-free forward."""

    extra: nn.Module | None = None

    def __call__(self, model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return nn.functional.cross_entropy(functional_call(model, params, (x,)), y)


def _objective(ctx: TrainContext) -> CleanObjective:
    return CleanObjective()


SPEC = register(MethodSpec(
    name="clean", label="clean training", color="#7f7f7f", marker="o", order=0,
    description="trained without noise, programmed once (reference of the ideal gap)",
    trained_from="clean", objective=_objective, evaluate=programmed_once("clean"),
    selects_epoch_on="clean"))
