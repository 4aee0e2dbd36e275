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

from typing import Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from tsblib import io, schema
from tsblib.config import ExperimentConfig, FinetuneMode, ProfileConfig
from tsblib.data import PreparedData
from tsblib.chipstats import ChipStats, summarize
from tsblib.execution.evaluate import accuracy, same_tensors
from tsblib.execution import bnrecal
from tsblib.execution.context import EvalContext, FinetuneContext, calibration_batches
from tsblib.execution.tsb_bnrecal import block_cfg
from tsblib.execution.tsb_finetune import (backbone_names, finetune_chip_runs, finetune_chips,
                                           tsb_model, written_blocks_hook)
from tsblib.models import experiment_model
from tsblib.paths import ProfilePaths
from tsblib.runtime import use_channels_last
from tsblib.variation import mapped_weight_names
from tsblib.methods.tsb_trajectory import AGES_CHECKPOINT, Backbone, backbones, trajectory_epochs


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


def _same_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> bool:
    """Whether `model`'s state_dict holds exactly the tensors of `state`."""
    return same_tensors(model.state_dict(), state)


def finetune_ages(profile: ProfileConfig, paths: ProfilePaths, exp: ExperimentConfig,
                  data: PreparedData, lr: float, device: torch.device, progress: bool = True,
                  stated: nn.Module | None = None,
                  reuse: Mapping[str, tuple[dict, dict | None]] | None = None) -> None:
    """Fine-tune the default block (`exp.tsb`, learning rate `lr`) at the operating sigma on the
    first `evaluation.tsb_chips` chips for every backbone of the trajectory (and, with
    `methods.tsb_ages_bnrecal`, the TSB + BN recalibration block with each chip's recalibrated
    statistics); save the blocks to the finetune checkpoint 'tsb_ages' (no wall-clock time in
    it). `reuse` holds what the finetune stage already fine-tuned on the stated TSB backbone
    `stated` at the operating sigma on the same chips ({'tsb': (blocks, None), 'tsb_bnrecal':
    (blocks, BatchNorm statistics)}): the backbone whose state is `stated`'s takes those instead
    of fine-tuning them again (the same seeds give the same blocks)."""
    sigma, chips = exp.evaluation.operating_sigma, exp.evaluation.tsb_chips
    states = epoch_states(paths, exp)
    reuse = reuse or {}
    blocks, bn_blocks, bn_buffers = {}, {}, {}
    calibration = None
    if exp.methods.tsb_ages_bnrecal:
        calibration = calibration_batches(data, exp.methods.of("nit_bnrecal").images, device,
                                          use_channels_last(profile.runtime, device))
    for backbone in tqdm(backbones(exp, len(states)), desc=f"{exp.model} TSB backbone ages",
                         disable=not progress):
        base = backbone_model(paths, exp, backbone, device, states)
        known = reuse if stated is not None and _same_state(stated, base.state_dict()) else {}
        if "tsb" in known:
            blocks[backbone.key] = known["tsb"][0]
        else:
            blocks[backbone.key], _, _ = finetune_chips(
                tsb_model(base, exp.tsb), data, exp, exp.tsb, sigma, profile.device,
                profile.write_verify, device, profile.runtime, lr, chips=chips,
                progress=progress)
        if calibration is None:
            continue
        if "tsb_bnrecal" in known:
            bn_blocks[backbone.key], bn_buffers[backbone.key] = known["tsb_bnrecal"]
            continue
        cfg = block_cfg(exp, exp.tsb.epochs)
        runs = finetune_chip_runs(tsb_model(base, cfg), data, exp, cfg, sigma, profile.device,
                                  profile.write_verify, device, profile.runtime, lr, chips=chips,
                                  progress=progress, calibration=calibration)
        bn_blocks[backbone.key], bn_buffers[backbone.key] = runs.blocks, runs.buffers
    payload = {"model": exp.model, "blocks": blocks, "lr": lr, "sigma": sigma}
    if calibration is not None:
        payload.update(bnrecal_blocks=bn_blocks, bnrecal_buffers=bn_buffers)
    io.save_checkpoint(paths.finetune_checkpoint(exp.model, AGES_CHECKPOINT), payload)


