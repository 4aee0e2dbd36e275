"""`slice`: the per-device simulation the closed-form Gaussian summarises: quantise |W| to
`weight_bits`, split into devices, add N(0, (sigma ref)^2) to each device's level, recombine
(DESIGN section 2). The chip's weights then include the quantisation error; noise-injection
training uses the closed form (quantisation is not noise)."""
from __future__ import annotations

from dataclasses import dataclass

from tsblib.devices.base import register_device
from tsblib.devices.gaussian import GaussianDevice


@dataclass(frozen=True)
class SliceParams:
    """The per-device Gaussian has no parameters besides sigma."""

    def validate(self, key: str = "device.slice", levels: int | None = None) -> None:
        """Nothing to check."""


class SliceDevice(GaussianDevice):
    """Gaussian programming error simulated device by device (needs device levels)."""

    name = "slice"
    weight_domain = False


register_device(SliceDevice, SliceParams,
                "Gaussian programming error simulated per device: quantise, slice, perturb, recombine")
