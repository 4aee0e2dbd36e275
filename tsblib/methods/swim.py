"""SWIM-style selective write-verify: the NIT model with the top p % of weights by diagonal
second-order sensitivity write-verified. Its code: `tsblib.execution.swim`."""
from __future__ import annotations

from dataclasses import dataclass

from tsblib.config import ConfigError
from tsblib.deployment import verify_top
from tsblib.methods.registry import Implementation, MethodSpec, RobustSpec, register

IMPL = Implementation("swim")


@dataclass(frozen=True)
class SwimParams:
    """Parameters of SWIM-style selective write-verify."""

    p_percent: tuple[float, ...] = (0.35, 1.0, 3.0, 10.0)
    """Percentages of weights write-verified, by second-order sensitivity (one global quantile)."""
    default_p: float = 1.0
    """p (percent) on the accuracy-vs-sigma curve and in the claims; must be in `p_percent`."""
    sensitivity_batches: int = 20
    """Mini-batches of 250 training images for the sensitivity estimate."""

    def validate(self) -> None:
        for p in self.p_percent:
            if not 0 < p <= 100:
                raise ConfigError(f"methods.swim.p_percent = {p!r} is not allowed: expected "
                                  f"percentages in (0, 100]. Fix it in params.yaml.")
        if self.default_p not in self.p_percent:
            raise ConfigError(f"methods.swim.default_p = {self.default_p!r} is not allowed: "
                              f"expected one of p_percent = {list(self.p_percent)}. Fix it in "
                              f"params.yaml.")
        if self.sensitivity_batches < 1:
            raise ConfigError(f"methods.swim.sensitivity_batches = {self.sensitivity_batches!r} "
                              f"is not allowed: expected an integer >= 1. Fix it in params.yaml.")


def _robust_plan(exp):
    return verify_top(exp, exp.methods.of("swim").default_p)


SPEC = register(MethodSpec(
    name="swim", label="SWIM selective write-verify", color="#2ca02c", marker="^", order=3,
    description="NIT model, top p % of weights by diagonal second-order sensitivity "
                "write-verified", trained_from="nit", evaluate=IMPL.evaluate, params=SwimParams,
    claims_baseline=True, write_verify=True, plan=verify_top,
    plan_percents=lambda exp: tuple(exp.methods.of("swim").p_percent),
    robustness=(RobustSpec("swim", IMPL.robust, _robust_plan),)))
