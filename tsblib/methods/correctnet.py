"""CorrectNet-style regulariser (Eldebiky et al., as re-implemented by the NFT authors): noise
injection plus an orthogonality penalty per kernel. Its code: `tsblib.execution.correctnet`."""
from __future__ import annotations

from dataclasses import dataclass

from tsblib.config import ConfigError
from tsblib.methods.registry import Implementation, MethodSpec, register

IMPL = Implementation("correctnet")


DEFAULT_WEIGHT = 5e-4
"""Weight of the orthogonality penalty in the NFT authors' CorrectNet code."""


@dataclass(frozen=True)
class CorrectNetParams:
    """Parameters of the CorrectNet-style regulariser."""

    weight: float = DEFAULT_WEIGHT
    """Weight of the orthogonality penalty (NFT authors' re-implementation: 5e-4)."""

    def validate(self) -> None:
        if not self.weight >= 0:
            raise ConfigError(f"methods.correctnet.weight = {self.weight!r} is not allowed: "
                              f"expected a number >= 0. Fix it in params.yaml.")


SPEC = register(MethodSpec(
    name="correctnet", label="CorrectNet-style regulariser", color="#bcbd22", marker="X", order=7,
    description="noise injection + orthogonality penalty per kernel (Eldebiky et al., as "
                "re-implemented by the NFT authors)",
    trained_from="correctnet", objective=IMPL.objective, evaluate=IMPL.evaluate,
    params=CorrectNetParams, claims_baseline=True))
