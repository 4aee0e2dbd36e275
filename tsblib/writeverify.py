"""Write-verify model: tolerance delta, iterations per device and truncated-Gaussian residual.
Also the expected weights-to-device mapping cost (pulses, reads, time, energy) of a model."""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from scipy.optimize import brentq

from tsblib.config import DeviceConfig, MappingCostConfig, WriteVerifyConfig

# Each device's programmed value deviates from its target by e ~ N(0, sigma^2); write-verify
# re-programs it until |e| < delta (DESIGN section 2). Iterations are Geometric(p) with
# p = erf(delta / (sigma sqrt 2)); the residual is N(0, sigma^2) truncated to [-delta, delta].
# sigma and delta share the units of the sigma reference (device range or level step, see
# `SigmaConvention`); only their ratio matters here, so this module is convention-agnostic.

__all__ = [
    "MappingCost",
    "delta_for",
    "expected_iterations",
    "full_over_selective_ratio",
    "mapping_cost",
    "residual_std",
    "sample_residual",
    "simulate_write_verify",
    "success_probability",
]

_SQRT2 = math.sqrt(2.0)
_SMALL_A = 1e-3
"""Below this delta/sigma the truncated-normal variance uses its Taylor series (no cancellation)."""
_REJECTION_A = 5.0
"""At or above this delta/sigma `sample_residual` uses rejection (acceptance > 0.99999)."""


# ----------------------------------------------------------------------------- validation

def _check_sigma(sigma: float) -> float:
    sigma = float(sigma)
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma = {sigma!r} is not allowed: expected a finite number >= 0 "
                         f"(in units of the sigma reference)")
    return sigma


def _check_delta(delta: float, sigma: float) -> float:
    delta = float(delta)
    if math.isnan(delta) or delta < 0:
        raise ValueError(f"delta = {delta!r} is not allowed: expected a number >= 0 "
                         f"(in units of the sigma reference)")
    if sigma > 0 and delta == 0:
        raise ValueError(f"delta = 0.0 is not allowed with sigma = {sigma!r} > 0: no device "
                         f"would ever verify; expected delta > 0")
    return delta


