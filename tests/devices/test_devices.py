"""The device registry (tsblib.devices): every model's statistics, composition, write-verify
interaction, training noise and the validation of its parameters."""
from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tsblib import mapping, writeverify
from tsblib.config import ConfigError, DeviceConfig, MappingCostConfig, WriteVerifyConfig
from tsblib.devices import BitSlicer, all_devices, params_of, stack_of
from tsblib.devices.drift import DriftParams
from tsblib.devices.level_dependent import LevelDependentParams, PRESETS, truncated_normal
from tsblib.devices.read_noise import ReadNoiseParams
from tsblib.devices.stuck_at import StuckAtParams
from tsblib.profiles import build_device
from tsblib.variation import read_hook, training_noise

ROOT = Path(__file__).resolve().parents[2]
WV = WriteVerifyConfig()


def _device(model, **params) -> DeviceConfig:
    return build_device({"model": model, **params})


def _weights(n: int = 200_000, seed: int = 0) -> torch.Tensor:
    w = torch.rand(n, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    w[0] = 1.0  # max|W| = 1
    return w


def _rel_tol(n: int, k: float = 5.0) -> float:
    """k standard errors of a sample standard deviation from n draws (relative)."""
    return k / math.sqrt(2 * n)


# ----------------------------------------------------------------------------- registry

def test_registry_holds_every_model_with_a_documented_parameters_dataclass():
    specs = all_devices()
    assert set(specs) >= {"gaussian", "slice", "level_dependent", "stuck_at", "read_noise", "drift"}
    for name, spec in specs.items():
        assert dataclasses.is_dataclass(spec.params) and spec.description
        assert spec.cls.__doc__ and spec.params.__doc__
        spec.params().validate(f"device.{name}", levels=4)


@pytest.mark.parametrize("name", sorted(all_devices()))
def test_every_model_programs_trains_and_is_ideal_at_sigma_zero(name):
    stack = stack_of(_device(name))
    w = torch.randn(6, 5, generator=torch.Generator().manual_seed(1), requires_grad=True)
    g = torch.Generator().manual_seed(2)
    assert torch.equal(stack.error(w, 0.0, g), torch.zeros_like(w))
    assert stack.perturb(w, 0.0, g) is w
    programmed = stack.program(w, 0.5, g, verified=torch.rand(6, 5, generator=g) < 0.5, wv=WV)
    assert programmed.shape == w.shape and torch.isfinite(programmed).all()
    noisy = stack.perturb(w, 0.5, g)
    noisy.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))  # straight through
    assert stack.error_variance(w, 0.5).shape in (torch.Size([]), w.shape)


def test_composition_orders_effects_and_allows_one_programming_model():
    stack = stack_of(_device(["read_noise", "stuck_at", "level_dependent"]))
    assert stack.name == "level_dependent+stuck_at+read_noise"
    assert not stack.weight_domain and stack.readers
    with pytest.raises(ConfigError, match="at most one programming-error model"):
        _device(["gaussian", "slice"]).validate()


def test_gaussian_and_read_noise_keep_the_closed_form_fast_path():
    assert stack_of(_device("gaussian")).weight_domain
    assert stack_of(_device(["gaussian", "read_noise"])).weight_domain
    assert not stack_of(_device(["gaussian", "stuck_at"])).weight_domain


def test_bit_slicer_round_trip_is_the_quantised_weight():
    slicer = BitSlicer(DeviceConfig())
    w = _weights(10_000)
    sliced = slicer.to_levels(w)
    assert sliced.digits.shape == (4, 10_000)
    assert sliced.digits.min() >= 0 and sliced.digits.max() <= 3
    back = slicer.to_weight(sliced, sliced.digits)
    assert torch.allclose(back.float(), slicer.quantize(w), atol=1e-7)
    assert (back - w.double()).abs().max() <= 0.5 / 255 + 1e-9


# ----------------------------------------------------------------------------- level dependent