def _rows(exp: ExperimentConfig, curve: str, backbone: Backbone, sigma: float, clean: float,
          stats: ChipStats) -> tuple[dict, list[dict]]:
    base = {"model": exp.model, "curve": curve, "backbone": backbone.kind,
            "epochs": backbone.epochs}
    row = {**base, "sigma": sigma, "chips": stats.chips, "acc_mean": stats.mean,
           "acc_std": stats.std, "acc_ci95": stats.ci95, "clean_acc": clean}
    return row, [{**base, "chip": k, "acc": a} for k, a in enumerate(stats.accuracies)]


REUSED_POINTS = {"nit": ("nit", "nit_bnrecal"),
                 "tsb_backbone": ("tsb_backbone_only", "tsb_backbone_bnrecal")}
"""Training run -> the evaluate stage's points (programmed once, with BN recalibration) that are
the trajectory's 'nit' and 'nit_bnrecal' curves at the epoch whose state is that run's."""


def _reused(ctx: EvalContext, method: str, chips: int) -> ChipStats | None:
    """The evaluate stage's statistics of `method` at the operating sigma on its first `chips`
    chips (chip k is the same draw for every method), or None when it has none."""
    stats = ctx.points.get((method, ctx.exp.evaluation.operating_sigma))
    if stats is None or len(stats.accuracies) < chips:
        return None
    return stats if len(stats.accuracies) == chips else summarize(stats.accuracies[:chips])


def _finetuned_same(ctx: EvalContext, method: str, blocks: Mapping[str, torch.Tensor],
                    buffers: Mapping[str, torch.Tensor] | None = None) -> bool:
    """Whether `method`'s finetune checkpoint holds exactly these blocks (and BatchNorm
    statistics) at the operating sigma."""
    path = ctx.paths.finetune_checkpoint(ctx.exp.model, method)
    if method not in ctx.exp.methods.methods or not path.is_file():
        return False
    ckpt = io.load_checkpoint(path, "finetune")
    key = repr(ctx.exp.evaluation.operating_sigma)
    theirs = ckpt.get("blocks", {}).get(key)
    if theirs is None or not same_tensors(theirs, blocks):
        return False
    return buffers is None or same_tensors(ckpt.get("buffers", {}).get(key, {}), buffers)


