"""Chips and noise injection: which weights are on devices, how a chip is seeded and drawn.

A *chip* is one seeded draw of the weight error of every mapped weight; noise-injection
training draws afresh each forward. What a device does to a weight (closed-form Gaussian,
per-device slices, level-dependent error, stuck devices, drift, read noise) is the device
registry's business (`tsblib.devices`); this module only loops over layers and chips.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Mapping

import torch
from torch import nn

from tsblib import devices
from tsblib.config import DeviceConfig, WriteVerifyConfig
from tsblib.devices import BitSlicer, stack_of, train_stack_of


def check_sigma(sigma: float, name: str = "sigma") -> None:
    """Raise a clear error for a negative or non-finite sigma."""
    devices.check_sigma(sigma, name)


def sigma_reference(device: DeviceConfig) -> float:
    """Size of the unit sigma is measured in, in device levels (range = 2^b - 1 levels)."""
    return BitSlicer(device).sigma_reference


def error_std_factor(device: DeviceConfig) -> float:
    """std(dW) / (sigma * max|W|) of the Gaussian weight error.

    Device j carries significance 2^(j b); a weight's full scale is (2^b - 1) sum_j 2^(j b)
    levels. With device error sigma * reference levels:
    std = sigma * reference * sqrt(sum_j 4^(j b)) / ((2^b - 1) sum_j 2^(j b)),
    i.e. 0.7776 for 8-bit weights on 2-bit devices, sigma relative to the device range.
    """
    return BitSlicer(device).error_std_factor


def mapped_weight_names(model: nn.Module) -> list[str]:
    """Names of the parameters stored on devices: weights of every conv and linear layer, and
    of every module that declares `stored_on_devices = True` (the Tiny Shared Block's kernel).
    Biases and BatchNorm are digital and never perturbed."""
    names = []
    for module_name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)) or getattr(module, "stored_on_devices",
                                                                 False):
            names.append(f"{module_name}.weight" if module_name else "weight")
    return names


def chip_seed(base_seed: int, sigma: float, chip: int, tag: str = "") -> int:
    """Seed of chip number `chip`: a hash of (base seed, sigma, chip, tag), independent of batching."""
    text = f"{base_seed}/{sigma:.9g}/{chip}/{tag}".encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") & ((1 << 63) - 1)


def weight_error(weight: torch.Tensor, sigma: float, device: DeviceConfig,
                 generator: torch.Generator, verified: torch.Tensor | bool = False,
                 wv: WriteVerifyConfig | None = None) -> torch.Tensor:
    """One draw of the programming error dW of `weight` (same shape, on the weight's device),
    from the chips' device models (`stack_of(device)`, see `tsblib.devices`).

    Verified weights (`verified` True, or a boolean mask) are program-and-verified. Noise is
    drawn from `generator` on the generator's device.
    """
    return stack_of(device).error(weight, sigma, generator, verified, wv)


def quantized_weight(weight: torch.Tensor, device: DeviceConfig) -> torch.Tensor:
    """The noise-free programmed weight: |W| quantized to `weight_bits` levels of max|W|."""
    return BitSlicer(device).quantize(weight)


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
    """Fresh weights-with-noise for one noise-injection forward: {name: W + dW}, drawn from the
    training device models (`train_stack_of(device)`: `device.train_model`, else the chips' models).

    dW is drawn with std from max|W| detached, so gradients flow straight through to W.
    """
    stack = train_stack_of(device)
    out = {}
    for name in names:
        weight = params[name]
        if sigma == 0:
            out[name] = weight
            continue
        out[name] = stack.perturb(weight, sigma, generator)
    return out


def read_hook(device: DeviceConfig, sigma: float, seeds: list[int],
              scales: Mapping[str, torch.Tensor]) -> "Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]] | None":
    """Per-inference read noise of K chips (seeds), or None when the device models have none
    (or sigma = 0): a function from stacked programmed weights {name: [K, ...]} to one read of
    them, each chip drawing from its own generator (seeded from its chip seed), so a chip's reads
    do not depend on the chips it is batched with. `scales` holds each layer's max|W| (targets)."""
    stack = stack_of(device)
    if sigma == 0 or not stack.readers:
        return None
    generators = [torch.Generator().manual_seed(chip_seed(seed, sigma, 0, "read")) for seed in seeds]

    def read(stacked: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for name, weights in stacked.items():
            scale = scales[name] if name in scales else weights.detach().abs().amax(
                dim=tuple(range(1, weights.dim())))
            out[name] = torch.stack([
                stack.read(weights[k], (scale[k] if scale.dim() else scale).cpu(), sigma, g)
                for k, g in enumerate(generators)])
        return out

    return read


def count_weights(model: nn.Module, names: list[str] | None = None) -> int:
    """Number of mapped weights (conv/linear/TSB kernels) of `model`."""
    params = dict(model.named_parameters())
    return int(sum(params[n].numel() for n in (names or mapped_weight_names(model))))