def _check_count(name: str, value: int, allowed: str, ok: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not ok:
        raise ValueError(f"{name} = {value!r} is not allowed: expected {allowed}")


# ----------------------------------------------------------------------------- closed forms

def _variance_ratio(a: float) -> float:
    """Var of N(0, 1) truncated to [-a, a]: 1 - 2 a phi(a) / (2 Phi(a) - 1)."""
    if a <= 0:
        return 0.0
    if math.isinf(a):
        return 1.0
    if a < _SMALL_A:
        # a^2/3 * (1 - 2 a^2 / 15) + O(a^6): avoids the cancellation of the exact form.
        return a * a / 3.0 * (1.0 - 2.0 * a * a / 15.0)
    phi = math.exp(-0.5 * a * a) / math.sqrt(2.0 * math.pi)
    mass = math.erf(a / _SQRT2)
    return max(0.0, 1.0 - 2.0 * a * phi / mass)


@functools.lru_cache(maxsize=64)
def _a_for_ratio(ratio: float) -> float:
    """The a = delta / sigma whose truncated-normal std is `ratio` (in (0, 1))."""
    target = ratio * ratio
    hi = 1.0
    while _variance_ratio(hi) <= target:
        hi *= 2.0
    return brentq(lambda a: _variance_ratio(a) - target, 0.0, hi, xtol=1e-15, rtol=1e-15,
                  maxiter=500)


def delta_for(sigma: float, wv: WriteVerifyConfig) -> float:
    """Write-verify tolerance delta, in units of the sigma reference.

    A fixed `wv.delta` is returned as given. Otherwise delta = a * sigma where a solves
    std(N(0, 1) truncated to [-a, a]) = `wv.residual_ratio` (a ~ 0.1732 for ratio 0.1), so the
    residual std is `residual_ratio * sigma`. At sigma = 0 the derived delta is 0 (nothing to fix).
    """
    sigma = _check_sigma(sigma)
    wv.validate()
    if wv.delta is not None:
        return float(wv.delta)
    return _a_for_ratio(float(wv.residual_ratio)) * sigma


def success_probability(sigma: float, delta: float) -> float:
    """P(|e| < delta) for e ~ N(0, sigma^2): erf(delta / (sigma sqrt 2)); 1.0 at sigma = 0."""
    sigma = _check_sigma(sigma)
    delta = float(delta)
    if math.isnan(delta) or delta < 0:
        raise ValueError(f"delta = {delta!r} is not allowed: expected a number >= 0")
    if sigma == 0:
        return 1.0
    return math.erf(delta / (sigma * _SQRT2))


def expected_iterations(sigma: float, delta: float) -> float:
    """Expected program-and-verify iterations per device, 1 / P(|e| < delta); 1.0 at sigma = 0."""
    sigma = _check_sigma(sigma)
    delta = _check_delta(delta, sigma)
    return 1.0 / success_probability(sigma, delta)


def residual_std(sigma: float, delta: float) -> float:
    """Std of the residual error N(0, sigma^2) truncated to [-delta, delta] (closed form).

    Tends to sigma when delta >> sigma and to delta / sqrt(3) when delta << sigma; 0 at sigma = 0.
    """
    sigma = _check_sigma(sigma)
    delta = _check_delta(delta, sigma)
    if sigma == 0:
        return 0.0
    return sigma * math.sqrt(_variance_ratio(delta / sigma))


# ----------------------------------------------------------------------------- sampling

def sample_residual(shape: int | Sequence[int] | torch.Size, sigma: float, delta: float,
                    generator: torch.Generator, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Draw residual errors N(0, sigma^2) truncated to [-delta, delta], exactly in distribution.

    Inverse CDF on the lower tail in float64 (u uniform on [Phi(-a), 1/2], x = sigma ndtri(u),
    random sign) for a = delta / sigma < 5; rejection of plain Gaussian draws otherwise.
    The tensor lives on `generator.device`; at sigma = 0 it is all zeros.
    """
    sigma = _check_sigma(sigma)
    delta = _check_delta(delta, sigma)
    size = torch.Size([shape]) if isinstance(shape, int) else torch.Size(shape)
    device = generator.device
    if sigma == 0 or size.numel() == 0:
        return torch.zeros(size, dtype=dtype, device=device)
    a = delta / sigma
    n = size.numel()
    if a < _REJECTION_A:
        lo = 0.5 * math.erfc(a / _SQRT2)  # Phi(-a), accurate in the tail
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=device)
        u = lo + u * (0.5 - lo)
        x = torch.special.ndtri(u)  # in [-a, 0]
        sign = torch.randint(0, 2, (n,), generator=generator, device=device) * 2 - 1
        out = (x * sign).clamp_(-a, a) * sigma
    else:
        out = torch.empty(n, dtype=torch.float64, device=device)
        filled = 0
        while filled < n:
            need = n - filled
            draw = torch.randn(need + need // 1000 + 16, generator=generator,
                               dtype=torch.float64, device=device)
            keep = draw[draw.abs() < a][:need]
            out[filled:filled + keep.numel()] = keep
            filled += keep.numel()
        out = out * sigma
    return out.to(dtype).reshape(size)


def simulate_write_verify(n_devices: int, sigma: float, delta: float, generator: torch.Generator,
                          max_iterations: int = 10_000,
                          dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Run program-and-verify device by device (vectorised over devices).

    Each round draws e ~ N(0, sigma^2) for every device not yet accepted and accepts those with
    |e| < delta (compared in `dtype`). Returns (residual errors of shape (n_devices,) in `dtype`,
    iteration counts int64 >= 1), both on `generator.device`. At sigma = 0 every device takes
    one iteration and has zero residual. Raises ValueError if some device is still unaccepted
    after `max_iterations` rounds.
    """
    _check_count("n_devices", n_devices, "an integer >= 0", isinstance(n_devices, int)
                 and n_devices >= 0)
    _check_count("max_iterations", max_iterations, "an integer >= 1",
                 isinstance(max_iterations, int) and max_iterations >= 1)
    sigma = _check_sigma(sigma)
    delta = _check_delta(delta, sigma)
    device = generator.device
    residual = torch.zeros(n_devices, dtype=dtype, device=device)
    counts = torch.ones(n_devices, dtype=torch.int64, device=device)
    if sigma == 0 or n_devices == 0:
        return residual, counts
    counts.zero_()
    pending = torch.arange(n_devices, device=device)
    for _ in range(max_iterations):
        e = torch.randn(pending.numel(), generator=generator, dtype=dtype, device=device) * sigma
        ok = e.abs() < delta
        residual[pending[ok]] = e[ok]
        counts[pending] += 1
        pending = pending[~ok]
        if pending.numel() == 0:
            return residual, counts
    raise ValueError(f"max_iterations = {max_iterations} reached with {pending.numel()} of "
                     f"{n_devices} devices still outside delta = {delta!r} (sigma = {sigma!r}, "
                     f"expected iterations {expected_iterations(sigma, delta):.4g}); raise "
                     f"write_verify.max_iterations or the tolerance")


# ----------------------------------------------------------------------------- mapping cost

@dataclass(frozen=True)
class MappingCost:
    """Expected cost of programming a model's weights onto devices."""

    devices: int
    """Devices programmed: weights * devices_per_weight."""
    verified_devices: int
    """Devices programmed with write-verify (the rest get one pulse, no read)."""
    write_pulses: float
    """Expected program pulses over all devices."""
    reads: float
    """Expected verify reads over all devices (one per write-verify iteration)."""
    time_s: float
    """Expected programming time, seconds, with `parallel_devices` programmed at once."""
    energy_j: float
    """Expected programming energy, joules."""

    def ratio_to(self, other: MappingCost) -> float:
        """Time ratio self.time_s / other.time_s: how many times longer `self` takes than `other`.

        Raises ValueError if `other.time_s` is 0 (ratio undefined).
        """
        if other.time_s == 0:
            raise ValueError("other.time_s = 0.0 is not allowed: the time ratio needs a reference "
                             "with time_s > 0")
        return self.time_s / other.time_s


def _validate_mapping(n_weights: int, n_verified_weights: int, sigma: float, device: DeviceConfig,
                      wv: WriteVerifyConfig, cost: MappingCostConfig) -> float:
    _check_count("n_weights", n_weights, "an integer >= 0",
                 isinstance(n_weights, int) and n_weights >= 0)
    _check_count("n_verified_weights", n_verified_weights,
                 f"an integer in [0, n_weights={n_weights}]",
                 isinstance(n_verified_weights, int) and 0 <= n_verified_weights <= n_weights)
    sigma = _check_sigma(sigma)
    device.validate()
    wv.validate()
    cost.validate()
    return sigma


def mapping_cost(n_weights: int, n_verified_weights: int, sigma: float, device: DeviceConfig,
                 wv: WriteVerifyConfig, cost: MappingCostConfig,
                 read_back_weights: int = 0) -> MappingCost:
    """Expected cost of mapping `n_weights` weights, `n_verified_weights` of them write-verified,
    and reading back `read_back_weights` of them once after programming.

    Each device of an unverified weight gets one pulse and no read; each device of a verified
    weight gets E[iterations] pulses and E[iterations] reads, with delta = `delta_for(sigma, wv)`
    and E[iterations] from the chips' device models (`device.stack.verify_iterations`: Gaussian
    1 / P(|e| < delta); a stuck device runs to `wv.max_iterations` and gives up);
    each device read back costs one more read (TSB reads its programmed backbone once, so that the
    block can be fine-tuned for the chip).
    time = (pulses * pulse_time + reads * read_time) / parallel_devices;
    energy = pulses * pulse_energy + reads * read_energy.
    """
    sigma = _validate_mapping(n_weights, n_verified_weights, sigma, device, wv, cost)
    per_weight = device.devices_per_weight
    devices = n_weights * per_weight
    verified = n_verified_weights * per_weight
    iterations = device.stack.verify_iterations(sigma, wv)
    pulses = float(devices - verified) + verified * iterations
    if not 0 <= read_back_weights <= n_weights:
        raise ValueError(f"read_back_weights = {read_back_weights!r} is not allowed: expected "
                         f"0 <= read_back_weights <= n_weights = {n_weights}")
    reads = verified * iterations + read_back_weights * per_weight
    time_s = (pulses * cost.pulse_time_s + reads * cost.read_time_s) / cost.parallel_devices
    energy_j = pulses * cost.pulse_energy_j + reads * cost.read_energy_j
    return MappingCost(devices=devices, verified_devices=verified, write_pulses=pulses,
                       reads=reads, time_s=time_s, energy_j=energy_j)


def full_over_selective_ratio(n_weights: int, n_verified: int, sigma: float, device: DeviceConfig,
                              wv: WriteVerifyConfig, cost: MappingCostConfig) -> float:
    """Time of verifying every weight over time of verifying only `n_verified` (closed form).

    N E (tp + tr) / ((N - V) tp + V E (tp + tr)) with N, V the device counts and E the expected
    iterations; the parallelism cancels. Raises ValueError if the selective time is 0.
    """
    sigma = _validate_mapping(n_weights, n_verified, sigma, device, wv, cost)
    e = device.stack.verify_iterations(sigma, wv)
    n = n_weights * device.devices_per_weight
    v = n_verified * device.devices_per_weight
    tp, tr = cost.pulse_time_s, cost.read_time_s
    selective = (n - v) * tp + v * e * (tp + tr)
    if selective == 0:
        raise ValueError(f"n_weights = {n_weights!r} with pulse_time_s = {tp!r} gives zero "
                         f"selective mapping time; the ratio needs n_weights >= 1 and times > 0")
    return n * e * (tp + tr) / selective
