"""The training-cost trajectory (DESIGN section 6, "Training cost at equal accuracy"): accuracy on
chips at the operating sigma of NIT after every epoch (programmed once, and with per-chip BN
recalibration) and of TSB from backbones of several ages, all on the same chips.

The backbone of age a is NIT's own state after `early_epoch(train.epochs, a)` epochs (the train
stage saves NIT's state after every epoch, checkpoint 'nit_epochs'); with
`methods.tsb_annealed`, a short NIT schedule of the TSB backbone's length annealed to its end
(checkpoint 'tsb_backbone_annealed') is a further backbone. The finetune stage fine-tunes the
default block on every backbone (`finetune_ages`, checkpoint 'tsb_ages' of the finetune stage);
the evaluate stage evaluates everything (`evaluate_trajectory`) into trajectory.csv and
trajectory_chips.csv. Verdicts and figures are computed from these tables elsewhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm

from tsblib import io
from tsblib.config import ExperimentConfig, FinetuneMode, ProfileConfig
from tsblib.data import PreparedData
from tsblib.evaluate import ChipStats, accuracy
from tsblib.methods import bnrecal
from tsblib.methods.context import EvalContext
from tsblib.methods.training import early_epoch
from tsblib.methods.tsb_finetune import (backbone_names, finetune_chips, tsb_model,
                                         written_blocks_hook)
from tsblib.models import experiment_model
from tsblib.paths import ProfilePaths
from tsblib.variation import mapped_weight_names

TRAJECTORY_FILE = "trajectory.csv"
"""Per-model table of the trajectory (one row per curve and backbone), `TRAJECTORY_COLUMNS`."""
TRAJECTORY_CHIPS_FILE = "trajectory_chips.csv"
"""Per-model accuracy of every chip of the trajectory, `TRAJECTORY_CHIP_COLUMNS`."""
TRAJECTORY_COLUMNS = ["model", "curve", "backbone", "epochs", "sigma", "chips", "acc_mean",
                      "acc_std", "acc_ci95", "clean_acc"]
"""model; curve 'nit' (NIT's state after `epochs` epochs, programmed once), 'nit_bnrecal' (the
same with per-chip BN recalibration) or 'tsb' (the default TSB fine-tuned per chip on a
backbone); backbone 'epoch' (NIT's state after `epochs` epochs) or 'annealed' (the short
annealed run of `epochs` epochs); sigma: the operating sigma; chips: the first
`evaluation.tsb_chips` evaluation chips; acc_*: accuracy on them; clean_acc: the noise-free
test accuracy of the state (for 'tsb', of its backbone without a block)."""
TRAJECTORY_CHIP_COLUMNS = ["model", "curve", "backbone", "epochs", "chip", "acc"]
"""One row per (curve, backbone, chip); chip k is chip k of every other method (paired)."""
AGES_CHECKPOINT = "tsb_ages"
"""Finetune-stage checkpoint of the blocks fine-tuned on every backbone of the trajectory:
{"model", "blocks": {backbone key: {block name: [chips, c, c]}}, "lr", "sigma"}."""


@dataclass(frozen=True)
class Backbone:
    """One TSB backbone of the trajectory."""

    kind: str
    """'epoch' (NIT's state after `epochs` epochs) or 'annealed' (the short annealed run)."""
    epochs: int
    """Training epochs of the backbone."""

    @property
    def key(self) -> str:
        """Its key in the 'tsb_ages' checkpoint, e.g. 'epoch:3' or 'annealed:3'."""
        return f"{self.kind}:{self.epochs}"


def annealed_epochs(exp: ExperimentConfig, epochs: int | None = None) -> int:
    """Length of the annealed short schedule: the TSB backbone's epochs, of NIT's `epochs`
    (default `train.epochs`)."""
    return early_epoch(exp.train.epochs if epochs is None else epochs,
                       exp.methods.tsb_early_fraction)


def age_epochs(exp: ExperimentConfig, epochs: int) -> list[int]:
    """The distinct epochs of the backbone ages `methods.tsb_ages` plus `tsb_early_fraction`,
    of NIT's schedule of `epochs` epochs."""
    fractions = tuple(exp.methods.tsb_ages) + (exp.methods.tsb_early_fraction,)
    return sorted({early_epoch(epochs, a) for a in fractions})


def trajectory_epochs(exp: ExperimentConfig, epochs: int) -> list[int]:
    """The epochs of NIT's schedule of `epochs` epochs whose state the trajectory evaluates:
    every `evaluation.trajectory_every`-th, the backbone ages' epochs and the last."""
    every = exp.evaluation.trajectory_every
    return sorted(set(range(every, epochs + 1, every)) | set(age_epochs(exp, epochs)) | {epochs})


def backbones(exp: ExperimentConfig, epochs: int) -> list[Backbone]:
    """Every TSB backbone of the trajectory of NIT's schedule of `epochs` epochs: NIT's snapshots
    at the ages, then the annealed one. (The finetune and evaluate stages take `epochs` from the
    'nit_epochs' checkpoint rather than reading `train.epochs`.)"""
    out = [Backbone("epoch", e) for e in age_epochs(exp, epochs)]
    if exp.methods.tsb_annealed:
        out.append(Backbone("annealed", annealed_epochs(exp, epochs)))
    return out


def epoch_states(paths: ProfilePaths, exp: ExperimentConfig) -> dict[int, dict[str, torch.Tensor]]:
    """NIT's state after every epoch (the train stage's 'nit_epochs' checkpoint)."""
    path = paths.train_checkpoint(exp.model, "nit_epochs")
    ckpt = io.load_checkpoint(path, "train")
    states = ckpt.get("states") or {}
    if ckpt.get("model") != exp.model or not states or \
            sorted(states) != list(range(1, len(states) + 1)):
        raise io.StageInputError(f"{path} does not hold {exp.model}'s NIT state after each of "
                                 f"its epochs; rerun the 'train' stage")
    return states


def _model(exp: ExperimentConfig, state: dict[str, torch.Tensor], device: torch.device) -> nn.Module:
    model = experiment_model(exp)
    model.load_state_dict(state)
    return model.to(device).eval()


def backbone_model(paths: ProfilePaths, exp: ExperimentConfig, backbone: Backbone,
                   device: torch.device,
                   states: dict[int, dict[str, torch.Tensor]] | None = None) -> nn.Module:
    """The backbone's model (eval mode, on `device`); `states` = `epoch_states` if loaded."""
    if backbone.kind == "epoch":
        states = epoch_states(paths, exp) if states is None else states
        return _model(exp, states[backbone.epochs], device)
    path = paths.train_checkpoint(exp.model, "tsb_backbone_annealed")
    ckpt = io.load_checkpoint(path, "train")
    if ckpt.get("model") != exp.model or ckpt.get("epochs") != backbone.epochs:
        raise io.StageInputError(f"{path} is not {exp.model}'s annealed backbone of "
                                 f"{backbone.epochs} epochs; rerun the 'train' stage")
    return _model(exp, ckpt["state"], device)


def finetune_ages(profile: ProfileConfig, paths: ProfilePaths, exp: ExperimentConfig,
                  data: PreparedData, lr: float, device: torch.device,
                  progress: bool = True) -> None:
    """Fine-tune the default block (`exp.tsb`, learning rate `lr`) at the operating sigma on the
    first `evaluation.tsb_chips` chips for every backbone of the trajectory; save the blocks to
    the finetune checkpoint 'tsb_ages' (no wall-clock time in it)."""
    sigma = exp.evaluation.operating_sigma
    states = epoch_states(paths, exp)
    blocks = {}
    for backbone in tqdm(backbones(exp, len(states)), desc=f"{exp.model} TSB backbone ages",
                         disable=not progress):
        model = tsb_model(backbone_model(paths, exp, backbone, device, states), exp.tsb)
        tuned, _, _ = finetune_chips(model, data, exp, exp.tsb, sigma, profile.device,
                                     profile.write_verify, device, profile.runtime, lr,
                                     chips=exp.evaluation.tsb_chips, progress=progress)
        blocks[backbone.key] = tuned
    io.save_checkpoint(paths.finetune_checkpoint(exp.model, AGES_CHECKPOINT),
                       {"model": exp.model, "blocks": blocks, "lr": lr, "sigma": sigma})


def _rows(exp: ExperimentConfig, curve: str, backbone: Backbone, sigma: float, clean: float,
          stats: ChipStats) -> tuple[dict, list[dict]]:
    base = {"model": exp.model, "curve": curve, "backbone": backbone.kind,
            "epochs": backbone.epochs}
    row = {**base, "sigma": sigma, "chips": stats.chips, "acc_mean": stats.mean,
           "acc_std": stats.std, "acc_ci95": stats.ci95, "clean_acc": clean}
    return row, [{**base, "chip": k, "acc": a} for k, a in enumerate(stats.accuracies)]


def evaluate_trajectory(ctx: EvalContext) -> tuple[list[dict], list[dict]]:
    """The trajectory of `ctx.exp` at the operating sigma on the first `evaluation.tsb_chips`
    chips (the same chips as every other method): rows of trajectory.csv and of
    trajectory_chips.csv."""
    exp, profile = ctx.exp, ctx.profile
    ev = exp.evaluation
    sigma, chips = ev.operating_sigma, ev.tsb_chips
    states = epoch_states(ctx.paths, exp)
    path = ctx.paths.finetune_checkpoint(exp.model, AGES_CHECKPOINT)
    tuned = io.load_checkpoint(path, "finetune")
    ages = backbones(exp, len(states))
    missing = [b.key for b in ages if b.key not in tuned.get("blocks", {})]
    if tuned.get("model") != exp.model or missing or tuned.get("sigma") != sigma:
        raise io.StageInputError(f"{path} has no blocks at sigma {sigma} for the backbones "
                                 f"{missing or [b.key for b in ages]}; rerun the 'finetune' stage")
    calibration = ctx.calibration(exp.methods.of("nit_bnrecal").images)
    shared = exp.tsb.mode is FinetuneMode.SHARED_NOISE
    stat_rows, chip_rows = [], []
    evaluated = trajectory_epochs(exp, len(states))
    work = len(evaluated) + len(ages)
    bar = tqdm(total=work, desc=f"{exp.model} training-cost trajectory", disable=not ctx.progress)

    def add(curve: str, backbone: Backbone, clean: float, stats: ChipStats) -> None:
        row, per_chip = _rows(exp, curve, backbone, sigma, clean, stats)
        stat_rows.append(row)
        chip_rows.extend(per_chip)

    for epoch in evaluated:
        model = _model(exp, states[epoch], ctx.device)
        clean = accuracy(model, ctx.test, profile.runtime)
        names = mapped_weight_names(model)
        at = Backbone("epoch", epoch)
        add("nit", at, clean, ctx.monte_carlo(model, sigma, chips=chips, names=names,
                                              desc=f"NIT epoch {epoch}"))
        hook = bnrecal.recalibration_hook(model, calibration, profile.runtime)
        add("nit_bnrecal", at, clean, ctx.monte_carlo(model, sigma, chips=chips, names=names,
                                                      per_chip=hook,
                                                      desc=f"NIT + BN recal epoch {epoch}"))
        bar.update()
    for backbone in ages:
        base = backbone_model(ctx.paths, exp, backbone, ctx.device, states)
        clean = accuracy(base, ctx.test, profile.runtime)
        model = tsb_model(base, exp.tsb)
        hook = written_blocks_hook(model, tuned["blocks"][backbone.key], sigma, ev.seed,
                                   profile.device, profile.write_verify, shared, ctx.device)
        add("tsb", backbone, clean, ctx.monte_carlo(model, sigma, chips=chips,
                                                    names=backbone_names(model), per_chip=hook,
                                                    desc=f"TSB {backbone.key}"))
        bar.update()
    bar.close()
    return stat_rows, chip_rows


def write_trajectory(paths: ProfilePaths, stat_rows: list[dict], chip_rows: list[dict]) -> None:
    """Write trajectory.csv and trajectory_chips.csv (atomically; headers only when empty)."""
    io.write_csv(paths.result(TRAJECTORY_FILE), stat_rows, TRAJECTORY_COLUMNS)
    io.write_csv(paths.result(TRAJECTORY_CHIPS_FILE), chip_rows, TRAJECTORY_CHIP_COLUMNS)
