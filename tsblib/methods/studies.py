"""What a method adds to the pipeline beyond its own training run and deployment, declared in its
own modules rather than in the stages:

- `Snapshot`s: a state of another method's training run that a method deploys (TSB's backbone is
  NIT's state after its early epoch), saved by that run's job (`register_snapshot`);
- `Study`s: a per-model study run by the train, finetune and evaluate stages (TSB's
  training-cost trajectory and its further training seeds), with the results tables it writes
  (`register_study`).

The train stage's jobs (`training_jobs`) are every training run, each saving the snapshots taken
from it, then extended by the studies of the selected methods.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from tsblib.config import ExperimentConfig, TrainConfig
from tsblib.methods.registry import MethodSpec, all_methods, check_hooks, get_method, ordered
from tsblib.schema import Table

if TYPE_CHECKING:  # pragma: no cover - type names only
    from tsblib.execution.context import EvalContext, FinetuneContext


@dataclass(frozen=True)
class SnapshotSpec:
    """A training run that is another run's state after a given epoch (`register_snapshot`)."""

    run: str
    """Its name: the `trained_from` of the methods that deploy it, and its checkpoint."""
    source: str
    """The training run it is taken from."""
    epoch: Callable[[ExperimentConfig, TrainConfig], int]
    """The epoch whose state it is, from the experiment and the source run's recipe."""


@dataclass(frozen=True)
class Snapshot:
    """One state a job saves as a checkpoint of its own."""

    file: str
    """Checkpoint name (`ProfilePaths.train_checkpoint`)."""
    method: str
    """The `method` the checkpoint records."""
    epoch: int
    """The epoch whose state it holds."""


@dataclass(frozen=True)
class TrainingJob:
    """One training run of the train stage."""

    run: str
    """Its name: the checkpoint and log name ('nit', 'tsb_backbone_annealed', ...)."""
    spec: MethodSpec
    """The method whose objective it trains."""
    cfg: TrainConfig
    """Its recipe (the annealed TSB backbone: NIT's with fewer epochs)."""
    snapshots: tuple[Snapshot, ...] = ()
    """Further states it saves, each as a checkpoint of its own (NIT: the TSB backbone)."""
    every_epoch: str | None = None
    """Checkpoint holding its state after every epoch (NIT: 'nit_epochs'); None = not kept."""
    deploys_last: bool = False
    """Its checkpoint holds the state at the end of its schedule (marked selected in its curve),
    not the epoch selected on validation."""
    extra: bool = False
    """Not a method's run: its curve goes to training_extra.csv, not training.csv."""

    @property
    def files(self) -> tuple[str, ...]:
        """Checkpoints it saves (names for `ProfilePaths.train_checkpoint`), all needed to reuse
        it."""
        every = (self.every_epoch,) if self.every_epoch else ()
        return (self.run, *(s.file for s in self.snapshots), *every)

    @property
    def snapshot_epochs(self) -> tuple[int, ...]:
        """The epochs after which training keeps the state (what its checkpoints hold)."""
        if self.every_epoch:
            return tuple(range(1, self.cfg.epochs + 1))
        last = (self.cfg.epochs,) if self.deploys_last else ()
        return tuple(sorted({s.epoch for s in self.snapshots} | set(last)))


@dataclass(frozen=True)
class Study:
    """A per-model study a method brings beyond its own deployment (`register_study`)."""

    name: str
    """Its name (one line of the stages' progress)."""
    method: str
    """The method it belongs to: it runs when that method is selected."""
    order: int
    """Its place among the studies (the order of their jobs and rows)."""
    tables: tuple[Table, ...]
    """The results tables its `evaluate` fills; the evaluate stage writes them (without rows
    when no selected method runs the study)."""
    jobs: Callable[[ExperimentConfig, list[TrainingJob]], list[TrainingJob]] | None = None
    """The train stage's jobs with what the study needs added (further runs, kept states)."""
    finetune: Callable[[FinetuneContext], None] | None = None
    """Its step in the finetune stage (a `Hook`; saves its own checkpoints)."""
    evaluate: Callable[[EvalContext], dict[str, list[dict]]] | None = None
    """Its step in the evaluate stage (a `Hook`): rows by table name (of `tables`)."""


