"""`read_noise`: every read of a device (every inference) returns its conductance plus fresh
Gaussian noise (thermal, shot and 1/f noise of the read), on top of the programmed error. It
cannot be write-verified away and is different at every forward pass.

Sources: aihwkit's PCM statistical model adds read noise at every inference (Nandakumar et al.,
"Phase-change memory models for deep learning training and inference", ICECS 2019); CrossSim's
devices have `read_noise`. Here each device's read has std `sigma` x the sigma reference (the
same convention as the programming sigma), which sums, like the programming error, into a
Gaussian weight error of std error_std_factor x sigma x max|W| per read.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tsblib.config import WriteVerifyConfig
from tsblib.devices.base import DeviceModel, Phase, check_nonnegative, register_device


@dataclass(frozen=True)
class ReadNoiseParams:
    """Size of the read noise."""

    sigma: float = 0.1
    """Read-noise std per device and read, in the sigma convention's unit (device range or level
    step), independent of the programming sigma."""

    def validate(self, key: str = "device.read_noise", levels: int | None = None) -> None:
        """sigma finite and >= 0."""
        check_nonnegative(f"{key}.sigma", self.sigma)


class ReadNoiseDevice(DeviceModel):
    """Fresh Gaussian weight noise at every read; no effect on what is programmed."""

    name = "read_noise"
    phase = Phase.READ
    weight_domain = True
    reads = True

    def weight_error(self, weight: torch.Tensor, sigma: float, generator: torch.Generator,
                     verified: torch.Tensor | bool, wv: WriteVerifyConfig) -> torch.Tensor:
        """Nothing is added at programming time."""
        return torch.zeros_like(weight)

    def _std(self, scale: torch.Tensor) -> torch.Tensor:
        return self.slicer.error_std_factor * self.params.sigma * scale

    def read(self, weight: torch.Tensor, scale: torch.Tensor, sigma: float,
             generator: torch.Generator) -> torch.Tensor:
        """weight + N(0, (error_std_factor sigma_read max|W|)^2), drawn on the generator's device."""
        if self.params.sigma == 0:
            return weight
        z = torch.randn(weight.shape, generator=generator, device=generator.device,
                        dtype=weight.dtype).to(weight.device)
        return weight + self._std(scale).to(weight.device, weight.dtype) * z

    def perturb(self, weight: torch.Tensor, noisy: torch.Tensor, sigma: float,
                generator: torch.Generator, verified: bool, wv: WriteVerifyConfig,
                batch_dims: int) -> torch.Tensor:
        """One read's noise on top of the other effects (verify does not reduce it)."""
        if self.params.sigma == 0:
            return noisy
        if batch_dims:
            scale = weight.detach().abs().amax(dim=tuple(range(batch_dims, weight.dim())),
                                               keepdim=True)
        else:
            scale = weight.detach().abs().max()
        z = torch.randn(weight.shape, generator=generator, device=generator.device,
                        dtype=weight.dtype)
        return noisy + self._std(scale) * z.to(weight.device)

    def error_variance(self, weight: torch.Tensor, sigma: float) -> torch.Tensor:
        """(error_std_factor sigma_read max|W|)^2 for every weight."""
        return self._std(weight.detach().abs().max().float()) ** 2


register_device(ReadNoiseDevice, ReadNoiseParams,
                "fresh Gaussian noise on every read (every inference), on top of programming")
