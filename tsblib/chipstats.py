"""Statistics over chips: the mean, spread and confidence interval of chip accuracies
(`ChipStats`) and the yield figures of a chip population (`chip_yield`). What the Monte Carlo
evaluation (`tsblib.execution.evaluate`) returns and the results tables are computed from."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class ChipStats:
    """Accuracy over chips."""

    accuracies: tuple[float, ...]
    """Accuracy of every chip, in chip order."""
    mean: float
    """Mean accuracy."""
    std: float
    """Sample standard deviation across chips."""
    ci95: float
    """Half-width of the 95 % confidence interval of the mean (Student t)."""

    @property
    def chips(self) -> int:
        """Number of chips."""
        return len(self.accuracies)


def summarize(accuracies: Iterable[float]) -> ChipStats:
    """Mean, std and 95 % CI half-width (Student t with n-1 degrees of freedom)."""
    accs = tuple(float(a) for a in accuracies)
    n = len(accs)
    mean = statistics.mean(accs)  # exact (rational) arithmetic: equal chips give std 0 exactly
    std = statistics.stdev(accs) if n > 1 else 0.0
    ci = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n) if n > 1 else float("nan")
    return ChipStats(accuracies=accs, mean=mean, std=std, ci95=ci)


YIELD_PERCENTILES = (1, 5, 50)
"""Percentiles of chip accuracy reported beside the mean (a realistic worst case)."""


YIELD_POINTS = (1, 2)
"""Chip yield: fraction of chips within this many accuracy points of the noise-free accuracy."""


def chip_yield(accuracies: Iterable[float], reference: float) -> dict[str, float]:
    """The 1st, 5th and 50th percentile of chip accuracy (linear interpolation between chips,
    no bootstrap) and the fraction of chips within 1 and 2 points (0.01, 0.02) of `reference`,
    the deployed model's noise-free accuracy: {'acc_p01', 'acc_p05', 'acc_p50', 'yield_1pt',
    'yield_2pt'}."""
    accs = np.asarray(list(accuracies), dtype=np.float64)
    out = {f"acc_p{q:02d}": float(np.percentile(accs, q)) for q in YIELD_PERCENTILES}
    for points in YIELD_POINTS:
        # 1e-9: an accuracy exactly `points` below the reference counts as within it
        out[f"yield_{points}pt"] = float(np.mean(accs >= reference - points / 100 - 1e-9))
    return out
