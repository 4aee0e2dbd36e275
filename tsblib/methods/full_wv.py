"""Full write-verify: the NIT model with every weight program-and-verified (DESIGN section 2):
the accuracy ceiling of deployment, at the highest mapping cost. Its code:
`tsblib.execution.full_wv`."""
from __future__ import annotations

from tsblib.deployment import verify_all
from tsblib.methods.registry import Implementation, MethodSpec, RobustSpec, register

IMPL = Implementation("full_wv")


SPEC = register(MethodSpec(
    name="full_wv", label="full write-verify", color="#9467bd", marker="v", order=4,
    description="NIT model, every weight write-verified", trained_from="nit",
    evaluate=IMPL.evaluate, claims_baseline=True, write_verify=True, plan=verify_all,
    robustness=(RobustSpec("full_wv", IMPL.robust, verify_all),)))
