"""Clean training: plain cross-entropy, no noise; the ideal-gap reference (DESIGN section 6)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from tsblib.execution.context import TrainContext, programmed_once


@dataclass
class CleanObjective:
    """Plain cross-entropy of the noise-free forward."""

    extra: nn.Module | None = None

    def __call__(self, model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return nn.functional.cross_entropy(functional_call(model, params, (x,)), y)


def objective(ctx: TrainContext) -> CleanObjective:
    return CleanObjective()


evaluate = programmed_once("clean")
"""The model programmed once onto every chip of the sweep."""
