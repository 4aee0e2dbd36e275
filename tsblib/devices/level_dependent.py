"""`level_dependent`: the programming-error std of a device depends on what it stores.

Two sources of dependence, which multiply:

- **Weight band presets** of the NFT authors (Qin et al., 2025 follow-up of "Negative Feedback
  Training", their level-dependent device presets): weights with 0.25 < |w| / max|w| < 0.75
  (mid-range conductances, the hardest to program) get their error multiplied by s, and sigma is
  first divided by sqrt(0.4 s^2 + 0.6) so that, with 40 % of the weights in that band, the
  average error variance equals the Gaussian model's. Presets: s = 1 `rram1`, 2 `fefet2`,
  4 `rram4`, 6 `fefet6`.
- **A per-level table** a user fills from measurements: `level_std[l]` multiplies the error std
  of a device programmed to level l (2^device_bits entries; e.g. measured std at each level
  divided by the nominal one), as CrossSim's device models make programming error a function of
  the target conductance.

Each device's error is N(0, (sigma ref m t_l)^2); write-verify repeats until |error| < delta, so
a verified device keeps a Gaussian of its own std truncated to [-delta, delta].
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from tsblib import writeverify
from tsblib.config import ConfigError, WriteVerifyConfig
from tsblib.devices.base import DeviceModel, DeviceState, Phase, register_device

PRESETS: dict[str, float] = {"rram1": 1.0, "fefet2": 2.0, "rram4": 4.0, "fefet6": 6.0}
"""The NFT authors' level-dependent presets: name -> multiplier s of the mid band."""

BAND = (0.25, 0.75)
"""|w| / max|w| band whose error is multiplied by s (open interval)."""

BAND_SHARE = 0.4
"""Share of weights the normalisation sqrt(0.4 s^2 + 0.6) assumes inside the band."""


@dataclass(frozen=True)
class LevelDependentParams:
    """Parameters of the level-dependent programming error."""

    preset: str | None = None
    """One of 'rram1', 'fefet2', 'rram4', 'fefet6' (sets `s`); null = use `s` as given."""
    s: float = 1.0
    """Multiplier of the error of weights with 0.25 < |w|/max|w| < 0.75 (sigma divided by
    sqrt(0.4 s^2 + 0.6)); 1 = no weight-band dependence. Ignored when `preset` is set."""
    level_std: tuple[float, ...] = ()
    """Per-level std multipliers, one per device level (2^device_bits values, level 0 first),
    e.g. from measurements; empty = 1 at every level."""

    def validate(self, key: str = "device.level_dependent", levels: int | None = None) -> None:
        """Check the preset name, s > 0 and the table (length `levels`, values >= 0)."""
        if self.preset is not None and self.preset not in PRESETS:
            raise ConfigError(f"{key}.preset = {self.preset!r} is not allowed: expected null or "
                              f"one of {sorted(PRESETS)}. Fix it in params.yaml.")
        if not (math.isfinite(self.s) and self.s > 0):
            raise ConfigError(f"{key}.s = {self.s!r} is not allowed: expected a number > 0. "
                              f"Fix it in params.yaml.")
        if self.level_std:
            if levels is not None and len(self.level_std) != levels:
                raise ConfigError(f"{key}.level_std = {list(self.level_std)!r} is not allowed: "
                                  f"expected {levels} values, one per level of a "
                                  f"{int(math.log2(levels))}-bit device (level 0 first). "
                                  f"Fix it in params.yaml.")
            for v in self.level_std:
                if not (math.isfinite(v) and v >= 0):
                    raise ConfigError(f"{key}.level_std = {list(self.level_std)!r} is not "
                                      f"allowed: expected values >= 0. Fix it in params.yaml.")

    @property
    def multiplier(self) -> float:
        """s of the mid band (from the preset when one is named)."""
        return PRESETS[self.preset] if self.preset is not None else self.s


