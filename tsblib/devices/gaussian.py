"""`gaussian`: every device's programmed level deviates from its target by N(0, (sigma ref)^2),
summed by shift-and-add into a Gaussian weight error of std 0.7776 sigma max|W| (DESIGN section 2;
the group's convention, e.g. Yan et al., SWIM, DAC 2022). The closed form needs no quantisation."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tsblib import writeverify
from tsblib.config import WriteVerifyConfig
from tsblib.devices.base import DeviceModel, DeviceState, Phase, register_device


@dataclass(frozen=True)
class GaussianParams:
    """The Gaussian programming error has no parameters besides sigma (swept by the pipeline)."""

    def validate(self, key: str = "device.gaussian", levels: int | None = None) -> None:
        """Nothing to check."""


def _residual_sigma(sigma: float, verified: bool, wv: WriteVerifyConfig) -> float:
    """sigma of the error left on a device: sigma itself, or the write-verify residual std."""
    if not verified:
        return sigma
    return writeverify.residual_std(sigma, writeverify.delta_for(sigma, wv))


class GaussianDevice(DeviceModel):
    """Closed-form Gaussian weight error (fast path); per device when composed with models that
    need device levels (then it is the `slice` simulation)."""

    name = "gaussian"
    phase = Phase.PROGRAM
    weight_domain = True

    def weight_error(self, weight: torch.Tensor, sigma: float, generator: torch.Generator,
                     verified: torch.Tensor | bool, wv: WriteVerifyConfig) -> torch.Tensor:
        """std(dW) = error_std_factor sigma max|W|; the write-verify residual std for verified
        weights. Drawn on the generator's device, returned on the weight's."""
        factor = self.slicer.error_std_factor
        scale = weight.detach().abs().max()
        z = torch.randn(weight.shape, generator=generator, device=generator.device).to(weight.device)
        std_full = factor * sigma * scale
        if verified is False:
            return (std_full * z).to(weight.dtype)
        delta = writeverify.delta_for(sigma, wv)
        std_res = factor * writeverify.residual_std(sigma, delta) * scale
        if verified is True:
            return (std_res * z).to(weight.dtype)
        mask = verified.to(weight.device)
        return torch.where(mask, std_res * z, std_full * z).to(weight.dtype)

    def device_error(self, state: DeviceState, sigma: float, generator: torch.Generator,
                     wv: WriteVerifyConfig) -> torch.Tensor:
        """N(0, (sigma ref)^2) per device; the truncated-Gaussian verify residual on verified
        weights."""
        digits = state.sliced.digits
        ref = self.slicer.sigma_reference
        err = torch.randn(digits.shape, generator=generator, device=generator.device,
                          dtype=torch.float64).to(digits.device) * (sigma * ref)
        if state.verified is not False:
            delta = writeverify.delta_for(sigma, wv)
            res = writeverify.sample_residual(digits.shape, sigma, delta, generator,
                                              dtype=torch.float64).to(digits.device)
            res = res * ref
            verified = state.verified
            mask = (torch.ones(digits.shape[1:], dtype=torch.bool, device=digits.device)
                    if verified is True else verified.to(digits.device))
            err = torch.where(mask.unsqueeze(0), res, err)
        return err

    def perturb(self, weight: torch.Tensor, noisy: torch.Tensor, sigma: float,
                generator: torch.Generator, verified: bool, wv: WriteVerifyConfig,
                batch_dims: int) -> torch.Tensor:
        """A fresh Gaussian weight error (the residual's std for verified weights), std from
        max|W| detached (per chip with `batch_dims`)."""
        s = _residual_sigma(sigma, verified, wv)
        if batch_dims:
            scale = weight.detach().abs().amax(dim=tuple(range(batch_dims, weight.dim())),
                                               keepdim=True)
        else:
            scale = weight.detach().abs().max()
        std = self.slicer.error_std_factor * s * scale
        z = torch.randn(weight.shape, generator=generator, device=generator.device,
                        dtype=weight.dtype)
        return noisy + std * z.to(weight.device)

    def error_variance(self, weight: torch.Tensor, sigma: float) -> torch.Tensor:
        """(error_std_factor sigma max|W|)^2, the same for every weight of the layer."""
        return (self.slicer.error_std_factor * sigma * weight.detach().abs().max().float()) ** 2


register_device(GaussianDevice, GaussianParams,
                "Gaussian programming error, std sigma x device range per device (closed form)")
