"""Training seeds as a second source of spread (DESIGN section 6): NIT retrained with each of
`train.extra_seeds` (its early snapshot is that seed's TSB backbone), and NIT, NIT + BN
recalibration and TSB of every seed evaluated on the same paired chips at the operating sigma.

The train stage trains and saves the runs ('nit_seed<s>', 'tsb_backbone_seed<s>'), the
finetune stage fine-tunes the default block on each seed's backbone (`finetune_seeds`,
checkpoint 'tsb_seed<s>'), the evaluate stage writes seeds.csv and seeds_chips.csv
(`evaluate_seeds`). `tsblib.verdicts` reports the spread beside the chip intervals.
"""
from __future__ import annotations


import torch
from tqdm.auto import tqdm

from tsblib import io, schema
from tsblib.config import ExperimentConfig, FinetuneMode, ProfileConfig
from tsblib.data import PreparedData
from tsblib.execution import bnrecal
from tsblib.execution.context import EvalContext, FinetuneContext, load_trained_model
from tsblib.execution.tsb_finetune import (backbone_names, finetune_chips, tsb_model,
                                           written_blocks_hook)
from tsblib.paths import ProfilePaths
from tsblib.variation import mapped_weight_names
from tsblib.methods.tsb_seeds import backbone_run, blocks_checkpoint, nit_run


def finetune_seeds(profile: ProfileConfig, paths: ProfilePaths, exp: ExperimentConfig,
                   data: PreparedData, lr: float, device: torch.device,
                   progress: bool = True) -> None:
    """Fine-tune the default block (`exp.tsb`, learning rate `lr`) at the operating sigma on the
    first `evaluation.tsb_chips` chips on every extra seed's backbone; one checkpoint per seed
    (no wall-clock time in it)."""
    sigma = exp.evaluation.operating_sigma
    for seed in tqdm(exp.train.extra_seeds, desc=f"{exp.model} training seeds",
                     disable=not progress or not exp.train.extra_seeds):
        backbone, _ = load_trained_model(paths, exp, backbone_run(seed), device)
        model = tsb_model(backbone, exp.tsb)
        tuned, _, _ = finetune_chips(model, data, exp, exp.tsb, sigma, profile.device,
                                     profile.write_verify, device, profile.runtime, lr,
                                     chips=exp.evaluation.tsb_chips, progress=progress)
        io.save_checkpoint(paths.finetune_checkpoint(exp.model, blocks_checkpoint(seed)),
                           {"model": exp.model, "seed": seed, "blocks": tuned, "lr": lr,
                            "sigma": sigma})


def evaluate_seeds(ctx: EvalContext) -> tuple[list[dict], list[dict]]:
    """NIT, NIT + BN recalibration and TSB of every extra seed at the operating sigma on the
    first `evaluation.tsb_chips` chips: rows of seeds.csv and seeds_chips.csv."""
    exp, profile = ctx.exp, ctx.profile
    ev = exp.evaluation
    sigma, chips = ev.operating_sigma, ev.tsb_chips
    calibration = ctx.calibration(exp.methods.of("nit_bnrecal").images)
    shared = exp.tsb.mode is FinetuneMode.SHARED_NOISE
    stat_rows, chip_rows = [], []

    def add(seed: int, method: str, clean: float, stats) -> None:
        base = {"model": exp.model, "seed": seed, "method": method}
        stat_rows.append({**base, "sigma": sigma, "chips": stats.chips, "acc_mean": stats.mean,
                          "acc_std": stats.std, "acc_ci95": stats.ci95, "clean_acc": clean})
        chip_rows.extend({**base, "chip": k, "acc": a} for k, a in enumerate(stats.accuracies))

    for seed in exp.train.extra_seeds:
        nit, clean = ctx.trained(nit_run(seed))
        names = mapped_weight_names(nit)
        add(seed, "nit", clean, ctx.monte_carlo(nit, sigma, chips=chips, names=names,
                                                desc=f"NIT seed {seed}"))
        hook = bnrecal.recalibration_hook(nit, calibration, profile.runtime)
        add(seed, "nit_bnrecal", clean, ctx.monte_carlo(nit, sigma, chips=chips, names=names,
                                                        per_chip=hook,
                                                        desc=f"NIT + BN recal seed {seed}"))
        backbone, backbone_clean = ctx.trained(backbone_run(seed))
        path = ctx.paths.finetune_checkpoint(exp.model, blocks_checkpoint(seed))
        tuned = io.load_checkpoint(path, "finetune")
        if tuned.get("model") != exp.model or tuned.get("sigma") != sigma:
            raise io.StageInputError(f"{path} holds no blocks of {exp.model} at sigma {sigma}; "
                                     f"rerun the 'finetune' stage")
        model = tsb_model(backbone, exp.tsb)
        hook = written_blocks_hook(model, tuned["blocks"], sigma, ev.seed, profile.device,
                                   profile.write_verify, shared, ctx.device)
        add(seed, "tsb", backbone_clean, ctx.monte_carlo(model, sigma, chips=chips,
                                                         names=backbone_names(model),
                                                         per_chip=hook, desc=f"TSB seed {seed}"))
    return stat_rows, chip_rows


def finetune_step(ctx: FinetuneContext) -> None:
    """The default block on every seed's backbone, with the learning rate and epochs chosen
    once for the model on validation."""
    finetune_seeds(ctx.profile, ctx.paths, ctx.chosen_exp, ctx.data, ctx.lr, ctx.device,
                   ctx.progress)


def evaluate_step(ctx: EvalContext) -> dict[str, list[dict]]:
    stat_rows, chip_rows = evaluate_seeds(ctx)
    return {schema.SEEDS.name: stat_rows, schema.SEEDS_CHIPS.name: chip_rows}


