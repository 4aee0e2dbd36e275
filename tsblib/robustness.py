"""The robustness stage, beyond the Gaussian model (DESIGN.md figure 6): every deployment at the operating
sigma on chips of each scenario's device model (level-dependent, stuck-at, read noise, drift vs
time), TSB fine-tuned per chip on the chip as programmed and TSB knowing only a Gaussian model.

The deployments are the methods' own (`MethodSpec.robustness`, e.g. `tsblib.methods.swim`); this
module only runs them under each condition. The trained models are the pipeline's
(noise-injection trained under the profile's device model); only the chips change. Chip k of a
scenario is seeded as in the evaluate stage, so the Gaussian scenario's NIT chips are the
evaluate stage's first chips.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

from tqdm.auto import tqdm

from tsblib import io, mapping, schema
from tsblib.config import DeviceConfig, ProfileConfig, Scenario
from tsblib.devices.base import params_of, stack_of
from tsblib.chipstats import ChipStats, chip_yield
from tsblib.execution.context import EvalContext, RobustContext
from tsblib.methods.registry import robust_deployments
from tsblib.paths import ProfilePaths
from tsblib.runtime import configure, use_channels_last
from tsblib.stages.common import prepared_data
from tsblib.stages.evaluate import evaluation_batches


@dataclass(frozen=True)
class Condition:
    """One device model the chips are evaluated under: a scenario, at a time for drift."""

    scenario: Scenario
    """The scenario (name and device block)."""
    device: DeviceConfig
    """The chips' device model (drift at `time_s`, with or without compensation)."""
    time_s: float | None = None
    """Seconds after programming (drift scenarios), else None."""
    compensation: bool | None = None
    """Global drift compensation (drift scenarios), else None."""


def conditions(scenario: Scenario, times: tuple[float, ...],
               compensation: tuple[bool, ...]) -> list[Condition]:
    """The scenario as evaluated: once, or at every time x compensation when it drifts."""
    device = scenario.device
    if "drift" not in device.model:
        return [Condition(scenario, device)]
    out = []
    for comp in compensation:
        for t in times:
            drift = dataclasses.replace(params_of(device, "drift"), t_seconds=t, compensation=comp)
            out.append(Condition(scenario, dataclasses.replace(
                device, params={**device.params, "drift": drift}), t, comp))
    return out


@dataclass(frozen=True)
class RobustPoint:
    """One evaluated (condition, deployment)."""

    condition: Condition
    """Scenario, device model and time."""
    method: str
    """Deployment name (`RobustSpec.name`)."""
    clean_acc: float
    """Noise-free accuracy of the deployed model (the yield reference)."""
    stats: ChipStats
    """Accuracy of every chip."""


def deployments(exp) -> tuple[str, ...]:
    """The robustness deployments of `exp`: `robustness.methods`, or every one the method
    registry declares (`robust_deployments`) when it is empty."""
    return exp.robustness.methods or tuple(robust_deployments())


def evaluate_robustness(ctx: EvalContext) -> Iterator[RobustPoint]:
    """Every deployment of `robustness.methods` under every scenario's conditions, at the
    operating sigma, on `robustness.chips` chips. Each deployment is its method's
    (`MethodSpec.robustness`): made ready once, given each scenario, then evaluated under each
    of its conditions."""
    exp, rob = ctx.exp, ctx.exp.robustness
    specs = robust_deployments()
    rctx = RobustContext(ctx, rob.chips, exp.evaluation.operating_sigma)
    ready = [(name, specs[name].deploy(rctx)) for name in deployments(exp)]
    for scenario in tqdm(rob.scenarios, desc=f"{exp.model} robustness", disable=not ctx.progress):
        for _, deployed in ready:
            if deployed.on_scenario is not None:
                deployed.on_scenario(scenario)
        for cond in conditions(scenario, rob.drift_times_s, rob.drift_compensation):
            for name, deployed in ready:
                yield RobustPoint(cond, name, deployed.clean_acc, deployed.chips(cond.device))


def robustness_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Every deployment under every scenario's device model at the operating sigma (figure 6):
    NIT, NIT + BN recalibration, SWIM, full write-verify, per-chip TSB fine-tuned on the chip as
    programmed, and TSB knowing only the Gaussian model; drift vs time after programming.
    Writes robustness.csv, with the chip yield and the expected mapping cost of each deployment
    under the scenario's device model."""
    device = configure(profile.runtime)
    for exp in profile.experiments:  # a corrupt input is named now, not minutes into the stage
        io.check_checkpoints([paths.train_checkpoint_dir(exp.model)], "train")
        io.check_checkpoints([paths.finetune_checkpoint_dir(exp.model)], "finetune")
    rows = []
    for exp in profile.experiments:
        data = prepared_data(paths, exp, with_test=True)
        cl = use_channels_last(profile.runtime, device)
        ctx = EvalContext(profile, exp, paths, device, data,
                          evaluation_batches(data, exp, device, cl), progress)
        specs = robust_deployments()
        for point in evaluate_robustness(ctx):
            cond, stats = point.condition, point.stats
            plan = specs[point.method].plan(exp)
            sigma = exp.evaluation.operating_sigma
            cost = mapping.mapping_cost(plan.weights, plan.verified, sigma, cond.device,
                                            profile.write_verify, profile.mapping, plan.read_back)
            rows.append({"model": exp.model, "scenario": cond.scenario.name,
                         "device_model": stack_of(cond.device).name, "time_s": cond.time_s,
                         "compensation": cond.compensation, "method": point.method,
                         "sigma": sigma, "chips": stats.chips, "clean_acc": point.clean_acc,
                         "acc_mean": stats.mean, "acc_std": stats.std, "acc_ci95": stats.ci95,
                         "gap_own": point.clean_acc - stats.mean,
                         **chip_yield(stats.accuracies, point.clean_acc),
                         "wv_fraction": plan.verified / plan.weights,
                         "mapping_time_s": cost.time_s, "mapping_energy_j": cost.energy_j,
                         "convention": profile.device.convention.value})
    io.write_table(paths, schema.ROBUSTNESS, rows)
