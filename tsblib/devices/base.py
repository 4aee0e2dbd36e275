"""The device-model interface and its registry: one `DeviceModel` subclass per physical effect
(programming error, stuck devices, drift, read noise), registered by name with its parameters
dataclass, and `DeviceStack`, their composition, which every consumer of device errors calls.

Shapes follow IBM aihwkit's `BaseNoiseModel` (apply_programming_noise, apply_drift_noise, read
noise, drift compensation) and Sandia CrossSim's device classes (`IDevice`: programming_error,
read_noise, drift_error, chosen by name). A chip is programmed per device: the bit-slice converter
(`tsblib.devices.bitslicer`) gives every device its target level, the programming model adds its
error (write-verify replaces it by the verify residual), the fault and time models act on the
programmed levels in that order, and the levels are recombined; models with a closed form act on
the weights directly when nothing in the stack needs levels (the Gaussian fast path).
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from tsblib import writeverify
from tsblib.config import ConfigError, DeviceConfig, WriteVerifyConfig
from tsblib.devices.bitslicer import BitSlicer, Sliced
from tsblib.package_scan import PackageScan

Verified = "torch.Tensor | bool"


class Phase(int, enum.Enum):
    """Where a device model acts in the life of a chip (the order effects are applied in)."""

    PROGRAM = 0
    """Programming error of each device (write-verify acts on it); at most one per stack."""
    FAULT = 1
    """Defects fixed at manufacture (stuck devices): they override what was programmed."""
    TIME = 2
    """Change after programming (conductance drift), evaluated at a stated time."""
    READ = 3
    """Noise of every read (every inference), drawn afresh each forward."""


@dataclass
class DeviceState:
    """One layer of one chip during programming, per device."""

    sliced: Sliced
    """The layer's target weights as device levels."""
    levels: torch.Tensor
    """Programmed level of every device [n, *W.shape], float64 (models update it)."""
    verified: torch.Tensor | bool
    """Write-verified weights: False, True, or a boolean mask shaped like W."""
    stuck: torch.Tensor | None = None
    """Devices stuck at a level [n, *W.shape] (set by fault models), or None."""


class DeviceModel:
    """One physical effect of NVM devices on the weights stored in them.

    Subclasses set `name`, `phase` and `weight_domain` and override what their effect changes;
    the defaults leave weights untouched. Every method follows the convention of sigma = 0
    being the ideal chip: no effect at all (the noise-free reference of every gap)."""

    name: str = ""
    phase: Phase = Phase.PROGRAM
    weight_domain: bool = False
    """True when the effect has a closed form on weights and needs no device levels."""
    reads: bool = False
    """True when the effect is drawn afresh on every read (`read`)."""

    def __init__(self, params: Any, slicer: BitSlicer) -> None:
        self.params = params
        self.slicer = slicer

    # -- one chip ------------------------------------------------------------------------------
    def weight_error(self, weight: torch.Tensor, sigma: float, generator: torch.Generator,
                     verified: torch.Tensor | bool, wv: WriteVerifyConfig) -> torch.Tensor:
        """Closed-form programming error dW of a layer (weight-domain models only)."""
        raise NotImplementedError(f"device model {self.name!r} has no closed form on weights")

    def device_error(self, state: DeviceState, sigma: float, generator: torch.Generator,
                     wv: WriteVerifyConfig) -> torch.Tensor:
        """Programming error of every device, in levels [n, *W.shape] (PROGRAM models)."""
        return torch.zeros_like(state.levels)

    def apply(self, state: DeviceState, sigma: float, generator: torch.Generator) -> None:
        """Act on the programmed levels `state.levels` (FAULT and TIME models)."""

    def read(self, weight: torch.Tensor, scale: torch.Tensor, sigma: float,
             generator: torch.Generator) -> torch.Tensor:
        """What one read of programmed weights returns (READ models add fresh noise)."""
        return weight

    # -- training and sensitivity ---------------------------------------------------------------
    def perturb(self, weight: torch.Tensor, noisy: torch.Tensor, sigma: float,
                generator: torch.Generator, verified: bool, wv: WriteVerifyConfig,
                batch_dims: int) -> torch.Tensor:
        """Noise-injection training: `noisy` (weight plus the effects of the models before this
        one) plus a fresh draw of this effect; gradients pass straight through to `weight`."""
        return noisy

    def error_variance(self, weight: torch.Tensor, sigma: float) -> torch.Tensor | float:
        """Expected squared weight error this effect adds, per weight (broadcastable)."""
        return 0.0

    # -- write-verify ---------------------------------------------------------------------------
    def verify_iterations(self, sigma: float, delta: float) -> float:
        """Expected program-and-verify iterations per device (PROGRAM models)."""
        return writeverify.expected_iterations(sigma, delta)

    def adjust_iterations(self, iterations: float, wv: WriteVerifyConfig) -> float:
        """Expected iterations once this effect is present (a stuck device never verifies)."""
        return iterations


