"""Write-verify model: tolerance delta, iterations per device and truncated-Gaussian residual
(the device models use it; the mapping cost built on it is `tsblib.mapping`)."""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
from scipy.optimize import brentq

from tsblib.config import WriteVerifyConfig

# Each device's programmed value deviates from its target by e ~ N(0, sigma^2); write-verify
# re-programs it until |e| < delta (DESIGN section 2). Iterations are Geometric(p) with
# p = erf(delta / (sigma sqrt 2)); the residual is N(0, sigma^2) truncated to [-delta, delta].
# sigma and delta share the units of the sigma reference (device range or level step, see
# `SigmaConvention`); only their ratio matters here, so this module is convention-agnostic.

__all__ = [
    "delta_for",
    "expected_iterations",
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

def checked_sigma(sigma: float) -> float:
    """`sigma` as a float; ValueError unless it is finite and >= 0."""
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


def check_count(name: str, value: int, allowed: str, ok: bool) -> None:
    """ValueError naming `name` unless `value` is an integer and `ok`."""
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
    sigma = checked_sigma(sigma)
    wv.validate()
    if wv.delta is not None:
        return float(wv.delta)
    return _a_for_ratio(float(wv.residual_ratio)) * sigma


def success_probability(sigma: float, delta: float) -> float:
    """P(|e| < delta) for e ~ N(0, sigma^2): erf(delta / (sigma sqrt 2)); 1.0 at sigma = 0."""
    sigma = checked_sigma(sigma)
    delta = float(delta)
    if math.isnan(delta) or delta < 0:
        raise ValueError(f"delta = {delta!r} is not allowed: expected a number >= 0")
    if sigma == 0:
        return 1.0
    return math.erf(delta / (sigma * _SQRT2))


def expected_iterations(sigma: float, delta: float) -> float:
    """Expected program-and-verify iterations per device, 1 / P(|e| < delta); 1.0 at sigma = 0."""
    sigma = checked_sigma(sigma)
    delta = _check_delta(delta, sigma)
    return 1.0 / success_probability(sigma, delta)


def residual_std(sigma: float, delta: float) -> float:
    """Std of the residual error N(0, sigma^2) truncated to [-delta, delta] (closed form).

    Tends to sigma when delta >> sigma and to delta / sqrt(3) when delta << sigma; 0 at sigma = 0.
    """
    sigma = checked_sigma(sigma)
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
    sigma = checked_sigma(sigma)
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
    check_count("n_devices", n_devices, "an integer >= 0", isinstance(n_devices, int)
                 and n_devices >= 0)
    check_count("max_iterations", max_iterations, "an integer >= 1",
                 isinstance(max_iterations, int) and max_iterations >= 1)
    sigma = checked_sigma(sigma)
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
