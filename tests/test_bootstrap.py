"""Bootstrap intervals of gap ratios and the claim verdicts built on them."""
import math

import numpy as np
import pytest

from tsblib.bootstrap import RatioInterval, gap_ratio, verdict


def test_point_is_the_ratio_of_the_mean_gaps_and_the_interval_contains_it():
    rng = np.random.default_rng(0)
    base = 0.80 + 0.02 * rng.standard_normal(50)
    tsb = 0.95 + 0.01 * rng.standard_normal(20)
    iv = gap_ratio(0.99, base, 0.97, tsb, resamples=4000, seed=1)
    assert iv.point == pytest.approx((0.99 - base.mean()) / (0.97 - tsb.mean()))
    assert iv.low < iv.point < iv.high
    assert iv.resamples == 4000


def test_interval_narrows_with_more_chips_and_is_seeded():
    rng = np.random.default_rng(0)
    wide = gap_ratio(1.0, 0.8 + 0.05 * rng.standard_normal(10), 1.0,
                     0.9 + 0.05 * rng.standard_normal(10), seed=3)
    rng = np.random.default_rng(0)
    narrow = gap_ratio(1.0, 0.8 + 0.05 * rng.standard_normal(1000), 1.0,
                       0.9 + 0.05 * rng.standard_normal(1000), seed=3)
    assert narrow.high - narrow.low < (wide.high - wide.low) / 3
    assert gap_ratio(1.0, [0.7, 0.8, 0.9], 1.0, [0.95, 0.96], seed=5) == \
        gap_ratio(1.0, [0.7, 0.8, 0.9], 1.0, [0.95, 0.96], seed=5)


def test_a_tsb_gap_near_zero_gives_an_unbounded_upper_end_and_no_pass():
    # TSB's chips straddle its own reference: some resampled gaps are <= 0
    iv = gap_ratio(1.0, [0.80, 0.82, 0.81, 0.79], 0.95, [0.96, 0.94, 0.95, 0.955, 0.945],
                   resamples=2000, seed=0)
    assert math.isinf(iv.high)
    d = iv.as_dict()
    assert d["high"] is None and d["high_unbounded"] is True
    # even a huge (or unbounded) point estimate is not a pass when the lower end is unbounded
    unbounded = RatioInterval(point=math.inf, low=math.inf, high=math.inf, resamples=10)
    assert verdict(unbounded, ">", 20.0) is None


def test_verdict_needs_the_lower_end_to_clear_the_threshold():
    assert verdict(RatioInterval(25.0, 21.0, 30.0, 10), ">", 20.0) is True
    # a point above the threshold is not enough
    assert verdict(RatioInterval(25.0, 15.0, 40.0, 10), ">", 20.0) is False
    assert verdict(RatioInterval(0.3, 0.2, 0.35, 10), "<", 0.4) is True
    assert verdict(RatioInterval(0.3, 0.2, 0.45, 10), "<", 0.4) is False
    assert verdict(RatioInterval(0.3, 0.2, math.inf, 10), "<", 0.4) is False
    assert verdict(None, ">", 20.0) is None
    with pytest.raises(ValueError, match="op = '>='"):
        verdict(RatioInterval(1, 1, 1, 1), ">=", 1.0)


def test_too_few_chips_is_an_error():
    with pytest.raises(ValueError, match="at least 2 chips"):
        gap_ratio(1.0, [0.9], 1.0, [0.95, 0.96])