@dataclass(frozen=True)
class DeviceSpec:
    """A registered device model."""

    name: str
    """Name in params.yaml (`device: {model: NAME}`)."""
    cls: type[DeviceModel]
    """The model's class."""
    params: type
    """Its parameters dataclass (`device: {NAME: {...}}`), with `validate(key)`."""
    description: str
    """One line: the physical effect."""


DEVICES: dict[str, DeviceSpec] = {}
"""Registered device models by name (filled when `tsblib.devices` is imported)."""

def register_device(cls: type[DeviceModel], params: type, description: str) -> type[DeviceModel]:
    """Register device model `cls` (its `name`) with its parameters dataclass."""
    if cls.name in DEVICES and DEVICES[cls.name].cls is not cls:
        raise ValueError(f"device model {cls.name!r} is registered twice")
    DEVICES[cls.name] = DeviceSpec(cls.name, cls, params, description)
    return cls


_load_all = PackageScan(__package__, Path(__file__).parent)
"""Imports every module of this package (each registers itself) on first use."""


def all_devices() -> dict[str, DeviceSpec]:
    """Every registered device model by name (imports the model modules on first use)."""
    _load_all()
    return DEVICES


def get_device(name: str) -> DeviceSpec:
    """The spec of device model `name`; an unknown name lists the known ones."""
    _load_all()
    if name not in DEVICES:
        raise ConfigError(f"device.model = {name!r} is not allowed: expected one of "
                          f"{sorted(DEVICES)}. Fix it in params.yaml.")
    return DEVICES[name]


def params_of(device: DeviceConfig, name: str) -> Any:
    """The parameters dataclass of device model `name` in `device`: as configured, else the
    model's registry defaults."""
    if name in device.params:
        return device.params[name]
    return get_device(name).params()


def stack_of(device: DeviceConfig) -> DeviceStack:
    """The composed device models of every chip of `device` (built once per config object)."""
    stack = device.__dict__.get("_stack")
    if stack is None:
        stack = DeviceStack(device)
        object.__setattr__(device, "_stack", stack)  # a cache, outside the dataclass fields
    return stack


def train_stack_of(device: DeviceConfig) -> DeviceStack:
    """The composed device models of noise-injection training (`train_model`, else `model`)."""
    stack = device.__dict__.get("_train_stack")
    if stack is None:
        stack = DeviceStack(device, device.train_model or device.model)
        object.__setattr__(device, "_train_stack", stack)
    return stack


def check_device(device: DeviceConfig) -> None:
    """The checks of a device block that need the models: both stacks are built, which checks
    their composition (at most one programming-error model); raises ConfigError."""
    stack_of(device)
    train_stack_of(device)


def check_probability(key: str, value: float) -> None:
    """ConfigError unless `value` is a probability in [0, 1]."""
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ConfigError(f"{key} = {value!r} is not allowed: expected a probability in [0, 1]. "
                          f"Fix it in params.yaml.")


