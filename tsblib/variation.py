"""Device-variation model: how weights map onto NVM devices and the error programming adds.

A *chip* is one seeded draw of the weight error of every mapped weight; noise-injection
training draws afresh each forward. Two simulations are offered: the closed-form Gaussian
(fast path) and the per-device slice simulation it summarises (DESIGN section 2).
"""
from __future__ import annotations

import hashlib
import math
from typing import Mapping

import torch
from torch import nn

from tsblib.config import DeviceConfig, NoiseModel, SigmaConvention, WriteVerifyConfig
from tsblib import writeverify


def check_sigma(sigma: float, name: str = "sigma") -> None:
    """Raise a clear error for a negative or non-finite sigma."""
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"{name} = {sigma!r} is not allowed: expected a finite number >= 0")


def sigma_reference(device: DeviceConfig) -> float:
    """Size of the unit sigma is measured in, in device levels (range = 2^b - 1 levels)."""
    levels = 2 ** device.device_bits - 1
    return float(levels) if device.convention is SigmaConvention.DEVICE_RANGE else 1.0


def error_std_factor(device: DeviceConfig) -> float:
    """std(dW) / (sigma * max|W|) of the Gaussian weight error.

    Device j carries significance 2^(j b); a weight's full scale is (2^b - 1) sum_j 2^(j b)
    levels. With device error sigma * reference levels:
    std = sigma * reference * sqrt(sum_j 4^(j b)) / ((2^b - 1) sum_j 2^(j b)),
    i.e. 0.7776 for 8-bit weights on 2-bit devices, sigma relative to the device range.
    """
    b, n = device.device_bits, device.devices_per_weight
    levels = 2 ** b - 1
    num = math.sqrt(sum(4 ** (j * b) for j in range(n)))
    den = levels * sum(2 ** (j * b) for j in range(n))
    return sigma_reference(device) * num / den


def mapped_weight_names(model: nn.Module) -> list[str]:
    """Names of the parameters stored on devices: weights of every conv and linear layer,
    and the Tiny Shared Block kernels. Biases and BatchNorm are digital and never perturbed."""
    from tsblib.tsb import TinySharedBlock  # local: tsb imports this module

    names = []
    for module_name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, TinySharedBlock)):
            names.append(f"{module_name}.weight" if module_name else "weight")
    return names


def chip_seed(base_seed: int, sigma: float, chip: int, tag: str = "") -> int:
    """Seed of chip number `chip`: a hash of (base seed, sigma, chip, tag), independent of batching."""
    text = f"{base_seed}/{sigma:.9g}/{chip}/{tag}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & ((1 << 63) - 1)


def _layer_scale(weight: torch.Tensor) -> torch.Tensor:
    """max|W| of a layer (the full-scale conductance), detached."""
    return weight.detach().abs().max()


def weight_error(weight: torch.Tensor, sigma: float, device: DeviceConfig,
                 generator: torch.Generator, verified: torch.Tensor | bool = False,
                 wv: WriteVerifyConfig | None = None) -> torch.Tensor:
    """One draw of the programming error dW of `weight` (same shape, on the weight's device).

    Verified weights (`verified` True, or a boolean mask) get the write-verify residual
    instead of the full error. Noise is drawn from `generator` on the generator's device.
    """
    check_sigma(sigma)
    wv = wv or WriteVerifyConfig()
    gen_device = generator.device
    if sigma == 0:
        return torch.zeros_like(weight)
    if device.noise_model is NoiseModel.SLICE:
        return _slice_error(weight, sigma, device, generator, verified, wv)
    scale = _layer_scale(weight)
    z = torch.randn(weight.shape, generator=generator, device=gen_device).to(weight.device)
    std_full = error_std_factor(device) * sigma * scale
    if verified is False:
        return (std_full * z).to(weight.dtype)
    delta = writeverify.delta_for(sigma, wv)
    std_res = error_std_factor(device) * writeverify.residual_std(sigma, delta) * scale
    if verified is True:
        return (std_res * z).to(weight.dtype)
    mask = verified.to(weight.device)
    return torch.where(mask, std_res * z, std_full * z).to(weight.dtype)


def quantized_weight(weight: torch.Tensor, device: DeviceConfig) -> torch.Tensor:
    """The noise-free programmed weight: |W| quantized to `weight_bits` levels of max|W|."""
    scale = _layer_scale(weight)
    if scale == 0:
        return weight.clone()
    full_scale = 2 ** device.weight_bits - 1
    w = weight.detach().double()
    q = torch.round(w.abs() / scale * full_scale)
    return (torch.sign(w) * q / full_scale * scale).to(weight.dtype)


