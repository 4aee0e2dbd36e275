"""The Tiny Shared Block: one residual, zero-initialised c x c 1x1 convolution shared by
every insertion point of a backbone, applied to each group of c channels (DESIGN section 3).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tsblib.config import Placement, Sharing, TSBConfig
from tsblib.models import BatchNorm2d


class TinySharedBlock(nn.Module):
    """y = x + T(x), T a c x c 1x1 convolution applied to every group of c channels."""

    stored_on_devices = True
    """Its kernel is mapped onto NVM devices like a conv or linear weight
    (`tsblib.variation.mapped_weight_names` reads this, so variation needs no import of tsb)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.weight = nn.Parameter(torch.zeros(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, channels, h, w = x.shape
        groups = x.reshape(n, channels // self.width, self.width, h, w)
        mixed = torch.einsum("oi,ngihw->ngohw", self.weight.to(x.dtype), groups)
        return x + mixed.reshape(n, channels, h, w)


class _BlockTable:
    """Plain holder so that BatchNorm wrappers reach the blocks without registering them twice."""

    def __init__(self, blocks: nn.ModuleDict) -> None:
        self.blocks = blocks


class BatchNormTSB(BatchNorm2d):
    """A BatchNorm2d followed by a (shared) Tiny Shared Block; parameter names stay unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self._tsb_table.blocks[self._tsb_key](super().forward(x))


def insertion_points(model: nn.Module) -> list[str]:
    """Names of the BatchNorm2d modules that follow a convolution, in forward-definition order."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.BatchNorm2d)]


def _select(points: list[str], placement: Placement) -> list[str]:
    half = (len(points) + 1) // 2
    return {Placement.ALL: points, Placement.FIRST: points[:1], Placement.LAST: points[-1:],
            Placement.FIRST_HALF: points[:half], Placement.SECOND_HALF: points[half:]}[placement]


def insertion_widths(model: nn.Module, placement: Placement) -> list[int]:
    """Channel counts of the insertion points `placement` selects, in order."""
    modules = dict(model.named_modules())
    return [modules[name].num_features for name in _select(insertion_points(model), placement)]


def insert_tsb(model: nn.Module, cfg: TSBConfig) -> nn.Module:
    """Insert the block into `model` in place and return it.

    The blocks live in `model.tsb` (a ModuleDict: 'shared', or 'w<C>' per width) and are
    zero-initialised, so the model's outputs are unchanged until the block is trained.
    """
    if hasattr(model, "tsb"):
        raise ValueError("the model already has a Tiny Shared Block")
    chosen = _select(insertion_points(model), cfg.placement)
    modules = dict(model.named_modules())
    widths = {name: modules[name].num_features for name in chosen}
    for name, channels in widths.items():
        if channels % cfg.width:
            raise ValueError(f"tsb.width = {cfg.width} does not divide the width {channels} of "
                             f"insertion point {name!r}; choose a divisor of every width "
                             f"({sorted(set(widths.values()))})")
    keys = {name: ("shared" if cfg.sharing is Sharing.SHARED else f"w{c}")
            for name, c in widths.items()}
    model.tsb = nn.ModuleDict({key: TinySharedBlock(cfg.width) for key in sorted(set(keys.values()))})
    table = _BlockTable(model.tsb)
    for name in chosen:
        bn = modules[name]
        bn.__class__ = BatchNormTSB  # keeps state, parameter names and isinstance(BatchNorm2d)
        bn._tsb_key = keys[name]
        bn._tsb_table = table
    return model


def tsb_weight_names(model: nn.Module) -> list[str]:
    """Parameter names of the Tiny Shared Block kernels of `model`."""
    return [name for name, _ in model.named_parameters() if name.startswith("tsb.")]


@dataclass(frozen=True)
class TSBOverhead:
    """What the block adds to a backbone."""

    block_weights: int
    """Weights of the block(s) (write-verified)."""
    backbone_weights: int
    """Mapped weights of the backbone (conv and linear weights)."""
    fraction: float
    """block_weights / backbone_weights."""
    added_macs: int
    """Multiply-accumulates the block adds per inference of one image."""
    backbone_macs: int
    """Multiply-accumulates of the backbone's conv and linear layers per image."""
    insertion_points: int
    """How many feature maps pass through a block."""


def tsb_overhead(model: nn.Module, input_shape: tuple[int, int, int]) -> TSBOverhead:
    """Count the block's weights and MACs against the backbone's, on one image of `input_shape`."""
    from tsblib.variation import mapped_weight_names

    params = dict(model.named_parameters())
    block = tsb_weight_names(model)
    backbone = [n for n in mapped_weight_names(model) if n not in block]
    macs = {"block": 0, "backbone": 0, "points": 0}

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if isinstance(module, BatchNormTSB):
            c = module._tsb_table.blocks[module._tsb_key].width
            macs["block"] += output[0].numel() * c
            macs["points"] += 1
        elif isinstance(module, nn.Conv2d):
            k = module.weight[0].numel()
            macs["backbone"] += output[0].numel() * k
        elif isinstance(module, nn.Linear):
            macs["backbone"] += module.weight.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear, BatchNormTSB))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        device = next(model.parameters()).device
        model(torch.zeros(1, *input_shape, device=device))
    model.train(was_training)
    for h in handles:
        h.remove()
    n_block = sum(params[n].numel() for n in block)
    n_backbone = sum(params[n].numel() for n in backbone)
    return TSBOverhead(block_weights=n_block, backbone_weights=n_backbone,
                       fraction=n_block / n_backbone, added_macs=macs["block"],
                       backbone_macs=macs["backbone"], insertion_points=macs["points"])