def evaluate_trajectory(ctx: EvalContext) -> tuple[list[dict], list[dict]]:
    """The trajectory of `ctx.exp` at the operating sigma on the first `evaluation.tsb_chips`
    chips (the same chips as every other method): rows of trajectory.csv and of
    trajectory_chips.csv. A point the evaluate stage has already computed on these chips (the
    deployed NIT model, the stated TSB backbone alone, TSB and TSB + BN recalibration on it:
    the same model state, blocks and chips) is taken from `ctx.points`, not computed again."""
    exp, profile = ctx.exp, ctx.profile
    ev = exp.evaluation
    sigma, chips = ev.operating_sigma, ev.tsb_chips
    states = epoch_states(ctx.paths, exp)
    path = ctx.paths.finetune_checkpoint(exp.model, AGES_CHECKPOINT)
    tuned = io.load_checkpoint(path, "finetune")
    ages = backbones(exp, len(states))
    with_bn = exp.methods.tsb_ages_bnrecal
    missing = [b.key for b in ages if b.key not in tuned.get("blocks", {})
               or (with_bn and b.key not in tuned.get("bnrecal_blocks", {}))]
    if tuned.get("model") != exp.model or missing or tuned.get("sigma") != sigma:
        raise io.StageInputError(f"{path} has no blocks at sigma {sigma} for the backbones "
                                 f"{missing or [b.key for b in ages]}; rerun the 'finetune' stage")
    calibration = ctx.calibration(exp.methods.of("nit_bnrecal").images)
    shared = exp.tsb.mode is FinetuneMode.SHARED_NOISE
    stat_rows, chip_rows = [], []
    evaluated = trajectory_epochs(exp, len(states))
    work = len(evaluated) + len(ages) * (2 if with_bn else 1)
    bar = tqdm(total=work, desc=f"{exp.model} training-cost trajectory", disable=not ctx.progress)
    runs = {run: ctx.trained(run)[0] for run in REUSED_POINTS}

    def add(curve: str, backbone: Backbone, clean: float, stats: ChipStats) -> None:
        row, per_chip = _rows(exp, curve, backbone, sigma, clean, stats)
        stat_rows.append(row)
        chip_rows.extend(per_chip)
        bar.update()

    def known(candidates: list[str]) -> ChipStats | None:
        return next((s for m in candidates if (s := _reused(ctx, m, chips)) is not None), None)

    for epoch in evaluated:
        model = _model(exp, states[epoch], ctx.device)
        clean = accuracy(model, ctx.test, profile.runtime)
        names = mapped_weight_names(model)
        at = Backbone("epoch", epoch)
        same = [points for run, points in REUSED_POINTS.items()
                if _same_state(runs[run], states[epoch])]
        add("nit", at, clean, known([p[0] for p in same]) or ctx.monte_carlo(
            model, sigma, chips=chips, names=names, desc=f"NIT epoch {epoch}"))
        add("nit_bnrecal", at, clean, known([p[1] for p in same]) or ctx.monte_carlo(
            model, sigma, chips=chips, names=names,
            per_chip=bnrecal.recalibration_hook(model, calibration, profile.runtime),
            desc=f"NIT + BN recal epoch {epoch}"))
    for backbone in ages:
        base = backbone_model(ctx.paths, exp, backbone, ctx.device, states)
        clean = accuracy(base, ctx.test, profile.runtime)
        stated = _same_state(runs["tsb_backbone"], base.state_dict())
        blocks = tuned["blocks"][backbone.key]
        model = tsb_model(base, exp.tsb)
        stats = _reused(ctx, "tsb", chips) if stated and _finetuned_same(ctx, "tsb", blocks) \
            else None
        add("tsb", backbone, clean, stats or ctx.monte_carlo(
            model, sigma, chips=chips, names=backbone_names(model),
            per_chip=written_blocks_hook(model, blocks, sigma, ev.seed, profile.device,
                                         profile.write_verify, shared, ctx.device),
            desc=f"TSB {backbone.key}"))
        if not with_bn:
            continue
        blocks = tuned["bnrecal_blocks"][backbone.key]
        buffers = tuned["bnrecal_buffers"][backbone.key]
        model = tsb_model(base, block_cfg(exp, exp.tsb.epochs))
        stats = _reused(ctx, "tsb_bnrecal", chips) \
            if stated and _finetuned_same(ctx, "tsb_bnrecal", blocks, buffers) else None
        add("tsb_bnrecal", backbone, clean, stats or ctx.monte_carlo(
            model, sigma, chips=chips, names=backbone_names(model),
            per_chip=written_blocks_hook(model, blocks, sigma, ev.seed, profile.device,
                                         profile.write_verify, False, ctx.device,
                                         buffers=buffers),
            desc=f"TSB + BN recal {backbone.key}"))
    bar.close()
    return stat_rows, chip_rows


def finetune_step(ctx: FinetuneContext) -> None:
    """The default block on every backbone age, with the learning rate and epochs chosen once
    for the model on validation."""
    finetune_ages(ctx.profile, ctx.paths, ctx.chosen_exp, ctx.data, ctx.lr, ctx.device,
                  ctx.progress, stated=ctx.backbone, reuse=ctx.reuse)


def evaluate_step(ctx: EvalContext) -> dict[str, list[dict]]:
    stat_rows, chip_rows = evaluate_trajectory(ctx)
    return {schema.TRAJECTORY.name: stat_rows, schema.TRAJECTORY_CHIPS.name: chip_rows}


