"""Bootstrap intervals of gap ratios and the claim verdicts built on them."""
import math

import numpy as np
import pytest

from tsblib.bootstrap import (UNDECIDED_AT_OR_ABOVE_REFERENCE, RatioInterval, gap_ratio,
                              paired_difference, verdict, verdict_reason)


def test_point_is_the_ratio_of_the_mean_gaps_over_the_paired_chips():
    rng = np.random.default_rng(0)
    base = 0.80 + 0.02 * rng.standard_normal(50)
    tsb = 0.95 + 0.01 * rng.standard_normal(20)
    iv = gap_ratio(0.99, base, 0.97, tsb, resamples=4000, seed=1)
    # TSB's chips are the first 20 of the baseline's: only those are compared
    assert iv.chips == 20
    assert iv.point == pytest.approx((0.99 - base[:20].mean()) / (0.97 - tsb.mean()))
    assert iv.low < iv.point < iv.high
    assert iv.resamples == 4000
    assert iv.den_gap == pytest.approx(0.97 - tsb.mean()) and iv.den_gap_low > 0


def test_pairing_removes_the_shared_chip_to_chip_spread():
    # chip k is one device-error draw for both methods: a shared chip effect cancels in the
    # paired difference, which an unpaired interval would carry in full
    rng = np.random.default_rng(1)
    chip = 0.05 * rng.standard_normal(20)
    base = 0.80 + chip + 0.002 * rng.standard_normal(20)
    tsb = 0.82 + chip + 0.002 * rng.standard_normal(20)
    d = paired_difference(tsb, base)
    assert d.chips == 20 and d.mean == pytest.approx((tsb - base).mean())
    assert d.low > 0 and d.sign == 1  # clearly resolved although the chips spread by 5 points
    unpaired_half = 1.96 * np.sqrt(tsb.var(ddof=1) / 20 + base.var(ddof=1) / 20)
    assert (d.high - d.low) / 2 < unpaired_half / 5
    assert paired_difference(base, tsb).sign == -1
    assert paired_difference([0.5, 0.6, 0.7], [0.6, 0.5, 0.7]).sign == 0


def test_a_negative_tsb_gap_is_undecided_never_met():
    # TSB's chips above its own reference: every resampled gap is negative, so every ratio is
    # "unbounded"; the lower end is +inf, far above 20, and the claim must still not pass
    tsb = [0.470, 0.472, 0.468, 0.471, 0.469, 0.473]
    iv = gap_ratio(0.60, [0.45, 0.46, 0.44, 0.45, 0.46, 0.45], 0.465, tsb, resamples=2000, seed=0)
    assert iv.den_gap < 0 and iv.den_reaches_zero
    assert verdict(iv, ">", 20.0) is None
    assert verdict_reason(iv) == UNDECIDED_AT_OR_ABOVE_REFERENCE
    # a positive TSB gap whose interval reaches 0: a few tiny positive resamples give a finite,
    # huge lower end; still undecided
    tsb = [0.4649, 0.4655, 0.4640, 0.4660, 0.4645, 0.4652, 0.4647]
    iv = gap_ratio(0.60, [0.45] * 7, 0.4652, tsb, resamples=2000, seed=0)
    assert iv.den_gap > 0 and iv.den_gap_low <= 0
    assert verdict(iv, ">", 20.0) is None
    assert iv.as_dict()["tsb_gap_reaches_zero"] is True


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
