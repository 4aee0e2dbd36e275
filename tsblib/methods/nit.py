"""Noise-injection training (NIT): a fresh chip-like weight error on every forward; the model
is programmed once. Its early snapshot is the TSB backbone (DESIGN sections 3 and 5). Its code:
`tsblib.execution.nit`."""
from __future__ import annotations

from tsblib.deployment import programmed_once
from tsblib.methods.registry import Implementation, MethodSpec, RobustSpec, register

IMPL = Implementation("nit")


SPEC = register(MethodSpec(
    name="nit", label="NIT (noise-injection training)", color="#1f77b4", marker="s", order=1,
    description="noise injection at sigma_train, programmed once", trained_from="nit",
    objective=IMPL.objective, evaluate=IMPL.evaluate, claims_baseline=True,
    robustness=(RobustSpec("nit", IMPL.robust, programmed_once),)))
