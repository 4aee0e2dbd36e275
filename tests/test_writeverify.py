"""Tests of tsblib.writeverify (tolerance, iteration statistics, residual sampling) and of the
mapping cost built on it (tsblib.mapping)."""
from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from tsblib.config import DeviceConfig, MappingCostConfig, WriteVerifyConfig
from tsblib.mapping import MappingCost, full_over_selective_ratio, mapping_cost
from tsblib.writeverify import (
    delta_for,
    expected_iterations,
    residual_std,
    sample_residual,
    simulate_write_verify,
    success_probability,
)

N_DEVICES = 200_000
Z = 5.0  # standard errors allowed for Monte Carlo comparisons


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _std_rel_se(x: torch.Tensor) -> float:
    """Relative standard error of the sample std: sqrt((m4/m2^2 - 1) / (4 n))."""
    x = x.double() - x.double().mean()
    m2 = float((x ** 2).mean())
    m4 = float((x ** 4).mean())
    return math.sqrt((m4 / m2 ** 2 - 1.0) / (4.0 * x.numel()))


@pytest.fixture(scope="module")
def simulated() -> tuple[float, float, torch.Tensor, torch.Tensor]:
    sigma = 0.5
    delta = delta_for(sigma, WriteVerifyConfig())
    residual, counts = simulate_write_verify(N_DEVICES, sigma, delta, _gen(1))
    return sigma, delta, residual, counts


# ----------------------------------------------------------------------------- 1. default delta

@pytest.mark.parametrize("sigma", [0.05, 0.3, 0.5, 0.8])
def test_default_delta_gives_tenth_sigma_residual(sigma: float) -> None:
    delta = delta_for(sigma, WriteVerifyConfig())
    assert residual_std(sigma, delta) == pytest.approx(0.1 * sigma, rel=1e-6)
    assert delta / sigma == pytest.approx(0.1732, abs=5e-4)
    # independent check against scipy's truncated normal
    a = delta / sigma
    assert stats.truncnorm.std(-a, a) == pytest.approx(0.1, rel=1e-6)


@pytest.mark.parametrize("ratio", [0.01, 0.3, 0.9])
def test_default_delta_other_ratios(ratio: float) -> None:
    delta = delta_for(1.0, WriteVerifyConfig(residual_ratio=ratio))
    assert residual_std(1.0, delta) == pytest.approx(ratio, rel=1e-6)
    assert stats.truncnorm.std(-delta, delta) == pytest.approx(ratio, rel=1e-6)


def test_closed_forms_limits() -> None:
    assert success_probability(1.0, 1.0) == pytest.approx(stats.norm.cdf(1) - stats.norm.cdf(-1))
    assert expected_iterations(1.0, 1.0) == pytest.approx(1 / 0.6826894921370859)
    assert residual_std(1.0, 50.0) == pytest.approx(1.0, rel=1e-12)
    assert residual_std(1.0, 1e-5) == pytest.approx(1e-5 / math.sqrt(3), rel=1e-9)
    # across the series / exact switch the std is continuous
    assert residual_std(1.0, 0.999e-3) == pytest.approx(stats.truncnorm.std(-0.999e-3, 0.999e-3),
                                                         rel=1e-7)
    assert residual_std(1.0, 1.001e-3) == pytest.approx(stats.truncnorm.std(-1.001e-3, 1.001e-3),
                                                         rel=1e-7)


# ----------------------------------------------------------------------------- 2. simulation

def test_simulated_iterations_match_geometric(simulated) -> None:
    sigma, delta, _, counts = simulated
    expected = expected_iterations(sigma, delta)
    p = 1.0 / expected
    mean = float(counts.double().mean())
    rel_se = math.sqrt(1.0 - p) / math.sqrt(N_DEVICES)  # std/mean of a geometric, over sqrt(n)
    bound = Z * rel_se
    assert bound < 0.02
    assert abs(mean / expected - 1.0) < bound
    assert counts.dtype == torch.int64
    assert int(counts.min()) >= 1


def test_simulated_residual_matches_truncated_normal(simulated) -> None:
    sigma, delta, residual, _ = simulated
    bound = Z * _std_rel_se(residual)
    assert bound < 0.02
    assert abs(float(residual.std()) / residual_std(sigma, delta) - 1.0) < bound
    assert bool((residual.abs() < delta).all())


