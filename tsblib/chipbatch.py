"""Chip-parallel execution: run K chips of one model in a single forward pass by stacking the
chips along the channel dimension ([N, K*C, H, W]), with grouped convolutions and batched linears.

This avoids the layout copies that `torch.func.vmap` inserts around pooling and elementwise ops,
and works for any model built from Conv2d, Linear, BatchNorm2d, TinySharedBlock and channel-wise
operations (ReLU, pooling, residual adds, flatten), i.e. every model of `tsblib.models`.
"""
from __future__ import annotations

import copy
from typing import Mapping

import torch
from torch import nn

from tsblib.tsb import BatchNormTSB, TinySharedBlock


class _ChipConv(nn.Module):
    """K convolutions with stacked weights [K, Cout, Cin, kh, kw]; input shared or chip-stacked."""

    def __init__(self, conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.k = weight.shape[0]
        self.in_channels, self.groups = conv.in_channels, conv.groups
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.weight = weight.reshape(-1, *weight.shape[2:])
        self.bias = None if bias is None else bias.reshape(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = x.shape[1] == self.in_channels and self.k > 1
        groups = self.groups if shared else self.groups * self.k
        return nn.functional.conv2d(x, self.weight.to(x.dtype),
                                    None if self.bias is None else self.bias.to(x.dtype),
                                    self.stride, self.padding, self.dilation, groups)


class _ChipLinear(nn.Module):
    """K linear layers with stacked weights [K, out, in]; input [N, in] shared or [N, K*in]."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight, self.bias = weight, bias
        self.k, self.out_features, self.in_features = weight.shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if x.shape[1] == self.in_features and self.k > 1:
            y = torch.einsum("ni,koi->nko", x, self.weight.to(x.dtype))
        else:
            y = torch.einsum("nki,koi->nko", x.reshape(n, self.k, self.in_features),
                             self.weight.to(x.dtype))
        if self.bias is not None:
            y = y + self.bias.to(x.dtype)
        return y.reshape(n, self.k * self.out_features)


class _ChipBatchNorm(nn.Module):
    """Inference BatchNorm with per-chip (or shared) statistics, then the chip's TSB if any."""

    def __init__(self, k: int, weight, bias, mean, var, eps: float,
                 block: "_ChipBlock | None") -> None:
        super().__init__()
        def per_chip(t: torch.Tensor) -> torch.Tensor:
            return t if t.dim() == 2 else t.unsqueeze(0).expand(k, -1)
        scale = per_chip(weight) * torch.rsqrt(per_chip(var) + eps)
        self.scale = scale.reshape(-1)
        self.shift = (per_chip(bias) - per_chip(mean) * scale).reshape(-1)
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * self.scale.to(x.dtype)[:, None, None] + self.shift.to(x.dtype)[:, None, None]
        return y if self.block is None else self.block(y)


class _ChipBlock(nn.Module):
    """The Tiny Shared Block of each chip, weights [K, c, c], on chip-stacked features."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = weight
        self.k, self.width = weight.shape[0], weight.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, kc, h, w = x.shape
        groups = x.reshape(n, self.k, kc // (self.k * self.width), self.width, h, w)
        mixed = torch.einsum("koi,nkgihw->nkgohw", self.weight.to(x.dtype), groups)
        return x + mixed.reshape(n, kc, h, w)


def chip_batched(model: nn.Module, chip_params: Mapping[str, torch.Tensor],
                 chip_buffers: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """A copy of `model` (in eval mode) that runs K chips at once.

    `chip_params` maps parameter names to stacked per-chip values [K, ...] (the others are shared
    by all chips); `chip_buffers` may give per-chip BatchNorm statistics. Call the result on
    images [N, C, H, W]; it returns logits [K, N, classes]. Tensors in `chip_params` are used as
    given, so gradients flow to them (e.g. to fine-tune per-chip blocks).
    """
    k = next(iter(chip_params.values())).shape[0]
    chip_buffers = dict(chip_buffers or {})
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())

    def get(name: str) -> torch.Tensor | None:
        if name in chip_params:
            return chip_params[name]
        if name in chip_buffers:
            return chip_buffers[name]
        value = params.get(name, buffers.get(name))
        if value is None:
            return None
        return value.detach().unsqueeze(0).expand(k, *value.shape)

    work = copy.deepcopy(model).eval()
    blocks: dict[str, _ChipBlock] = {}
    if hasattr(work, "tsb"):
        for key in work.tsb:
            blocks[key] = _ChipBlock(get(f"tsb.{key}.weight"))
    replacements: dict[str, nn.Module] = {}
    for name, module in work.named_modules():
        if not name or name.startswith("tsb"):
            continue
        if isinstance(module, nn.Conv2d):
            bias = get(f"{name}.bias") if module.bias is not None else None
            replacements[name] = _ChipConv(module, get(f"{name}.weight"), bias)
        elif isinstance(module, nn.Linear):
            bias = get(f"{name}.bias") if module.bias is not None else None
            replacements[name] = _ChipLinear(get(f"{name}.weight"), bias)
        elif isinstance(module, nn.BatchNorm2d):
            block = blocks[module._tsb_key] if isinstance(module, BatchNormTSB) else None
            replacements[name] = _ChipBatchNorm(
                k, get(f"{name}.weight"), get(f"{name}.bias"), get(f"{name}.running_mean"),
                get(f"{name}.running_var"), module.eps, block)
        elif isinstance(module, TinySharedBlock):
            continue
        elif not list(module.children()) and any(True for _ in module.parameters(recurse=False)):
            raise TypeError(f"chip-parallel execution does not know module {name!r} "
                            f"({type(module).__name__}); add a rule in tsblib.chipbatch")
    for name, new in replacements.items():
        parent_name, _, attr = name.rpartition(".")
        parent = work.get_submodule(parent_name) if parent_name else work
        setattr(parent, attr, new)
    if hasattr(work, "tsb"):
        del work.tsb

    return ChipBatchedModel(work, k, {f"tsb.{key}.weight": b for key, b in blocks.items()})


class ChipBatchedModel(nn.Module):
    """K chips of a model in one pass: images [N, C, H, W] -> logits [K, N, classes]."""

    def __init__(self, inner: nn.Module, chips: int, blocks: dict[str, "_ChipBlock"]) -> None:
        super().__init__()
        self.inner = inner
        self.chips = chips
        self._blocks = blocks

    def set_blocks(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Replace the per-chip TSB weights ({'tsb.<key>.weight': [K, c, c]}), e.g. every
        fine-tuning step, without rebuilding the model."""
        for name, weight in weights.items():
            self._blocks[name].weight = weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        logits = self.inner(x)
        return logits.reshape(x.shape[0], self.chips, -1).transpose(0, 1)
