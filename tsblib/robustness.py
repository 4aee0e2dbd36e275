"""The robustness stage, beyond the Gaussian model (DESIGN.md figure 6): every deployment at the operating
sigma on chips of each scenario's device model (level-dependent, stuck-at, read noise, drift vs
time), TSB fine-tuned per chip on the chip as programmed and TSB knowing only a Gaussian model.

The trained models are the pipeline's (noise-injection trained under the profile's device
model); only the chips change. Chip k of a scenario is seeded as in the evaluate stage, so the
Gaussian scenario's NIT chips are the evaluate stage's first chips.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Iterator

import torch
from tqdm.auto import tqdm

from tsblib import io, writeverify
from tsblib.config import DeviceConfig, FinetuneMode, ProfileConfig, Scenario
from tsblib.evaluate import ChipStats, chip_yield, monte_carlo
from tsblib.methods import bnrecal
from tsblib.methods.context import EvalContext
from tsblib.methods.swim import fisher_diagonal, sensitivity_from_fisher, top_fraction_mask
from tsblib.methods.tsb_finetune import (backbone_names, finetune, finetune_chips, tsb_model,
                                         written_blocks_hook)
from tsblib.paths import ProfilePaths
from tsblib.runtime import configure, use_channels_last
from tsblib.stages import _data, evaluation_batches, verify_plan
from tsblib.variation import chip_seed, mapped_weight_names

log = logging.getLogger(__name__)


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
            drift = dataclasses.replace(device.of("drift"), t_seconds=t, compensation=comp)
            out.append(Condition(scenario, dataclasses.replace(
                device, params={**device.params, "drift": drift}), t, comp))
    return out


def at_programming(scenario: Scenario) -> DeviceConfig:
    """The scenario's device model right after programming (drift at its reference time t0):
    what per-chip TSB reads back and is fine-tuned on."""
    device = scenario.device
    if "drift" not in device.model:
        return device
    drift = device.of("drift")
    return dataclasses.replace(device, params={**device.params, "drift": dataclasses.replace(
        drift, t_seconds=drift.t0_seconds)})


def gaussian_only(device: DeviceConfig) -> DeviceConfig:
    """The profile's converter with only the Gaussian programming error."""
    return dataclasses.replace(device, model=("gaussian",), train_model=(), params={})


@dataclass(frozen=True)
class RobustPoint:
    """One evaluated (condition, deployment)."""

    condition: Condition
    """Scenario, device model and time."""
    method: str
    """Deployment name (`tsblib.config.ROBUSTNESS_METHODS`)."""
    clean_acc: float
    """Noise-free accuracy of the deployed model (the yield reference)."""
    stats: ChipStats
    """Accuracy of every chip."""


