"""Training seeds as a second source of spread (DESIGN section 6), a study of method `tsb`: NIT
retrained with each of `train.extra_seeds` (its early snapshot is that seed's TSB backbone), and
NIT, NIT + BN recalibration and TSB of every seed evaluated on the same paired chips at the
operating sigma (seeds.csv, seeds_chips.csv). Here: its training jobs and checkpoint names; its
fine-tuning and evaluation: `tsblib.execution.tsb_seeds`."""
from __future__ import annotations

import dataclasses

from tsblib import schema
from tsblib.config import ExperimentConfig
from tsblib.methods.registry import Implementation
from tsblib.methods.studies import (Snapshot, Study, TrainingJob, early_epoch, insert_after,
                                    register_study)

IMPL = Implementation("tsb_seeds")


def nit_run(seed: int) -> str:
    """Training-checkpoint name of NIT trained with `seed`."""
    return f"nit_seed{seed}"


def backbone_run(seed: int) -> str:
    """Training-checkpoint name of NIT's early snapshot (the TSB backbone) with `seed`."""
    return f"tsb_backbone_seed{seed}"


def blocks_checkpoint(seed: int) -> str:
    """Finetune-checkpoint name of the blocks fine-tuned on the backbone of `seed`."""
    return f"tsb_seed{seed}"


def _jobs(exp: ExperimentConfig, jobs: list[TrainingJob]) -> list[TrainingJob]:
    """NIT again with each of `train.extra_seeds` ('nit_seed<s>'), each keeping its early
    snapshot, that seed's TSB backbone ('tsb_backbone_seed<s>'), after NIT's run."""
    nit = next(j for j in jobs if j.run == "nit")
    early = early_epoch(exp.train.epochs, exp.methods.tsb_early_fraction)
    return insert_after(jobs, "nit", [
        TrainingJob(nit_run(seed), nit.spec, dataclasses.replace(exp.train, seed=seed,
                                                                 extra_seeds=()),
                    snapshots=(Snapshot(backbone_run(seed), "tsb_backbone", early),), extra=True)
        for seed in exp.train.extra_seeds])


STUDY = register_study(Study(
    name="training seeds", method="tsb", order=2, tables=(schema.SEEDS, schema.SEEDS_CHIPS),
    jobs=_jobs, finetune=IMPL.finetune_step, evaluate=IMPL.evaluate_step))