def check_nonnegative(key: str, value: float, what: str = "a finite number >= 0") -> None:
    """ConfigError unless `value` is finite and >= 0."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{key} = {value!r} is not allowed: expected {what}. "
                          f"Fix it in params.yaml.")


def check_sigma(sigma: float, name: str = "sigma") -> None:
    """Raise a clear error for a negative or non-finite sigma."""
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"{name} = {sigma!r} is not allowed: expected a finite number >= 0")


class DeviceStack:
    """The device models of a chip, composed in `Phase` order: what every consumer calls.

    program / error: one chip's programmed weights; perturb: noise-injection training;
    error_variance: expected squared error per weight (SWIM); read: one inference's read;
    verify_iterations: write-verify cost per device (mapping cost)."""

    def __init__(self, device: DeviceConfig, names: tuple[str, ...] | None = None) -> None:
        self.config = device
        self.slicer = BitSlicer(device)
        names = device.model if names is None else names
        models = [get_device(n) for n in names]
        self.models: list[DeviceModel] = sorted(
            (spec.cls(params_of(device, spec.name), self.slicer) for spec in models),
            key=lambda m: m.phase)
        programs = [m for m in self.models if m.phase is Phase.PROGRAM]
        if len(programs) > 1:
            raise ConfigError(f"device.model = {list(names)} is not allowed: expected at most one "
                              f"programming-error model (got {[m.name for m in programs]})")
        self.program_model: DeviceModel | None = programs[0] if programs else None
        self.modifiers = [m for m in self.models if m.phase in (Phase.FAULT, Phase.TIME)]
        self.readers = [m for m in self.models if m.reads]
        self.weight_domain = all(m.weight_domain for m in self.models)
        self.name = "+".join(m.name for m in self.models)

    @property
    def error_std_factor(self) -> float:
        """std(dW) / (sigma * max|W|) of the per-device Gaussian error (see `BitSlicer`)."""
        return self.slicer.error_std_factor

    # -- chips ----------------------------------------------------------------------------------
    def error(self, weight: torch.Tensor, sigma: float, generator: torch.Generator,
              verified: torch.Tensor | bool = False,
              wv: WriteVerifyConfig | None = None) -> torch.Tensor:
        """One draw of the programming error dW of a layer (so W + dW is what the chip holds).

        Verified weights (`verified` True, or a boolean mask) are program-and-verified. Noise is
        drawn from `generator` on the generator's device; sigma = 0 is the ideal chip (dW = 0)."""
        check_sigma(sigma)
        wv = wv or WriteVerifyConfig()
        if sigma == 0:
            return torch.zeros_like(weight)
        if self.weight_domain:
            if self.program_model is None:
                return torch.zeros_like(weight)
            return self.program_model.weight_error(weight, sigma, generator, verified, wv)
        sliced = self.slicer.to_levels(weight)
        if sliced is None:
            return torch.zeros_like(weight)
        state = DeviceState(sliced=sliced, levels=sliced.digits, verified=verified)
        if self.program_model is not None:
            state.levels = sliced.digits + self.program_model.device_error(state, sigma, generator, wv)
        for model in self.modifiers:
            model.apply(state, sigma, generator)
        return (self.slicer.to_weight(sliced, state.levels) - sliced.weight).to(weight.dtype)

    def program(self, weight: torch.Tensor, sigma: float, generator: torch.Generator,
                verified: torch.Tensor | bool = False,
                wv: WriteVerifyConfig | None = None) -> torch.Tensor:
        """The programmed weights of a layer for one chip: W + dW (detached)."""
        return weight.detach() + self.error(weight, sigma, generator, verified, wv)

    def read(self, weight: torch.Tensor, scale: torch.Tensor, sigma: float,
             generator: torch.Generator) -> torch.Tensor:
        """One read of programmed weights (fresh read noise of every READ model); `scale` is
        the layer's max|W| (full scale)."""
        if sigma == 0:
            return weight
        for model in self.readers:
            weight = model.read(weight, scale, sigma, generator)
        return weight

    # -- training, sensitivity, cost ------------------------------------------------------------
    def perturb(self, weight: torch.Tensor, sigma: float, generator: torch.Generator, *,
                verified: bool = False, wv: WriteVerifyConfig | None = None,
                batch_dims: int = 0) -> torch.Tensor:
        """Noise-injection training: weight plus a fresh draw of every effect, gradients passing
        straight through to `weight`. `verified` draws the write-verify residual instead of the
        programming error; `batch_dims` = 1 treats the first dimension as chips (own max|W|)."""
        if sigma == 0:
            return weight
        wv = wv or WriteVerifyConfig()
        noisy = weight
        for model in self.models:
            noisy = model.perturb(weight, noisy, sigma, generator, verified, wv, batch_dims)
        return noisy

    def error_variance(self, weight: torch.Tensor, sigma: float) -> torch.Tensor:
        """Expected squared weight error of every weight (broadcastable to the weight), the sum
        over the (independent) effects; used by SWIM to rank weights."""
        total: torch.Tensor | float = 0.0
        for model in self.models:
            total = total + model.error_variance(weight, sigma)
        return total if isinstance(total, torch.Tensor) else torch.tensor(float(total))

    def verify_iterations(self, sigma: float, wv: WriteVerifyConfig) -> float:
        """Expected program-and-verify iterations per verified device: the programming model's,
        then adjusted by the other effects (a stuck device runs to the iteration cap)."""
        delta = writeverify.delta_for(sigma, wv)
        if self.program_model is None:
            iterations = writeverify.expected_iterations(0.0, delta)
        else:
            iterations = self.program_model.verify_iterations(sigma, delta)
        for model in self.models:
            iterations = model.adjust_iterations(iterations, wv)
        return iterations


def straight_through(weight: torch.Tensor, noisy: torch.Tensor,
                     change: Callable[[torch.Tensor], torch.Tensor], batch_dims: int) -> torch.Tensor:
    """`noisy` plus `change(layer)` (a detached weight change of one layer), per chip when
    `batch_dims` = 1, so that gradients pass straight through."""
    w = weight.detach()
    if batch_dims:
        delta = torch.stack([change(w[k]) for k in range(w.shape[0])])
    else:
        delta = change(w)
    return noisy + delta.to(weight.dtype)