def test_simulation_is_reproducible_and_caps_iterations() -> None:
    a = simulate_write_verify(1000, 0.5, 0.1, _gen(3))
    b = simulate_write_verify(1000, 0.5, 0.1, _gen(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="max_iterations"):
        simulate_write_verify(1000, 1.0, 1e-3, _gen(0), max_iterations=5)


# ----------------------------------------------------------------------------- 3. sampler

def test_sample_residual_matches_simulation(simulated) -> None:
    sigma, delta, residual, _ = simulated
    drawn = sample_residual((400, 500), sigma, delta, _gen(2))
    assert drawn.shape == (400, 500) and drawn.dtype == torch.float32
    assert bool((drawn.abs() <= delta).all())
    result = stats.ks_2samp(drawn.flatten().double().numpy(), residual.numpy())
    assert result.pvalue > 1e-3
    bound = Z * _std_rel_se(drawn)
    assert bound < 0.02
    assert abs(float(drawn.double().std()) / residual_std(sigma, delta) - 1.0) < bound


@pytest.mark.parametrize("a", [0.01, 1.0, 3.0, 6.0])
def test_sample_residual_matches_truncnorm(a: float) -> None:
    sigma = 0.4
    drawn = sample_residual(N_DEVICES, sigma, a * sigma, _gen(5), dtype=torch.float64) / sigma
    result = stats.kstest(drawn.numpy(), stats.truncnorm(-a, a).cdf)
    assert result.pvalue > 1e-3
    bound = Z * _std_rel_se(drawn)
    assert bound < 0.02
    assert abs(float(drawn.std()) / stats.truncnorm.std(-a, a) - 1.0) < bound


# ----------------------------------------------------------------------------- 4. sigma = 0

def test_sigma_zero_is_free() -> None:
    wv = WriteVerifyConfig()
    delta = delta_for(0.0, wv)
    assert delta == 0.0
    assert success_probability(0.0, delta) == 1.0
    assert expected_iterations(0.0, delta) == 1.0
    assert residual_std(0.0, delta) == 0.0
    residual, counts = simulate_write_verify(100, 0.0, delta, _gen(0))
    assert bool((residual == 0).all()) and bool((counts == 1).all())
    assert bool((sample_residual(10, 0.0, delta, _gen(0)) == 0).all())
    device, cost = DeviceConfig(), MappingCostConfig()
    verified = mapping_cost(1000, 1000, 0.0, device, wv, cost)
    none = mapping_cost(1000, 0, 0.0, device, wv, cost)
    assert verified.write_pulses == none.write_pulses == verified.devices
    assert verified.reads == verified.verified_devices  # one confirming read each


# ----------------------------------------------------------------------------- 5. mapping cost

def test_mapping_cost_full_tsb_none() -> None:
    device, wv, cost = DeviceConfig(), WriteVerifyConfig(), MappingCostConfig()
    sigma, n, v = 0.5, 18_320, 64
    d = device.devices_per_weight
    none = mapping_cost(n, 0, sigma, device, wv, cost)
    tsb = mapping_cost(n, v, sigma, device, wv, cost)
    full = mapping_cost(n, n, sigma, device, wv, cost)
    assert isinstance(none, MappingCost)
    assert none.devices == n * d and none.verified_devices == 0
    assert none.write_pulses == n * d and none.reads == 0
    assert none.time_s == pytest.approx(n * d * cost.pulse_time_s / cost.parallel_devices)
    assert none.energy_j == pytest.approx(n * d * cost.pulse_energy_j)
    assert full.time_s > tsb.time_s > none.time_s
    assert full.energy_j > tsb.energy_j > none.energy_j

    # independent closed form, from p = erf(delta / (sigma sqrt 2))
    e = 1.0 / math.erf(delta_for(sigma, wv) / (sigma * math.sqrt(2.0)))
    tp, tr = cost.pulse_time_s, cost.read_time_s
    nd, vd = n * d, v * d
    factor = nd * e * (tp + tr) / ((nd - vd) * tp + vd * e * (tp + tr))
    assert full.time_s / tsb.time_s == pytest.approx(factor, rel=1e-12)
    assert full.ratio_to(tsb) == pytest.approx(factor, rel=1e-12)
    assert full_over_selective_ratio(n, v, sigma, device, wv, cost) == pytest.approx(factor,
                                                                                      rel=1e-12)
    assert full.reads == pytest.approx(nd * e)
    assert full.energy_j == pytest.approx(nd * e * (cost.pulse_energy_j + cost.read_energy_j))


def test_mapping_cost_counts_the_read_back_of_the_backbone() -> None:
    device, wv, cost = DeviceConfig(), WriteVerifyConfig(), MappingCostConfig()
    sigma, backbone, block = 0.5, 18_256, 64
    d = device.devices_per_weight
    without = mapping_cost(backbone + block, block, sigma, device, wv, cost)
    with_read = mapping_cost(backbone + block, block, sigma, device, wv, cost,
                             read_back_weights=backbone)
    assert with_read.reads == pytest.approx(without.reads + backbone * d)  # one read per device
    assert with_read.write_pulses == without.write_pulses
    assert with_read.time_s - without.time_s == pytest.approx(
        backbone * d * cost.read_time_s / cost.parallel_devices)
    assert with_read.energy_j - without.energy_j == pytest.approx(backbone * d * cost.read_energy_j)
    with pytest.raises(ValueError, match="read_back_weights = 20000 is not allowed"):
        mapping_cost(backbone + block, block, sigma, device, wv, cost, read_back_weights=20_000)


# ----------------------------------------------------------------------------- 6. bad input

def test_bad_input_names_parameter() -> None:
    device, wv, cost = DeviceConfig(), WriteVerifyConfig(), MappingCostConfig()
    with pytest.raises(ValueError, match="sigma = -0.1"):
        mapping_cost(10, 1, -0.1, device, wv, cost)
    with pytest.raises(ValueError, match="n_verified_weights = 11"):
        mapping_cost(10, 11, 0.5, device, wv, cost)
    with pytest.raises(ValueError, match="n_verified_weights = -1"):
        mapping_cost(10, -1, 0.5, device, wv, cost)
    with pytest.raises(ValueError, match="n_weights = -5"):
        mapping_cost(-5, 0, 0.5, device, wv, cost)
    with pytest.raises(ValueError, match="sigma"):
        delta_for(-1.0, wv)
    with pytest.raises(ValueError, match="delta"):
        expected_iterations(0.5, -0.1)
    with pytest.raises(ValueError, match="delta = 0.0"):
        simulate_write_verify(10, 0.5, 0.0, _gen(0))


# ----------------------------------------------------------------------------- 7. fixed delta

def test_fixed_delta_is_used_as_given() -> None:
    wv = WriteVerifyConfig(delta=0.05)
    assert delta_for(0.5, wv) == 0.05
    assert delta_for(0.0, wv) == 0.05
    device, cost = DeviceConfig(), MappingCostConfig()
    full = mapping_cost(100, 100, 0.5, device, wv, cost)
    assert full.reads == pytest.approx(400 / math.erf(0.05 / (0.5 * math.sqrt(2.0))))