class LevelDependentDevice(DeviceModel):
    """Per-device Gaussian error whose std depends on the weight band and the device level."""

    name = "level_dependent"
    phase = Phase.PROGRAM

    def _band_factor(self, weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """m(w): s / sqrt(0.4 s^2 + 0.6) inside the band, 1 / sqrt(0.4 s^2 + 0.6) outside."""
        s = self.params.multiplier
        norm = math.sqrt(BAND_SHARE * s * s + 1.0 - BAND_SHARE)
        r = weight.detach().abs() / scale
        inside = (r > BAND[0]) & (r < BAND[1])
        return torch.where(inside, s / norm, 1.0 / norm).to(torch.float64)

    def _level_factor(self, digits: torch.Tensor) -> torch.Tensor | float:
        """t_l of every device (its level's table entry), or 1."""
        if not self.params.level_std:
            return 1.0
        table = torch.tensor(self.params.level_std, dtype=torch.float64, device=digits.device)
        return table[digits.long()]

    def device_std(self, state: DeviceState, sigma: float) -> torch.Tensor:
        """Error std of every device, in levels [n, *W.shape]."""
        sliced = state.sliced
        band = self._band_factor(sliced.weight, sliced.scale.double())
        return (sigma * self.slicer.sigma_reference) * band.unsqueeze(0) \
            * self._level_factor(sliced.digits)

    def device_error(self, state: DeviceState, sigma: float, generator: torch.Generator,
                     wv: WriteVerifyConfig) -> torch.Tensor:
        """N(0, std^2) per device; verified devices keep the Gaussian of their own std truncated
        to [-delta, delta] (inverse CDF, exact in distribution)."""
        std = self.device_std(state, sigma).expand(state.sliced.digits.shape)
        err = torch.randn(std.shape, generator=generator, device=generator.device,
                          dtype=torch.float64).to(std.device) * std
        if state.verified is False:
            return err
        delta = writeverify.delta_for(sigma, wv) * self.slicer.sigma_reference
        res = truncated_normal(std, delta, generator)
        mask = state.verified
        if mask is True:
            return res
        return torch.where(mask.to(std.device).unsqueeze(0), res, err)

    def perturb(self, weight: torch.Tensor, noisy: torch.Tensor, sigma: float,
                generator: torch.Generator, verified: bool, wv: WriteVerifyConfig,
                batch_dims: int) -> torch.Tensor:
        """A fresh Gaussian weight error with this weight's std (its devices' variances summed);
        the write-verify residual (Gaussian with the residual's std) for verified weights."""
        s = sigma if not verified else writeverify.residual_std(sigma, writeverify.delta_for(sigma, wv))
        if batch_dims:
            var = torch.stack([self.error_variance(weight[k], s) for k in range(weight.shape[0])])
        else:
            var = self.error_variance(weight, s)
        z = torch.randn(weight.shape, generator=generator, device=generator.device,
                        dtype=weight.dtype).to(weight.device)
        return noisy + var.sqrt().to(weight.dtype) * z

    def error_variance(self, weight: torch.Tensor, sigma: float) -> torch.Tensor:
        """sum_j 4^(j b) std_j^2 (max|W| / full scale)^2 per weight (quantisation excluded)."""
        sliced = self.slicer.to_levels(weight)
        if sliced is None:
            return torch.zeros_like(weight, dtype=torch.float32)
        state = DeviceState(sliced=sliced, levels=sliced.digits, verified=False)
        std = self.device_std(state, sigma).expand(sliced.digits.shape)
        sig = self.slicer.significance(weight.dim(), std.device)
        step = self.slicer.weight_step(sliced).double()
        return ((std * sig) ** 2).sum(0).mul(step ** 2).float().to(weight.device)

    def verify_iterations(self, sigma: float, delta: float) -> float:
        """Mean of 1 / P(|e| < delta) over devices, assuming levels equally frequent and 40 % of
        the weights in the band (the presets' own assumption)."""
        if sigma == 0:
            return 1.0
        s = self.params.multiplier
        norm = math.sqrt(BAND_SHARE * s * s + 1.0 - BAND_SHARE)
        table = self.params.level_std or (1.0,)
        total = 0.0
        for share, band in ((BAND_SHARE, s / norm), (1.0 - BAND_SHARE, 1.0 / norm)):
            for t in table:
                std = sigma * band * t
                total += share / len(table) * (writeverify.expected_iterations(std, delta)
                                                if std > 0 else 1.0)
        return total


def truncated_normal(std: torch.Tensor, delta: float, generator: torch.Generator) -> torch.Tensor:
    """N(0, std^2) truncated to [-delta, delta], elementwise std (0 gives 0), by inverse CDF on
    the lower tail in float64, on `std`'s device."""
    std = std.to(torch.float64)
    safe = torch.where(std > 0, std, torch.ones_like(std))
    a = delta / safe
    lo = 0.5 * torch.special.erfc(a / math.sqrt(2.0))
    u = torch.rand(std.shape, generator=generator, device=generator.device,
                   dtype=torch.float64).to(std.device)
    x = torch.special.ndtri(lo + u * (0.5 - lo))
    sign = (torch.randint(0, 2, std.shape, generator=generator, device=generator.device)
            .to(std.device) * 2 - 1)
    x = torch.maximum(torch.minimum(x * sign, a), -a) * safe
    return torch.where(std > 0, x, torch.zeros_like(x))


register_device(LevelDependentDevice, LevelDependentParams,
                "programming error whose std depends on the weight band (NFT presets) and level table")