@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_level_dependent_presets_scale_the_mid_band(preset):
    dev = _device("level_dependent", level_dependent={"preset": preset})
    stack, slicer = stack_of(dev), BitSlicer(dev)
    w = _weights()
    sigma = 0.3
    err = (stack.program(w, sigma, torch.Generator().manual_seed(3)) - slicer.quantize(w)).double()
    s = PRESETS[preset]
    norm = math.sqrt(0.4 * s * s + 0.6)
    base = slicer.error_std_factor * sigma  # max|W| = 1
    r = w.abs()
    inside = (r > 0.25) & (r < 0.75)
    for mask, factor in ((inside, s / norm), (~inside, 1 / norm)):
        measured = float(err[mask].std())
        assert measured == pytest.approx(base * factor, rel=_rel_tol(int(mask.sum())))
    # the closed-form variance of SWIM and training agrees with the simulation
    var = stack.error_variance(w, sigma)
    assert float(var[inside].mean()) == pytest.approx((base * s / norm) ** 2, rel=1e-6)


def test_level_table_sets_the_error_of_each_level():
    dev = _device("level_dependent", level_dependent={"level_std": [1.0, 0.0, 0.0, 0.0]})
    slicer = BitSlicer(dev)
    w = torch.cat([torch.ones(50_000), torch.zeros(50_000) + 1e-9])  # all levels 3 / all 0
    err = stack_of(dev).program(w, 0.2, torch.Generator().manual_seed(4)).double() - slicer.quantize(w).double()
    assert float(err[:50_000].abs().max()) == 0.0  # every device at level 3: no error
    expected = slicer.error_std_factor * 0.2
    assert float(err[50_000:].std()) == pytest.approx(expected, rel=_rel_tol(50_000))


def test_level_dependent_write_verify_residual_is_truncated_per_device():
    std = torch.full((400_000,), 2.0, dtype=torch.float64)
    res = truncated_normal(std, 1.0, torch.Generator().manual_seed(5))
    assert float(res.abs().max()) <= 1.0
    a = 0.5  # delta / std
    expected = 2.0 * math.sqrt(writeverify._variance_ratio(a))
    assert float(res.std()) == pytest.approx(expected, rel=_rel_tol(400_000))
    zero = truncated_normal(torch.zeros(10, dtype=torch.float64), 1.0, torch.Generator())
    assert torch.equal(zero, torch.zeros(10, dtype=torch.float64))


# ----------------------------------------------------------------------------- stuck at

