"""The evaluate stage: Monte Carlo accuracy of every selected method on the test split (chips.csv,
evaluation.csv) and the studies' tables."""
from __future__ import annotations

import torch

from tsblib import io, schema
from tsblib.config import ExperimentConfig, ProfileConfig
from tsblib.data import PreparedData
from tsblib.execution.context import EvalContext, split_batches
from tsblib.methods.registry import ordered
from tsblib.methods.studies import all_studies, studies_of
from tsblib.paths import ProfilePaths
from tsblib.runtime import configure, use_channels_last
from tsblib.stages.common import prepared_data


def evaluation_batches(data: PreparedData, exp: ExperimentConfig, device: torch.device,
                       channels_last: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The test set as evaluation batches (`exp.evaluation.batch_size` images, normalised)."""
    return split_batches(data, data.test, exp.evaluation.batch_size, device, channels_last)


def evaluate_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Monte Carlo accuracy of every method over the sigma sweep (and ablations at the
    operating point) on the test split, the only stage that reads it; writes chips.csv (one row
    per chip) and evaluation.csv (statistics); and the tables of the selected methods' studies
    (`tsblib.methods.studies`: TSB's training-cost trajectory and training seeds; every
    registered study's tables are written, without rows where no selected method runs it)."""
    device = configure(profile.runtime)
    for exp in profile.experiments:  # a corrupt input is named now, not minutes into the stage
        io.check_checkpoints([paths.train_checkpoint_dir(exp.model)], "train")
        io.check_checkpoints([paths.finetune_checkpoint_dir(exp.model)], "finetune")
    chip_rows, stat_rows = [], []
    study_rows: dict[str, list[dict]] = {t.name: [] for s in all_studies() for t in s.tables}
    for exp in profile.experiments:
        data = prepared_data(paths, exp, with_test=True)
        cl = use_channels_last(profile.runtime, device)
        ctx = EvalContext(profile, exp, paths, device, data,
                          evaluation_batches(data, exp, device, cl), progress)
        for spec in ordered(exp.methods.methods):
            for point in spec.evaluate(ctx):
                if point.swim_p is None:
                    ctx.points[(point.method, point.sigma)] = point.stats
                base = {"model": exp.model, "method": point.method,
                        "swim_p_percent": point.swim_p, "sigma": point.sigma}
                chip_rows += [{**base, "chip": k, "acc": a}
                              for k, a in enumerate(point.stats.accuracies)]
                stat_rows.append({**base, "chips": point.stats.chips, "clean_acc": point.clean_acc,
                                  "acc_mean": point.stats.mean, "acc_std": point.stats.std,
                                  "acc_ci95": point.stats.ci95})
        for study in studies_of(exp):
            if study.evaluate is not None:
                for name, rows in study.evaluate(ctx).items():
                    study_rows[name] += rows
    io.write_table(paths, schema.CHIPS, chip_rows)
    io.write_table(paths, schema.EVALUATION, stat_rows)
    for name, rows in study_rows.items():
        io.write_table(paths, schema.TABLES[name], rows)
