"""What a deployment writes onto a chip (DESIGN section 2): how many weights it maps, how many of
them it write-verifies, how many it reads back, and the expected mapping cost of that plan.

Each method states its own plan in its `MethodSpec` (`plan`), built from the four shapes here;
the mapping stage, the summary, the robustness stage and the verdicts all read plans through
`tsblib.stages.verify_plan`, so a plan is written once.
"""
from __future__ import annotations

import dataclasses

from tsblib import mapping
from tsblib.config import ExperimentConfig, ProfileConfig, TSBConfig
from tsblib.models import experiment_model
from tsblib.tsb import insert_tsb, tsb_weight_names
from tsblib.variation import count_weights


NO_VERIFY = "no_verify"
"""The plan that programs every weight once and verifies none (a row of mapping.csv)."""


@dataclasses.dataclass(frozen=True)
class DeployPlan:
    """How many weights a deployment maps, write-verifies and reads back."""

    weights: int
    """Weights mapped to devices (backbone, plus the block for TSB)."""
    verified: int
    """Weights write-verified."""
    read_back: int
    """Weights read back once after programming (TSB: the backbone, for per-chip fine-tuning)."""

    def cost(self, sigma: float, profile: ProfileConfig) -> mapping.MappingCost:
        """Expected mapping cost of this plan at `sigma`."""
        return mapping.mapping_cost(self.weights, self.verified, sigma, profile.device,
                                        profile.write_verify, profile.mapping, self.read_back)


def backbone_weights(exp: ExperimentConfig) -> int:
    """Weights of the experiment's model mapped to devices (without a block)."""
    return count_weights(experiment_model(exp))


def programmed_once(exp: ExperimentConfig, swim_p: float | None = None,
                    tsb_cfg: TSBConfig | None = None) -> DeployPlan:
    """Every weight programmed once, none verified (NIT and the other trained baselines; per-chip
    BN recalibration changes no weight)."""
    n = backbone_weights(exp)
    return DeployPlan(n, 0, 0)


def verify_all(exp: ExperimentConfig, swim_p: float | None = None,
               tsb_cfg: TSBConfig | None = None) -> DeployPlan:
    """Every weight write-verified (full write-verify)."""
    n = backbone_weights(exp)
    return DeployPlan(n, n, 0)


def verify_top(exp: ExperimentConfig, swim_p: float | None = None,
               tsb_cfg: TSBConfig | None = None) -> DeployPlan:
    """The top `swim_p` % of the weights write-verified (SWIM)."""
    if swim_p is None:
        raise ValueError("a SWIM plan needs the percentage of weights it verifies (swim_p)")
    n = backbone_weights(exp)
    return DeployPlan(n, int(round(float(swim_p) / 100 * n)), 0)


def verified_block(exp: ExperimentConfig, swim_p: float | None = None,
                   tsb_cfg: TSBConfig | None = None) -> DeployPlan:
    """A backbone programmed once and read back, plus a write-verified Tiny Shared Block
    (`tsb_cfg`, default the experiment's `tsb`)."""
    model = experiment_model(exp)
    n_backbone = count_weights(model)
    with_block = insert_tsb(model, tsb_cfg or exp.tsb)
    n_block = count_weights(with_block, tsb_weight_names(with_block))
    return DeployPlan(n_backbone + n_block, n_block, n_backbone)
