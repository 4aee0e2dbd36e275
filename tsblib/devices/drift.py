"""`drift`: PCM-like power-law conductance drift after programming,
G(t) = G(t0) (t / t0)^(-nu), with a device-to-device exponent nu ~ N(nu_mean, nu_std^2) (clipped
at 0), evaluated at a chosen time t after programming; optionally with a global drift
compensation that rescales each layer by the ratio of an all-ones read-out at t0 to the one at t.

Sources: the PCM statistical model of aihwkit (`PCMLikeNoiseModel.apply_drift_noise`,
t0 = 20 s, nu mean in [0.049, 0.1] and std in [0.008, 0.045] depending on the level, calibrated on
1 million PCM devices; Nandakumar et al., ICECS 2019; Joshi et al., Nature Communications 2020)
and its `GlobalDriftCompensation` (a constant factor per tile from the read-out of a fixed
input). Level 0 is taken as zero conductance, so a device's level scales with its conductance.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch

from tsblib.config import ConfigError, DeviceConfig, WriteVerifyConfig
from tsblib.devices.base import (DeviceModel, DeviceState, Phase, check_nonnegative, params_of,
                                 register_device, straight_through)


@dataclass(frozen=True)
class DriftParams:
    """Drift exponent distribution, evaluation time and compensation."""

    nu_mean: float = 0.06
    """Mean drift exponent nu (aihwkit's PCM: 0.049 ... 0.1)."""
    nu_std: float = 0.02
    """Device-to-device std of nu (aihwkit's PCM: 0.008 ... 0.045)."""
    t0_seconds: float = 20.0
    """Time of the reference read after programming, seconds (aihwkit: 20 s); no drift at t0."""
    t_seconds: float = 20.0
    """Time after programming at which the chip is used, seconds (>= t0_seconds)."""
    compensation: bool = False
    """Global drift compensation: rescale each layer by read-out(t0) / read-out(t)."""

    def validate(self, key: str = "device.drift", levels: int | None = None) -> None:
        """Exponent statistics and times non-negative, t >= t0 > 0."""
        check_nonnegative(f"{key}.nu_mean", self.nu_mean, "a drift exponent >= 0")
        check_nonnegative(f"{key}.nu_std", self.nu_std, "a standard deviation >= 0")
        check_nonnegative(f"{key}.t0_seconds", self.t0_seconds, "a time > 0 seconds")
        if self.t0_seconds <= 0:
            raise ConfigError(f"{key}.t0_seconds = {self.t0_seconds!r} is not allowed: expected a "
                              f"time > 0 seconds. Fix it in params.yaml.")
        check_nonnegative(f"{key}.t_seconds", self.t_seconds, "a time >= 0 seconds")
        if self.t_seconds < self.t0_seconds:
            raise ConfigError(f"{key}.t_seconds = {self.t_seconds!r} is not allowed: expected a "
                              f"time >= t0_seconds = {self.t0_seconds!r} (drift is measured from "
                              f"the reference read). Fix it in params.yaml.")

    @property
    def log_ratio(self) -> float:
        """ln(t / t0)."""
        return math.log(self.t_seconds / self.t0_seconds)


class DriftDevice(DeviceModel):
    """Per-device power-law decay of the programmed levels at time t, optionally compensated."""

    name = "drift"
    phase = Phase.TIME

    def factors(self, shape: torch.Size, generator: torch.Generator,
                device: torch.device) -> torch.Tensor:
        """(t/t0)^(-nu) of every device, nu drawn per device (always drawn, so that a chip's
        other draws do not depend on t)."""
        p = self.params
        nu = (p.nu_mean + p.nu_std * torch.randn(shape, generator=generator, device=generator.device,
                                                 dtype=torch.float64)).clamp(min=0).to(device)
        return torch.exp(-nu * p.log_ratio)

    def apply(self, state: DeviceState, sigma: float, generator: torch.Generator) -> None:
        """Drift every device of the layer; compensation divides by the layer's total
        conductance loss (the all-ones read-out of both arrays of the differential pair)."""
        before = state.levels
        after = before * self.factors(before.shape, generator, before.device)
        if self.params.compensation:
            sig = self.slicer.significance(before.dim() - 1, before.device)
            ref = (before.abs() * sig).sum()
            now = (after.abs() * sig).sum()
            if now > 0:
                after = after * (ref / now)
        state.levels = after

    def perturb(self, weight: torch.Tensor, noisy: torch.Tensor, sigma: float,
                generator: torch.Generator, verified: bool, wv: WriteVerifyConfig,
                batch_dims: int) -> torch.Tensor:
        """The drift change of the quantised target at time t (fresh exponents), straight
        through; nothing at t = t0."""
        if self.params.log_ratio == 0:
            return noisy

        def change(w: torch.Tensor) -> torch.Tensor:
            sliced = self.slicer.to_levels(w)
            if sliced is None:
                return torch.zeros_like(w)
            state = DeviceState(sliced=sliced, levels=sliced.digits, verified=False)
            self.apply(state, sigma, generator)
            return self.slicer.to_weight(sliced, state.levels) - self.slicer.to_weight(sliced, sliced.digits)

        return straight_through(weight, noisy, change, batch_dims)

    def moments(self) -> tuple[float, float]:
        """E[f] and E[f^2] of f = (t/t0)^(-nu) for nu ~ N(mu, s^2) (lognormal; clipping at 0
        ignored)."""
        p, L = self.params, self.params.log_ratio
        mean = math.exp(-p.nu_mean * L + 0.5 * (p.nu_std * L) ** 2)
        square = math.exp(-2 * p.nu_mean * L + 2 * (p.nu_std * L) ** 2)
        return mean, square

    def error_variance(self, weight: torch.Tensor, sigma: float) -> torch.Tensor | float:
        """E[dW^2] = step^2 sum_j 4^(j b) d_j^2 m2, with m2 = E[(f - 1)^2] uncompensated and
        Var f / E[f]^2 compensated (the compensation factor taken as 1 / E[f])."""
        if self.params.log_ratio == 0:
            return 0.0
        sliced = self.slicer.to_levels(weight)
        if sliced is None:
            return torch.zeros_like(weight, dtype=torch.float32)
        mean, square = self.moments()
        m2 = (square - mean ** 2) / mean ** 2 if self.params.compensation else square - 2 * mean + 1
        sig = self.slicer.significance(weight.dim(), sliced.digits.device)
        step = self.slicer.weight_step(sliced).double()
        return ((sliced.digits * sig) ** 2).sum(0).mul(m2 * step ** 2).float().to(weight.device)


register_device(DriftDevice, DriftParams,
                "PCM-like power-law conductance drift at a time after programming, optional compensation")


def at_programming(device: DeviceConfig) -> DeviceConfig:
    """`device` right after programming: with `drift`, at its reference time t0 (what a chip
    read back at programming shows); any other device model as it is."""
    if "drift" not in device.model:
        return device
    drift = params_of(device, "drift")
    return dataclasses.replace(device, params={**device.params, "drift": dataclasses.replace(
        drift, t_seconds=drift.t0_seconds)})
