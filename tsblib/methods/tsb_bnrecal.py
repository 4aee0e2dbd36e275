"""The fuller readings of TSB with BatchNorm recalibration (DESIGN sections 3 and 5):
`tsb_bnrecal` (TSB + BN recalibration, on the early TSB backbone) and `nit_block_bnrecal` (NIT +
block + BN recalibration, on the converged NIT model). Each chip's BatchNorm statistics are
re-estimated on its programmed backbone, then its block is fine-tuned with them frozen; the
procedure and its deployment: `tsblib.execution.tsb_bnrecal`."""
from __future__ import annotations

from tsblib.deployment import verified_block
from tsblib.methods.registry import Implementation, MethodSpec, register
from tsblib.methods.tsb_finetune import _check

IMPL = Implementation("tsb_bnrecal")


TRAINED_FROM = {"tsb_bnrecal": "tsb_backbone", "nit_block_bnrecal": "nit"}
"""The BN-recalibrated block methods and the training run each deploys."""


TSB_BNRECAL = register(MethodSpec(
    name="tsb_bnrecal", label="TSB + BN recalibration", color="#ff9896", marker="*", order=10,
    description="early NIT backbone programmed once; per chip: BatchNorm statistics re-estimated, "
                "then the Tiny Shared Block fine-tuned with them frozen, write-verified",
    trained_from="tsb_backbone", evaluate=IMPL.evaluate_tsb_bnrecal, check=_check,
    plan=verified_block, finetune=IMPL.finetune_tsb_bnrecal))


NIT_BLOCK_BNRECAL = register(MethodSpec(
    name="nit_block_bnrecal", label="NIT + block + BN recalibration", color="#aec7e8",
    marker="P", order=11,
    description="converged NIT model programmed once; per chip: BatchNorm statistics "
                "re-estimated, then a Tiny Shared Block fine-tuned with them frozen, write-verified",
    trained_from="nit", evaluate=IMPL.evaluate_nit_block_bnrecal, check=_check,
    plan=verified_block, finetune=IMPL.finetune_nit_block_bnrecal))
