"""NIT + BatchNorm recalibration: re-estimate each chip's BatchNorm statistics on training images
with the chip's programmed weights (a digital fix that needs no write-verify). Its code:
`tsblib.execution.bnrecal`."""
from __future__ import annotations

from dataclasses import dataclass

from tsblib.config import ConfigError
from tsblib.deployment import programmed_once
from tsblib.methods.registry import Implementation, MethodSpec, RobustSpec, register

IMPL = Implementation("bnrecal")


@dataclass(frozen=True)
class BNRecalParams:
    """Parameters of NIT + BN recalibration."""

    images: int = 2000
    """Training images used to re-estimate each chip's BatchNorm statistics."""

    def validate(self) -> None:
        if self.images < 1:
            raise ConfigError(f"methods.nit_bnrecal.images = {self.images!r} is not allowed: "
                              f"expected an integer >= 1. Fix it in params.yaml.")


SPEC = register(MethodSpec(
    name="nit_bnrecal", label="NIT + BN recalibration", color="#17becf", marker="D", order=2,
    description="NIT model, per-chip BatchNorm statistics re-estimated on training images",
    trained_from="nit", evaluate=IMPL.evaluate, params=BNRecalParams, claims_baseline=True,
    robustness=(RobustSpec("nit_bnrecal", IMPL.robust, programmed_once),)))
