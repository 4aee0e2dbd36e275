import math

import pytest
import torch
from scipy import stats

from tsblib import writeverify
from tsblib.config import DeviceConfig, NoiseModel, SigmaConvention, WriteVerifyConfig
from tsblib.models import build_model
from tsblib.tsb import insert_tsb
from tsblib.config import TSBConfig
from tsblib.variation import (chip_seed, error_std_factor, mapped_weight_names, quantized_weight,
                              sample_chip, sample_chips, training_noise, weight_error)

N = 1_000_000
GAUSS = DeviceConfig()
SLICE = DeviceConfig(noise_model=NoiseModel.SLICE)


def _weight(n=N, seed=0):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed))


def _std_tolerance(n: int) -> float:
    # relative standard error of a sample std is 1/sqrt(2(n-1)); allow 5 of them
    return 5 / math.sqrt(2 * (n - 1))


def test_closed_form_factor_for_8_bit_weights_on_2_bit_devices():
    assert error_std_factor(GAUSS) == pytest.approx(0.7776, abs=1e-4)
    expected = math.sqrt(1 + 16 + 256 + 4096) / (1 + 4 + 16 + 64)
    assert error_std_factor(GAUSS) == pytest.approx(expected, rel=1e-12)


def test_level_step_convention_is_three_times_smaller_for_2_bit_devices():
    level = DeviceConfig(convention=SigmaConvention.LEVEL_STEP)
    assert error_std_factor(level) == pytest.approx(error_std_factor(GAUSS) / 3, rel=1e-12)


@pytest.mark.parametrize("sigma", [0.1, 0.5])
def test_gaussian_error_has_the_closed_form_std(sigma):
    w = _weight()
    err = weight_error(w, sigma, GAUSS, torch.Generator().manual_seed(1))
    expected = 0.7776 * sigma * w.abs().max()
    assert float(err.std()) == pytest.approx(float(expected), rel=_std_tolerance(N))
    assert abs(float(err.mean())) < 5 * float(expected) / math.sqrt(N)


@pytest.mark.parametrize("convention", list(SigmaConvention))
def test_slice_simulation_agrees_with_the_closed_form(convention):
    sigma = 0.3
    slice_dev = DeviceConfig(noise_model=NoiseModel.SLICE, convention=convention)
    w = _weight()
    programmed = w + weight_error(w, sigma, slice_dev, torch.Generator().manual_seed(2))
    noise = (programmed - quantized_weight(w, slice_dev)).double()
    closed = error_std_factor(slice_dev) * sigma * float(w.abs().max())
    rel = abs(float(noise.std()) / closed - 1)
    assert rel < 0.01 and rel < _std_tolerance(N)
    # distribution: the per-device sum is Gaussian with the closed-form std
    sample = noise[:20_000].numpy() / closed
    assert stats.kstest(sample, "norm").pvalue > 0.001


def test_slice_quantizes_to_weight_bits():
    w = _weight(1000)
    q = quantized_weight(w, GAUSS)
    levels = torch.round(q.abs() / w.abs().max() * 255)
    assert torch.allclose(q.abs() / w.abs().max() * 255, levels, atol=1e-4)
    assert (q - w).abs().max() <= w.abs().max() / 255 / 2 + 1e-6


def test_device_bits_must_divide_weight_bits():
    from tsblib.config import ConfigError
    with pytest.raises(ConfigError, match="device.device_bits = 3"):
        DeviceConfig(device_bits=3).validate()


def test_negative_sigma_is_rejected():
    with pytest.raises(ValueError, match="sigma = -0.1"):
        weight_error(_weight(10), -0.1, GAUSS, torch.Generator())


def test_same_seed_same_chip_other_seed_other_chip():
    model = build_model("lenet3")
    params = dict(model.named_parameters())
    names = mapped_weight_names(model)
    a = sample_chip(params, names, 0.3, GAUSS, seed=11)
    b = sample_chip(params, names, 0.3, GAUSS, seed=11)
    c = sample_chip(params, names, 0.3, GAUSS, seed=12)
    assert all(torch.equal(a[n], b[n]) for n in names)
    assert not torch.equal(a["conv1.weight"], c["conv1.weight"])


def test_chip_does_not_depend_on_the_batch_it_is_drawn_in():
    model = build_model("lenet3")
    params = dict(model.named_parameters())
    names = mapped_weight_names(model)
    seeds = [chip_seed(5, 0.4, k) for k in range(5)]
    together = sample_chips(params, names, 0.4, GAUSS, seeds)
    alone = sample_chips(params, names, 0.4, GAUSS, seeds[3:4])
    assert all(torch.equal(together[n][3], alone[n][0]) for n in names)


def test_sigma_zero_leaves_the_model_bit_identical():
    model = build_model("lenet3").eval()
    params = dict(model.named_parameters())
    names = mapped_weight_names(model)
    for device in (GAUSS, SLICE):
        chip = sample_chip(params, names, 0.0, device, seed=3)
        assert all(torch.equal(chip[n], params[n]) for n in names)


def test_biases_and_batchnorm_are_never_mapped():
    model = insert_tsb(build_model("resnet18"), TSBConfig(width=64))
    names = mapped_weight_names(model)
    assert all(n.endswith("weight") for n in names)
    assert not any("bn" in n or "shortcut.1" in n for n in names)
    assert "fc.bias" not in names and "tsb.shared.weight" in names
    chip = sample_chip(dict(model.named_parameters()), names, 0.5, GAUSS, seed=0)
    assert set(chip) == set(names)


def test_write_verified_weights_get_the_residual_noise():
    w = _weight()
    mask = torch.zeros(N, dtype=torch.bool)
    mask[: N // 2] = True
    err = weight_error(w, 0.4, GAUSS, torch.Generator().manual_seed(4), mask, WriteVerifyConfig())
    ratio = float(err[mask].std() / err[~mask].std())
    delta = writeverify.delta_for(0.4, WriteVerifyConfig())
    assert ratio == pytest.approx(writeverify.residual_std(0.4, delta) / 0.4, rel=2 * _std_tolerance(N // 2))
    assert ratio == pytest.approx(0.1, rel=0.01)


def test_slice_write_verify_residual_per_device():
    w = _weight(200_000)
    err = weight_error(w, 0.4, SLICE, torch.Generator().manual_seed(6), True, WriteVerifyConfig())
    noise = w + err - quantized_weight(w, SLICE)
    expected = error_std_factor(SLICE) * 0.04 * float(w.abs().max())
    assert float(noise.std()) == pytest.approx(expected, rel=0.01)


def test_training_noise_is_fresh_and_passes_gradients_straight_through():
    w = torch.randn(100, 100, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    first = training_noise({"w": w}, ["w"], 0.5, GAUSS, gen)["w"]
    second = training_noise({"w": w}, ["w"], 0.5, GAUSS, gen)["w"]
    assert not torch.equal(first, second)
    first.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
