"""The bit-slice converter: weight -> device levels -> weight, kept apart from every error model.

A layer's max|W| maps to full scale; |W| is quantised to `weight_bits` and split into
`weight_bits / device_bits` devices of `device_bits` each, combined by shift-and-add (DESIGN
section 2). The sign is digital (a differential pair), so every device stores a magnitude digit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tsblib.config import DeviceConfig, SigmaConvention


@dataclass(frozen=True)
class Sliced:
    """A layer's weights as device levels (float64, detached)."""

    weight: torch.Tensor
    """The target weights W, float64."""
    scale: torch.Tensor
    """max|W| (0-dim, or keeping the chip dimension when sliced per chip), in W's dtype."""
    digits: torch.Tensor
    """Target level of every device, [devices_per_weight, *W.shape], float64 integers."""


class BitSlicer:
    """Maps weights onto devices and back for one `DeviceConfig` (weight_bits, device_bits,
    convention); device errors are added to the levels in between by the device models."""

    def __init__(self, device: DeviceConfig) -> None:
        self.weight_bits = device.weight_bits
        self.device_bits = device.device_bits
        self.devices = device.devices_per_weight
        """Devices per weight."""
        self.max_level = 2 ** device.device_bits - 1
        """Highest level of one device (levels 0 .. max_level)."""
        self.full_scale = 2 ** device.weight_bits - 1
        """Quantised magnitude of max|W|."""
        self.convention = device.convention

    @property
    def sigma_reference(self) -> float:
        """Size of the unit sigma is measured in, in device levels (range = 2^b - 1 levels)."""
        return float(self.max_level) if self.convention is SigmaConvention.DEVICE_RANGE else 1.0

    @property
    def error_std_factor(self) -> float:
        """std(dW) / (sigma * max|W|) when every device has error std sigma * reference levels:
        reference * sqrt(sum_j 4^(j b)) / ((2^b - 1) sum_j 2^(j b)) (0.7776 for 8-bit weights on
        2-bit devices, sigma relative to the device range)."""
        b, n = self.device_bits, self.devices
        num = math.sqrt(sum(4 ** (j * b) for j in range(n)))
        den = self.max_level * sum(2 ** (j * b) for j in range(n))
        return self.sigma_reference * num / den

    def significance(self, ndim: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """2^(j b) of device j, shaped [n, 1, ..., 1] to broadcast over a weight of `ndim` dims."""
        return torch.tensor([2.0 ** (j * self.device_bits) for j in range(self.devices)],
                            dtype=torch.float64, device=device).view(-1, *([1] * ndim))

    def to_levels(self, weight: torch.Tensor, batch_dims: int = 0) -> Sliced | None:
        """Slice `weight` (detached) into device levels; None when the layer is all zeros.

        With `batch_dims` = 1 the first dimension indexes chips and each chip has its own
        max|W| (stacked Tiny Shared Blocks)."""
        if batch_dims:
            scale = weight.detach().abs().amax(dim=tuple(range(batch_dims, weight.dim())),
                                               keepdim=True)
            if bool((scale == 0).any()):
                return None
        else:
            scale = weight.detach().abs().max()
            if scale == 0:
                return None
        w = weight.detach().double()
        q = torch.round(w.abs() / scale * self.full_scale).long()
        digits = torch.stack([(q >> (j * self.device_bits)) & self.max_level
                              for j in range(self.devices)]).double()
        return Sliced(weight=w, scale=scale, digits=digits)

    def to_weight(self, sliced: Sliced, levels: torch.Tensor) -> torch.Tensor:
        """Recombine (programmed) device levels into weights, float64, with the target's sign.

        Zero weights have sign 0: their devices are mapped with a positive sign so that their
        device errors are kept."""
        w = sliced.weight
        programmed = (levels * self.significance(w.dim(), w.device)).sum(0)
        new = torch.sign(w) * programmed / self.full_scale * sliced.scale
        return torch.where(w == 0, programmed / self.full_scale * sliced.scale, new)

    def weight_step(self, sliced: Sliced) -> torch.Tensor:
        """Weight change of one level of the least significant device: max|W| / full scale."""
        return sliced.scale / self.full_scale

    def quantize(self, weight: torch.Tensor) -> torch.Tensor:
        """The noise-free programmed weight: |W| quantised to `weight_bits` levels of max|W|."""
        scale = weight.detach().abs().max()
        if scale == 0:
            return weight.clone()
        w = weight.detach().double()
        q = torch.round(w.abs() / scale * self.full_scale)
        return (torch.sign(w) * q / self.full_scale * scale).to(weight.dtype)
