"""What a deployment writes onto a chip (DESIGN section 2): how many weights it maps, how many of
them it write-verifies, how many it reads back, and the expected mapping cost of that plan.

Each method states its own plan in its `MethodSpec` (`plan`), built from the four shapes here;
the mapping stage, the summary, the robustness stage and the verdicts all read plans through
`tsblib.stages.mapping.verify_plan`, so a plan is written once.
"""
from __future__ import annotations

import dataclasses

from tsblib import io, mapping
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


def _missing(model: str, plan: str, swim_p: float | None, where: str) -> io.StageInputError:
    """The error of a plan mapping.csv lacks (`where`: at which sigma), naming the fix."""
    at_p = "" if swim_p is None else f" at p = {swim_p:g} %"
    return io.StageInputError(
        f"mapping.csv of model {model!r} has no plan {plan!r}{at_p}{where}; it predates this "
        f"plan or sigma: run `dvc repro mapping@{model}` (or `python -m tsblib mapping --models "
        f"{model}`), then summarize")


@dataclasses.dataclass(frozen=True)
class PricedPlans:
    """mapping.csv as the summary and the verdicts read it: every deployment plan's weight counts
    and its expected mapping cost at each sigma, as the mapping stage wrote them (exact floats),
    so that no later step prices a plan again."""

    rows: dict[tuple[str, str, float | None, float], dict[str, str]]
    """(model, plan, swim p, sigma) -> the mapping.csv row."""

    @classmethod
    def from_rows(cls, rows: list[dict[str, str]]) -> "PricedPlans":
        """Index the rows of mapping.csv."""
        return cls({(r["model"], r["plan"], io.cell_float(r["swim_p_percent"]),
                     float(r["sigma"])): r for r in rows})

    def row(self, model: str, plan: str, swim_p: float | None, sigma: float) -> dict[str, str]:
        """The mapping.csv row of `plan` (at SWIM percentage `swim_p`) at `sigma`; a missing one
        names the stage that writes it."""
        key = (model, plan, None if swim_p is None else float(swim_p), float(sigma))
        if key not in self.rows:
            raise _missing(model, plan, swim_p, f" at sigma = {sigma:g}")
        return self.rows[key]

    def plan(self, model: str, plan: str, swim_p: float | None = None) -> DeployPlan:
        """The weight counts of `plan` (the same at every sigma)."""
        swim_p = None if swim_p is None else float(swim_p)
        r = next((r for (m, name, p, _), r in self.rows.items()
                  if (m, name, p) == (model, plan, swim_p)), None)
        if r is None:
            raise _missing(model, plan, swim_p, "")
        return DeployPlan(int(r["weights"]), int(r["verified_weights"]),
                          int(r["read_back_weights"]))

    def time_s(self, model: str, plan: str, swim_p: float | None, sigma: float) -> float:
        """Expected mapping time of `plan` at `sigma` (seconds)."""
        return float(self.row(model, plan, swim_p, sigma)["time_s"])