def test_stuck_at_probabilities_and_levels():
    dev = _device("stuck_at", stuck_at={"p_low": 0.05, "p_high": 0.01})
    stack, slicer = stack_of(dev), BitSlicer(dev)
    w = torch.full((100_000,), 0.5)
    w[0] = 1.0
    sliced = slicer.to_levels(w)
    from tsblib.devices.base import DeviceState

    state = DeviceState(sliced=sliced, levels=sliced.digits, verified=False)
    stack.modifiers[0].apply(state, 0.5, torch.Generator().manual_seed(6))
    n = state.levels.numel()
    low = float((state.stuck & (state.levels == 0)).sum()) / n
    high = float((state.stuck & (state.levels == 3)).sum()) / n
    for measured, p in ((low, 0.05), (high, 0.01)):
        assert abs(measured - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert torch.equal(state.levels[~state.stuck], sliced.digits[~state.stuck])


def test_write_verify_cannot_repair_a_stuck_device():
    dev = _device(["gaussian", "stuck_at"], stuck_at={"p_low": 0.5, "p_high": 0.0})
    w = torch.full((20_000,), 1.0)  # every device at level 3
    programmed = stack_of(dev).program(w, 0.5, torch.Generator().manual_seed(7), verified=True, wv=WV)
    # a verified, unstuck weight is within delta on every device; a stuck one lost >= one level
    # of its least significant device
    lost = (1.0 - programmed) * 255
    assert float((lost > 0.9).float().mean()) > 0.9  # 1 - 0.5^4 of the weights have a stuck device


def test_mapping_cost_of_stuck_devices_runs_to_the_iteration_cap():
    plain, stuck = DeviceConfig(), _device(["gaussian", "stuck_at"], stuck_at={"p_low": 0.01, "p_high": 0.001})
    wv = WriteVerifyConfig(max_iterations=100)
    e = writeverify.expected_iterations(0.5, writeverify.delta_for(0.5, wv))
    assert stack_of(plain).verify_iterations(0.5, wv) == e
    assert stack_of(stuck).verify_iterations(0.5, wv) == pytest.approx(0.989 * e + 0.011 * 100)
    cost = MappingCostConfig()
    assert mapping.mapping_cost(1000, 1000, 0.5, stuck, wv, cost).write_pulses == \
        pytest.approx(4000 * (0.989 * e + 1.1))


# ----------------------------------------------------------------------------- read noise

def test_read_noise_is_fresh_at_every_read_and_absent_from_programming():
    dev = _device(["gaussian", "read_noise"], read_noise={"sigma": 0.1})
    w = _weights(100_000)
    g = torch.Generator().manual_seed(8)
    assert torch.equal(stack_of(dev).program(w, 0.5, torch.Generator().manual_seed(1)),
                       stack_of(DeviceConfig()).program(w, 0.5, torch.Generator().manual_seed(1)))
    first = stack_of(dev).read(w, torch.tensor(1.0), 0.5, g)
    second = stack_of(dev).read(w, torch.tensor(1.0), 0.5, g)
    assert not torch.equal(first, second)
    expected = BitSlicer(dev).error_std_factor * 0.1
    assert float((first - w).std()) == pytest.approx(expected, rel=_rel_tol(100_000))


def test_read_hook_draws_each_chip_from_its_own_generator():
    dev = _device(["gaussian", "read_noise"])
    stacked = {"w": torch.zeros(3, 1000)}
    scales = {"w": torch.tensor(1.0)}
    together = read_hook(dev, 0.5, [10, 11, 12], scales)(stacked)["w"]
    alone = read_hook(dev, 0.5, [11], scales)({"w": torch.zeros(1, 1000)})["w"]
    assert torch.equal(together[1], alone[0])
    assert read_hook(DeviceConfig(), 0.5, [1], scales) is None
    assert read_hook(dev, 0.0, [1], scales) is None


# ----------------------------------------------------------------------------- drift

def test_drift_is_absent_at_the_reference_time_and_matches_the_power_law():
    base = _device(["slice", "drift"])
    w = _weights(100_000)
    g = lambda: torch.Generator().manual_seed(9)  # noqa: E731
    slice_only = DeviceConfig(model=("slice",))
    assert torch.equal(stack_of(base).program(w, 0.3, g()), stack_of(slice_only).program(w, 0.3, g()))
    p = DriftParams(nu_mean=0.06, nu_std=0.02, t_seconds=20.0 * 1e6)
    later = dataclasses.replace(base, params={"drift": p})
    stack = stack_of(later)
    factors = stack.modifiers[0].factors(torch.Size([400_000]), torch.Generator().manual_seed(1), "cpu")
    mean, square = stack.modifiers[0].moments()
    assert float(factors.mean()) == pytest.approx(mean, rel=_rel_tol(400_000))
    assert float((factors ** 2).mean()) == pytest.approx(square, rel=3 * _rel_tol(400_000))
    drifted = stack.program(w, 0.3, g())
    assert float(drifted.abs().sum()) < 0.5 * float(w.abs().sum())  # 1e6 x t0: about 0.44


def test_global_drift_compensation_restores_the_layer_readout():
    p = DriftParams(t_seconds=20.0 * 1e6, compensation=True)
    dev = dataclasses.replace(_device(["slice", "drift"]), params={"drift": p})
    w = _weights(100_000)
    before = stack_of(DeviceConfig(model=("slice",))).program(w, 0.3, torch.Generator().manual_seed(9))
    after = stack_of(dev).program(w, 0.3, torch.Generator().manual_seed(9))
    assert float(after.abs().sum()) == pytest.approx(float(before.abs().sum()), rel=0.02)
    # compensated error is much smaller than uncompensated
    raw = dataclasses.replace(dev, params={"drift": dataclasses.replace(p, compensation=False)})
    uncompensated = stack_of(raw).program(w, 0.3, torch.Generator().manual_seed(9))
    assert float((after - before).std()) < 0.5 * float((uncompensated - before).std())


# ----------------------------------------------------------------------------- training

def test_training_noise_follows_train_model_when_given():
    w = {"w": _weights(100_000)}
    chips_stuck = _device(["gaussian", "stuck_at"])
    own = training_noise(w, ["w"], 0.5, chips_stuck, torch.Generator().manual_seed(1))["w"]
    gaussian_only = dataclasses.replace(chips_stuck, train_model=("gaussian",))
    plain = training_noise(w, ["w"], 0.5, gaussian_only, torch.Generator().manual_seed(1))["w"]
    reference = training_noise(w, ["w"], 0.5, DeviceConfig(), torch.Generator().manual_seed(1))["w"]
    assert torch.equal(plain, reference)
    assert not torch.equal(own, reference)


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("device, pattern", [
    ({"model": "gaussian", "stuck_at": {"p_low": 1.5}}, r"device.stuck_at.p_low = 1.5 .*probability in \[0, 1\]"),
    ({"model": "stuck_at", "p_high": -0.1}, r"device.stuck_at.p_high = -0.1 .*probability in \[0, 1\]"),
    ({"model": ["slice", "drift"], "drift": {"nu_mean": -0.05}}, r"device.drift.nu_mean = -0.05 .*drift exponent >= 0"),
    ({"model": ["slice", "drift"], "drift": {"t_seconds": -1.0}}, r"device.drift.t_seconds = -1.0 .*time"),
    ({"model": "quantum"}, r"device.model = 'quantum' is not allowed: expected one of \["),
    ({"model": "level_dependent", "level_dependent": {"level_std": [1.0, 2.0, 3.0]}},
     r"device.level_dependent.level_std = \[1.0, 2.0, 3.0\] .*expected 4 values"),
    ({"model": "level_dependent", "level_dependent": {"preset": "rram3"}}, r"preset = 'rram3' .*rram4"),
    ({"model": "gaussian", "bogus": 1}, r"device.bogus is not a known parameter"),
])
def test_bad_device_parameters_name_key_value_and_allowed(device, pattern, tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profiles"]["embedded"]["device"] = {"weight_bits": 8, "device_bits": 2, **device}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw))
    from tsblib.profiles import load_profile

    with pytest.raises(ConfigError, match=pattern):
        load_profile(params)


def test_validate_command_rejects_bad_device_input_before_writing_anything(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profiles"]["embedded"]["device"]["model"] = ["gaussian", "stuck_at"]
    raw["profiles"]["embedded"]["device"]["stuck_at"] = {"p_low": 2}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    run = subprocess.run([sys.executable, "-m", "tsblib", "validate", "--params",
                          str(tmp_path / "params.yaml")], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert run.returncode == 2
    assert "device.stuck_at.p_low = 2" in run.stderr and "[0, 1]" in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


def test_robustness_scenarios_are_validated_too(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["profiles"]["embedded"]["robustness"] = {
        "scenarios": [{"name": "bad", "device": {"model": ["slice", "drift"], "drift": {"nu_std": -1}}}]}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    from tsblib.profiles import load_profile

    with pytest.raises(ConfigError, match=r"device.drift.nu_std = -1"):
        load_profile(tmp_path / "params.yaml")


def test_legacy_noise_model_key_still_reads():
    assert build_device({"noise_model": "slice"}).model == ("slice",)
    with pytest.raises(ConfigError, match="noise_model"):
        build_device({"noise_model": "slice", "model": "level_dependent"})


def test_single_model_parameters_may_sit_next_to_model():
    dev = build_device({"model": "stuck_at", "p_low": 0.2})
    assert params_of(dev, "stuck_at") == StuckAtParams(p_low=0.2)
    assert params_of(dev, "read_noise") == ReadNoiseParams()
    assert params_of(dev, "level_dependent") == LevelDependentParams()
