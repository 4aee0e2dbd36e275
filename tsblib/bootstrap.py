"""Paired statistics over chips: gap ratios with a bootstrap interval, paired accuracy
differences, and claim verdicts that need the interval to decide (a claim never passes on a lucky
point estimate, nor on a TSB gap that is not distinguishable from zero).

Chip k of every method is the same draw of normalised device errors (DESIGN section 6), so the
comparisons are paired: the chips of two methods are resampled together, by chip index, over
the chips both have (TSB's chips are the first N of the baselines').
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

UNDECIDED_AT_OR_ABOVE_REFERENCE = "undecided (TSB at or above its own reference)"
"""Why a gap ratio decides nothing when TSB's gap, or its interval, reaches 0 or below."""


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
    den_gap: float = math.nan
    """The denominator's (TSB's) gap, point estimate."""
    den_gap_low: float = math.nan
    """Lower end of the 95 % bootstrap interval of the denominator's gap: at or below 0, the
    ratio is undefined and decides nothing."""
    chips: int = 0
    """Chips the interval is computed over (paired: the chips both methods have)."""

    @property
    def den_reaches_zero(self) -> bool:
        """Whether the denominator gap or its interval reaches 0 or below (ratio undefined)."""
        return not (self.den_gap > 0 and self.den_gap_low > 0)

    def as_dict(self) -> dict[str, float | int | bool | None]:
        """JSON form: infinities become None with `*_unbounded` flags."""
        out: dict[str, float | int | bool | None] = {"resamples": self.resamples,
                                                     "chips": self.chips}
        for key in ("point", "low", "high"):
            value = getattr(self, key)
            out[key] = None if math.isinf(value) or math.isnan(value) else value
            out[f"{key}_unbounded"] = math.isinf(value)
        out["tsb_gap"] = None if math.isnan(self.den_gap) else self.den_gap
        out["tsb_gap_low"] = None if math.isnan(self.den_gap_low) else self.den_gap_low
        out["tsb_gap_reaches_zero"] = self.den_reaches_zero
        return out


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The first n = min(len) chips of both (chip k of one is chip k of the other)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    n = min(x.size, y.size)
    if n < 2:
        raise ValueError(f"a paired comparison needs at least 2 chips on each side, got "
                         f"{x.size} and {y.size}")
    return x[:n], y[:n]


def gap_ratio(num_ref: float, num_accs: Sequence[float], den_ref: float,
              den_accs: Sequence[float], *, resamples: int = 10_000, seed: int = 0,
              level: float = 0.95) -> RatioInterval:
    """(num_ref - mean num_accs) / (den_ref - mean den_accs) over paired chips, with a
    percentile bootstrap interval that resamples chip indices (the same chips on both sides).

    Only the first n = min(len(num_accs), len(den_accs)) chips of each are used: chip k of the
    numerator and of the denominator share their device-error draw. The references are fixed. A
    resampled denominator <= 0 gives an unbounded ratio (+inf); the interval of the denominator
    gap itself is returned too, so that `verdict` can refuse to decide when it reaches zero.
    """
    num, den = _paired(num_accs, den_accs)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, num.size, (resamples, num.size))
    den_gaps = den_ref - den[index].mean(1)
    ratios = _ratio(num_ref - num[index].mean(1), den_gaps)
    alpha = (1 - level) / 2
    low = float(np.quantile(ratios, alpha, method="lower"))
    high = float(np.quantile(ratios, 1 - alpha, method="higher"))
    den_gap = float(den_ref - den.mean())
    point = float(_ratio(np.array([num_ref - num.mean()]), np.array([den_gap]))[0])
    return RatioInterval(point=point, low=low, high=high, resamples=resamples, den_gap=den_gap,
                         den_gap_low=float(np.quantile(den_gaps, alpha, method="lower")),
                         chips=int(num.size))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.inf)
    positive = den > 0
    out[positive] = num[positive] / den[positive]
    return out


@dataclass(frozen=True)
class PairedDifference:
    """Mean over paired chips of (a - b), with its 95 % Student-t interval."""

    mean: float
    """Mean paired difference."""
    low: float
    """Lower end of the 95 % interval."""
    high: float
    """Upper end of the 95 % interval."""
    chips: int
    """Paired chips."""

    @property
    def sign(self) -> int:
        """+1 when the interval lies above 0, -1 below, 0 when it contains 0."""
        return 1 if self.low > 0 else -1 if self.high < 0 else 0

    def as_dict(self) -> dict[str, float | int]:
        """JSON form."""
        return {"mean": self.mean, "low": self.low, "high": self.high,
                "ci95": (self.high - self.low) / 2, "chips": self.chips}


def paired_difference(a: Sequence[float], b: Sequence[float]) -> PairedDifference:
    """Mean of a_k - b_k over the chips both have (the first min(len) of each), with the 95 %
    Student-t interval of the mean; a zero spread gives a zero-width interval."""
    x, y = _paired(a, b)
    d = x - y
    mean = float(d.mean())
    half = float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size))
    return PairedDifference(mean=mean, low=mean - half, high=mean + half, chips=int(d.size))


def verdict(interval: RatioInterval | None, op: str, threshold: float) -> bool | None:
    """Whether a claim `ratio op threshold` is met: '>' needs the interval's lower end above the
    threshold, '<' its upper end below. Nothing is decided (None) when the interval is missing,
    when its lower end is unbounded, or when the denominator (TSB's) gap or its interval reaches
    0 or below: the ratio is then undefined, however large."""
    if interval is None:
        return None
    if op not in (">", "<"):
        raise ValueError(f"op = {op!r} is not allowed: expected '>' or '<'")
    if not math.isnan(interval.den_gap) and interval.den_reaches_zero:
        return None
    if op == ">":
        if math.isinf(interval.low):
            return None
        return interval.low > threshold
    if math.isinf(interval.high):
        return False
    return interval.high < threshold


def verdict_reason(interval: RatioInterval | None) -> str | None:
    """Why `verdict` decided nothing, in words (None when it decided or there is no interval)."""
    if interval is None:
        return None
    if not math.isnan(interval.den_gap) and interval.den_reaches_zero:
        return UNDECIDED_AT_OR_ABOVE_REFERENCE
    if math.isinf(interval.low):
        return "undecided (TSB's gap not distinguishable from zero)"
    return None