def evaluate_robustness(ctx: EvalContext) -> Iterator[RobustPoint]:
    """Every deployment of `ctx.exp.robustness.methods` under every scenario's conditions, at the
    operating sigma, on `robustness.chips` chips."""
    exp, profile = ctx.exp, ctx.profile
    rob, ev = exp.robustness, exp.evaluation
    sigma, chips, wv = ev.operating_sigma, rob.chips, profile.write_verify
    methods = rob.methods
    nit, nit_clean = ctx.trained("nit")
    names = mapped_weight_names(nit)
    fisher = calibration = None
    if "swim" in methods:
        swim = exp.methods.of("swim")
        fisher = fisher_diagonal(nit, names, ctx.calibration(swim.sensitivity_batches * 250))
    if "nit_bnrecal" in methods:
        calibration = ctx.calibration(exp.methods.of("nit_bnrecal").images)
    tsb = gaussian_blocks = None
    if {"tsb", "tsb_gaussian"} & set(methods):
        backbone, _ = ctx.trained("tsb_backbone")
        tsb = tsb_model(backbone, exp.tsb)
        ckpt = io.load_checkpoint(ctx.paths.finetune_checkpoint(exp.model, "tsb"), "finetune")
        lr = ckpt["lr"]
        # the epochs chosen on validation with the lr (tsb.select_epochs), as the finetune stage used
        tsb_cfg = dataclasses.replace(exp.tsb, epochs=int(ckpt.get("epochs", exp.tsb.epochs)))
        reference = written_blocks_hook(tsb, ckpt["blocks"][repr(0.0)], 0.0, ev.seed,
                                        profile.device, wv, False, ctx.device)
        tsb_clean = ctx.monte_carlo(tsb, 0.0, chips=1, names=backbone_names(tsb),
                                    per_chip=reference, desc="tsb s=0").mean
    if "tsb_gaussian" in methods:
        # one block for every chip, fine-tuned against fresh Gaussian backbone noise: it knows
        # only the Gaussian model (the same block serves every scenario)
        result = finetune(tsb, ctx.data, dataclasses.replace(tsb_cfg, mode=FinetuneMode.SHARED_NOISE),
                          sigma, gaussian_only(profile.device), wv, chip_params=None,
                          seed=chip_seed(ev.seed, sigma, 0, "ft-gaussian"), device=ctx.device,
                          runtime=profile.runtime, progress=ctx.progress, lr=lr)
        gaussian_blocks = {n: w.cpu() for n, w in result.blocks.items()}

    def mc(model, device: DeviceConfig, desc: str, **kw) -> ChipStats:
        return monte_carlo(model, kw.pop("names", None) or mapped_weight_names(model), sigma,
                           device, ctx.test, chips=chips, seed=ev.seed, chip_batch=ev.chip_batch,
                           wv=wv, runtime=profile.runtime, progress=False, tag="chip", desc=desc,
                           **kw)

    for scenario in tqdm(rob.scenarios, desc=f"{exp.model} robustness", disable=not ctx.progress):
        blocks = None
        if "tsb" in methods:
            # the usual per-chip flow: read the programmed backbone back, fine-tune its block
            blocks, _, _ = finetune_chips(tsb, ctx.data, exp, tsb_cfg, sigma, at_programming(scenario),
                                          wv, ctx.device, profile.runtime, lr, chips=chips,
                                          progress=False)
        for cond in conditions(scenario, rob.drift_times_s, rob.drift_compensation):
            dev = cond.device
            for method in methods:
                if method == "nit":
                    stats, clean = mc(nit, dev, "nit"), nit_clean
                elif method == "nit_bnrecal":
                    hook = bnrecal.recalibration_hook(nit, calibration, profile.runtime)
                    stats, clean = mc(nit, dev, "bnrecal", per_chip=hook), nit_clean
                elif method == "swim":
                    sens = sensitivity_from_fisher(nit, fisher, dev, sigma)
                    mask = top_fraction_mask(sens, exp.methods.of("swim").default_p)
                    stats, clean = mc(nit, dev, "swim", verify=mask), nit_clean
                elif method == "full_wv":
                    stats, clean = mc(nit, dev, "full_wv", verify={n: True for n in names}), nit_clean
                else:
                    shared = method == "tsb_gaussian"
                    hook = written_blocks_hook(tsb, gaussian_blocks if shared else blocks, sigma,
                                               ev.seed, dev, wv, shared, ctx.device)
                    stats = mc(tsb, dev, method, names=backbone_names(tsb), per_chip=hook)
                    clean = tsb_clean
                yield RobustPoint(cond, method, clean, stats)


ROBUSTNESS_COLUMNS = ["model", "scenario", "device_model", "time_s", "compensation", "method",
                      "sigma", "chips", "clean_acc", "acc_mean", "acc_std", "acc_ci95", "gap_own",
                      "acc_p01", "acc_p05", "acc_p50", "yield_1pt", "yield_2pt", "wv_fraction",
                      "mapping_time_s", "mapping_energy_j", "convention"]
"""Columns of robustness.csv: one row per (model, scenario, drift time and compensation,
deployment), at the operating sigma; `device_model` names the composed device models."""


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
        data = _data(paths, exp, with_test=True)
        cl = use_channels_last(profile.runtime, device)
        ctx = EvalContext(profile, exp, paths, device, data,
                          evaluation_batches(data, exp, device, cl), progress)
        swim_p = exp.methods.of("swim").default_p
        for point in evaluate_robustness(ctx):
            cond, stats = point.condition, point.stats
            plan_name = {"nit_bnrecal": "nit", "tsb_gaussian": "tsb"}.get(point.method, point.method)
            plan = verify_plan(exp, plan_name, swim_p if plan_name == "swim" else None)
            sigma = exp.evaluation.operating_sigma
            cost = writeverify.mapping_cost(plan.weights, plan.verified, sigma, cond.device,
                                            profile.write_verify, profile.mapping, plan.read_back)
            rows.append({"model": exp.model, "scenario": cond.scenario.name,
                         "device_model": cond.device.stack.name, "time_s": cond.time_s,
                         "compensation": cond.compensation, "method": point.method,
                         "sigma": sigma, "chips": stats.chips, "clean_acc": point.clean_acc,
                         "acc_mean": stats.mean, "acc_std": stats.std, "acc_ci95": stats.ci95,
                         "gap_own": point.clean_acc - stats.mean,
                         **chip_yield(stats.accuracies, point.clean_acc),
                         "wv_fraction": plan.verified / plan.weights,
                         "mapping_time_s": cost.time_s, "mapping_energy_j": cost.energy_j,
                         "convention": profile.device.convention.value})
    io.write_csv(paths.result("robustness.csv"), rows, ROBUSTNESS_COLUMNS)