SNAPSHOTS: dict[str, SnapshotSpec] = {}
"""Snapshot runs by name."""

STUDIES: list[Study] = []
"""Registered studies."""


def register_snapshot(spec: SnapshotSpec) -> SnapshotSpec:
    """Declare the training run `spec.run` as `spec.source`'s state after `spec.epoch`."""
    if spec.run in SNAPSHOTS and SNAPSHOTS[spec.run] is not spec:
        raise ValueError(f"snapshot {spec.run!r} is registered twice")
    SNAPSHOTS[spec.run] = spec
    return spec


def register_study(study: Study) -> Study:
    """Add `study`; its tables must be named and its method known when the registry loads."""
    if not study.tables and study.evaluate is not None:
        raise ValueError(f"study {study.name!r}: an evaluate step needs the tables it fills")
    check_hooks(f"study {study.name!r}", (study.finetune, study.evaluate))
    if any(s.name == study.name and s is not study for s in STUDIES):
        raise ValueError(f"study {study.name!r} is registered twice")
    if study not in STUDIES:
        STUDIES.append(study)
    return study


def all_studies() -> list[Study]:
    """Every registered study (imports the method modules on first use)."""
    all_methods()
    return STUDIES


def studies_of(exp: ExperimentConfig) -> list[Study]:
    """The studies of `exp`'s selected methods, in their `order`."""
    return sorted((s for s in all_studies() if s.method in exp.methods.methods),
                  key=lambda s: s.order)


def training_runs(exp: ExperimentConfig) -> list[MethodSpec]:
    """Training runs of `exp`: clean (the ideal-gap reference) and NIT (reused by most methods)
    always, plus every selected method with its own objective, in figure order."""
    names = {"clean", "nit"} | {m for m in exp.methods.methods if get_method(m).trains}
    return ordered(names)


def _snapshots(exp: ExperimentConfig, source: str, cfg: TrainConfig) -> tuple[Snapshot, ...]:
    """The snapshots taken from run `source` (saved whenever it trains: the finetune stage
    chooses every block method's settings on the TSB backbone, whichever methods are
    selected)."""
    all_methods()
    return tuple(Snapshot(s.run, s.run, s.epoch(exp, cfg)) for s in SNAPSHOTS.values()
                 if s.source == source)


def training_jobs(exp: ExperimentConfig) -> list[TrainingJob]:
    """The train stage's runs, in order: every run of `training_runs`, saving the snapshots taken
    from it (NIT: the TSB backbone), then what the selected methods' studies add
    (`Study.jobs`)."""
    jobs = []
    for spec in training_runs(exp):
        cfg = spec.train_config(exp)
        jobs.append(TrainingJob(spec.name, spec, cfg, _snapshots(exp, spec.name, cfg)))
    for study in studies_of(exp):
        if study.jobs is not None:
            jobs = study.jobs(exp, jobs)
    return jobs


def replace_job(jobs: list[TrainingJob], run: str, **changes) -> list[TrainingJob]:
    """`jobs` with the job of `run` changed (`dataclasses.replace`)."""
    return [dataclasses.replace(j, **changes) if j.run == run else j for j in jobs]


def insert_after(jobs: list[TrainingJob], run: str, added: list[TrainingJob]) -> list[TrainingJob]:
    """`jobs` with `added` right after the job of `run` (after the jobs already added there)."""
    i = next(k for k, j in enumerate(jobs) if j.run == run)
    while i + 1 < len(jobs) and jobs[i + 1].extra:
        i += 1
    return jobs[:i + 1] + added + jobs[i + 1:]


def early_epoch(epochs: int, fraction: float) -> int:
    """The epoch at which the TSB backbone stops: ceil(fraction * epochs), at least 1."""
    return max(1, math.ceil(fraction * epochs - 1e-9))
