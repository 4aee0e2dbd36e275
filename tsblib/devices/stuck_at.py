"""`stuck_at`: manufacturing defects. Each device is, independently, stuck at its lowest level
(stuck-at-0, p_low) or its highest (stuck-at-1, p_high) whatever is programmed; write-verify cannot
repair it, so verify runs to its iteration cap (`write_verify.max_iterations`) and gives up.

Sources: stuck-at faults are the standard defect model of RRAM crossbars (e.g. Chen et al.,
"RRAM defect modeling and failure analysis based on march test and a novel squeeze-search
scheme", IEEE Trans. Computers, 2015), with stuck-at-0 (lowest conductance) more frequent than
stuck-at-1; CrossSim and aihwkit model them as devices pinned at G_min / G_max. The defaults, 1 %
and 0.1 %, are illustrative rates of that order, not a measured device.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tsblib.config import ConfigError, WriteVerifyConfig
from tsblib.devices.base import (DeviceModel, DeviceState, Phase, check_probability,
                                 register_device, straight_through)


@dataclass(frozen=True)
class StuckAtParams:
    """Probabilities of a device being stuck."""

    p_low: float = 0.01
    """Probability that a device is stuck at its lowest level (level 0, stuck-at-0)."""
    p_high: float = 0.001
    """Probability that a device is stuck at its highest level (2^device_bits - 1)."""

    def validate(self, key: str = "device.stuck_at", levels: int | None = None) -> None:
        """Both probabilities in [0, 1], and their sum too."""
        check_probability(f"{key}.p_low", self.p_low)
        check_probability(f"{key}.p_high", self.p_high)
        if self.p_low + self.p_high > 1:
            raise ConfigError(f"{key}.p_high = {self.p_high!r} is not allowed with p_low = "
                              f"{self.p_low!r}: expected p_low + p_high <= 1. Fix it in params.yaml.")


class StuckAtDevice(DeviceModel):
    """Stuck-at-0 / stuck-at-1 devices, fixed per chip, overriding programming and verify."""

    name = "stuck_at"
    phase = Phase.FAULT

    def _draw(self, shape: torch.Size, generator: torch.Generator,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.rand(shape, generator=generator, device=generator.device,
                       dtype=torch.float64).to(device)
        low = u < self.params.p_low
        high = (u >= self.params.p_low) & (u < self.params.p_low + self.params.p_high)
        return low, high

    def apply(self, state: DeviceState, sigma: float, generator: torch.Generator) -> None:
        """Draw the stuck devices of this layer and pin their levels."""
        levels = state.levels
        low, high = self._draw(levels.shape, generator, levels.device)
        top = float(self.slicer.max_level)
        state.levels = torch.where(low, torch.zeros_like(levels),
                                   torch.where(high, torch.full_like(levels, top), levels))
        stuck = low | high
        state.stuck = stuck if state.stuck is None else state.stuck | stuck

    def perturb(self, weight: torch.Tensor, noisy: torch.Tensor, sigma: float,
                generator: torch.Generator, verified: bool, wv: WriteVerifyConfig,
                batch_dims: int) -> torch.Tensor:
        """Fresh stuck devices: the weight change they cause (on the quantised target) added,
        gradients straight through."""
        def change(w: torch.Tensor) -> torch.Tensor:
            sliced = self.slicer.to_levels(w)
            if sliced is None:
                return torch.zeros_like(w)
            state = DeviceState(sliced=sliced, levels=sliced.digits, verified=False)
            self.apply(state, sigma, generator)
            return self.slicer.to_weight(sliced, state.levels) - self.slicer.to_weight(sliced, sliced.digits)

        return straight_through(weight, noisy, change, batch_dims)

    def error_variance(self, weight: torch.Tensor, sigma: float) -> torch.Tensor:
        """E[dW^2] = step^2 sum_j 4^(j b) (p_low d_j^2 + p_high (L - d_j)^2)."""
        sliced = self.slicer.to_levels(weight)
        if sliced is None:
            return torch.zeros_like(weight, dtype=torch.float32)
        d = sliced.digits
        top = float(self.slicer.max_level)
        per_device = self.params.p_low * d ** 2 + self.params.p_high * (top - d) ** 2
        sig = self.slicer.significance(weight.dim(), d.device)
        step = self.slicer.weight_step(sliced).double()
        return (per_device * sig ** 2).sum(0).mul(step ** 2).float().to(weight.device)

    def adjust_iterations(self, iterations: float, wv: WriteVerifyConfig) -> float:
        """A stuck device runs to the cap: (1 - p) E + p max_iterations (an upper bound: a device
        stuck at its own target level would verify at once)."""
        p = self.params.p_low + self.params.p_high
        return (1.0 - p) * iterations + p * wv.max_iterations


register_device(StuckAtDevice, StuckAtParams,
                "devices stuck at the lowest or highest level; write-verify cannot repair them")