def _slice_error(weight: torch.Tensor, sigma: float, device: DeviceConfig,
                 generator: torch.Generator, verified: torch.Tensor | bool,
                 wv: WriteVerifyConfig) -> torch.Tensor:
    """Per-device simulation: quantize |W| to weight_bits, split into devices, perturb, recombine.

    The returned dW includes the quantization error, so W + dW is the programmed weight.
    """
    b, n = device.device_bits, device.devices_per_weight
    levels = 2 ** b - 1
    full_scale = 2 ** device.weight_bits - 1
    scale = _layer_scale(weight)
    w = weight.detach().double()
    if scale == 0:
        return torch.zeros_like(weight)
    q = torch.round(w.abs() / scale * full_scale).long()
    digits = torch.stack([(q >> (j * b)) & levels for j in range(n)]).double()   # [n, *shape]
    unit = sigma * sigma_reference(device)                  # device error std, in levels
    gen_device = generator.device
    err = torch.randn(digits.shape, generator=generator, device=gen_device,
                      dtype=torch.float64).to(w.device) * unit
    if verified is not False:
        delta = writeverify.delta_for(sigma, wv)
        res = writeverify.sample_residual(digits.shape, sigma, delta, generator,
                                          dtype=torch.float64).to(w.device)
        res = res * sigma_reference(device)
        mask = torch.ones_like(w, dtype=torch.bool) if verified is True else verified.to(w.device)
        err = torch.where(mask.unsqueeze(0), res, err)
    weights_j = torch.tensor([2.0 ** (j * b) for j in range(n)], dtype=torch.float64,
                             device=w.device).view(-1, *([1] * w.dim()))
    programmed = ((digits + err) * weights_j).sum(0)
    new = torch.sign(w) * programmed / full_scale * scale
    # zero weights keep sign 0: their devices are programmed to 0 and their error is lost by
    # sign(0) = 0; map them with a positive sign so that their device error is kept.
    new = torch.where(w == 0, programmed / full_scale * scale, new)
    return (new - w).to(weight.dtype)


def sample_chip(params: Mapping[str, torch.Tensor], names: list[str], sigma: float,
                device: DeviceConfig, seed: int, verify: Mapping[str, torch.Tensor | bool] | None = None,
                wv: WriteVerifyConfig | None = None) -> dict[str, torch.Tensor]:
    """Programmed weights of one chip: {name: W + dW} for every mapped weight in `names`.

    Noise is drawn on the CPU from a generator seeded with `seed`, in the order of `names`,
    so the same seed gives the same chip on any device and in any chip batch.
    """
    generator = torch.Generator().manual_seed(seed)
    verify = verify or {}
    out = {}
    for name in names:
        weight = params[name]
        err = weight_error(weight.detach().cpu(), sigma, device, generator,
                           verify.get(name, False), wv)
        out[name] = weight.detach() + err.to(weight.device)
    return out


def sample_chips(params: Mapping[str, torch.Tensor], names: list[str], sigma: float,
                 device: DeviceConfig, seeds: list[int],
                 verify: Mapping[str, torch.Tensor | bool] | None = None,
                 wv: WriteVerifyConfig | None = None) -> dict[str, torch.Tensor]:
    """Programmed weights of several chips, stacked: {name: tensor [len(seeds), *shape]}."""
    chips = [sample_chip(params, names, sigma, device, seed, verify, wv) for seed in seeds]
    return {name: torch.stack([chip[name] for chip in chips]) for name in names}


def training_noise(params: Mapping[str, torch.Tensor], names: list[str], sigma: float,
                   device: DeviceConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Fresh weights-with-noise for one noise-injection forward: {name: W + dW}.

    dW is drawn with std from max|W| detached, so gradients flow straight through to W.
    """
    out = {}
    for name in names:
        weight = params[name]
        if sigma == 0:
            out[name] = weight
            continue
        std = error_std_factor(device) * sigma * _layer_scale(weight)
        z = torch.randn(weight.shape, generator=generator, device=generator.device,
                        dtype=weight.dtype)
        out[name] = weight + std * z.to(weight.device)
    return out


def count_weights(model: nn.Module, names: list[str] | None = None) -> int:
    """Number of mapped weights (conv/linear/TSB kernels) of `model`."""
    params = dict(model.named_parameters())
    return int(sum(params[n].numel() for n in (names or mapped_weight_names(model))))
