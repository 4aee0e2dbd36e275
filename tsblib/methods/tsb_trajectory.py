"""The training-cost trajectory (DESIGN section 6, "Training cost at equal accuracy"), a study of
method `tsb`: accuracy on chips at the operating sigma of NIT after every epoch (programmed once,
and with per-chip BN recalibration) and of TSB from backbones of several ages, all on the same
chips (trajectory.csv, trajectory_chips.csv).

The backbone of age a is NIT's own state after `early_epoch(train.epochs, a)` epochs; with
`methods.tsb_annealed`, a short NIT schedule of the TSB backbone's length annealed to its end is a
further backbone. Here: the backbones, the epochs and the training jobs; the fine-tuning and the
evaluation: `tsblib.execution.tsb_trajectory`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tsblib import schema
from tsblib.config import ExperimentConfig
from tsblib.methods.registry import Implementation
from tsblib.methods.studies import (Study, TrainingJob, early_epoch, insert_after, register_study,
                                    replace_job)

IMPL = Implementation("tsb_trajectory")


AGES_CHECKPOINT = "tsb_ages"
"""Finetune-stage checkpoint of the blocks fine-tuned on every backbone of the trajectory:
{"model", "blocks": {backbone key: {block name: [chips, c, c]}}, "lr", "sigma"}; with
`methods.tsb_ages_bnrecal` also "bnrecal_blocks" and "bnrecal_buffers" (the BatchNorm statistics
each chip's block was fine-tuned with, {name: [chips, C]}) per backbone key."""


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


def _jobs(exp: ExperimentConfig, jobs: list[TrainingJob]) -> list[TrainingJob]:
    """NIT keeps its state after every epoch ('nit_epochs'); with `methods.tsb_annealed`, the
    short NIT schedule of the TSB backbone's length annealed to its end
    ('tsb_backbone_annealed') follows NIT's run."""
    jobs = replace_job(jobs, "nit", every_epoch="nit_epochs")
    if not exp.methods.tsb_annealed:
        return jobs
    nit = next(j for j in jobs if j.run == "nit")
    cfg = dataclasses.replace(exp.train, epochs=annealed_epochs(exp))
    return insert_after(jobs, "nit", [TrainingJob("tsb_backbone_annealed", nit.spec, cfg,
                                                  deploys_last=True, extra=True)])


STUDY = register_study(Study(
    name="training-cost trajectory", method="tsb", order=1,
    tables=(schema.TRAJECTORY, schema.TRAJECTORY_CHIPS), jobs=_jobs, finetune=IMPL.finetune_step,
    evaluate=IMPL.evaluate_step))
