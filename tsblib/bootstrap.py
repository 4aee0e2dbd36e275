"""Bootstrap intervals over chips for gap ratios, and claim verdicts that need the interval's
lower end to clear the threshold (a claim cannot pass on a lucky point estimate)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class RatioInterval:
    """A ratio of two accuracy gaps with its bootstrap interval."""

    point: float
    """Ratio of the point estimates (inf when the denominator gap is <= 0)."""
    low: float
    """Lower end of the interval (2.5th percentile of the bootstrap ratios)."""
    high: float
    """Upper end of the interval (97.5th percentile; inf when more than 2.5 % of the resampled
    denominators are <= 0)."""
    resamples: int
    """Bootstrap resamples."""

    def as_dict(self) -> dict[str, float | int | None]:
        """JSON form: infinities become None with `*_unbounded` flags."""
        out: dict[str, float | int | None] = {"resamples": self.resamples}
        for key in ("point", "low", "high"):
            value = getattr(self, key)
            out[key] = None if math.isinf(value) or math.isnan(value) else value
            out[f"{key}_unbounded"] = math.isinf(value)
        return out


def gap_ratio(num_ref: float, num_accs: Sequence[float], den_ref: float,
              den_accs: Sequence[float], *, resamples: int = 10_000, seed: int = 0,
              level: float = 0.95) -> RatioInterval:
    """(num_ref - mean num_accs) / (den_ref - mean den_accs) with a percentile bootstrap interval.

    The chips of the numerator and of the denominator are resampled independently (they are
    different chips); the references are fixed. A resampled denominator <= 0 gives an unbounded
    ratio, kept as +inf so that it only ever raises the upper end (and the lower end, when it is
    the majority).
    """
    num = np.asarray(num_accs, dtype=np.float64)
    den = np.asarray(den_accs, dtype=np.float64)
    if num.size < 2 or den.size < 2:
        raise ValueError(f"a bootstrap needs at least 2 chips per side, got {num.size} and {den.size}")
    rng = np.random.default_rng(seed)
    num_means = num[rng.integers(0, num.size, (resamples, num.size))].mean(1)
    den_means = den[rng.integers(0, den.size, (resamples, den.size))].mean(1)
    ratios = _ratio(num_ref - num_means, den_ref - den_means)
    alpha = (1 - level) / 2
    low = float(np.quantile(ratios, alpha, method="lower"))
    high = float(np.quantile(ratios, 1 - alpha, method="higher"))
    point = float(_ratio(np.array([num_ref - num.mean()]), np.array([den_ref - den.mean()]))[0])
    return RatioInterval(point=point, low=low, high=high, resamples=resamples)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.inf)
    positive = den > 0
    out[positive] = num[positive] / den[positive]
    return out


def verdict(interval: RatioInterval | None, op: str, threshold: float) -> bool | None:
    """Whether a claim `ratio op threshold` is met: '>' needs the interval's lower end above the
    threshold, '<' its upper end below; an unbounded lower end (the denominator gap is not
    distinguishable from zero) decides nothing (None), and neither does a missing interval."""
    if interval is None:
        return None
    if op == ">":
        if math.isinf(interval.low):
            return None
        return interval.low > threshold
    if op == "<":
        if math.isinf(interval.high):
            return False
        return interval.high < threshold
    raise ValueError(f"op = {op!r} is not allowed: expected '>' or '<'")
