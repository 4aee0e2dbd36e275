"""The train stage: every training run of `tsblib.methods.studies.training_jobs`, each saved with
a fingerprint of what determines it, so an interrupted stage resumes (training.csv,
training_extra.csv); `runtime.train_workers` runs train at once in separate processes."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import queue
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from tsblib import io, schema
from tsblib.config import ExperimentConfig, ProfileConfig, TrainConfig, to_dict
from tsblib.data import PreparedData
from tsblib.execution.context import TrainContext
from tsblib.execution.training import train
from tsblib.methods.registry import MethodSpec
from tsblib.methods.studies import TrainingJob, training_jobs
from tsblib.models import experiment_model
from tsblib.paths import ProfilePaths
from tsblib.pipeline import note_finished
from tsblib.pipeline.force import RETRAIN_ENV, retrain_requested
from tsblib.provenance import code_fingerprint
from tsblib.runtime import configure
from tsblib.stages.common import prepared_data

log = logging.getLogger(__name__)



def _train_one(spec: MethodSpec, exp: ExperimentConfig, cfg: TrainConfig, data: PreparedData,
               profile: ProfileConfig, device: torch.device, desc: str, progress: bool,
               snapshot_epochs: tuple[int, ...] = (),
               on_epoch: Callable[[dict[str, Any]], None] | None = None):
    """One training run of method `spec` with recipe `cfg` (`on_epoch`: see `train`)."""
    model = experiment_model(exp, seed=cfg.seed)
    objective = spec.objective(TrainContext(model, dataclasses.replace(exp, train=cfg),
                                            profile.device, data.name))
    return train(model, data, cfg, objective, device=device, runtime=profile.runtime,
                 device_model=profile.device, select_on=spec.selects_epoch_on,
                 snapshot_epochs=snapshot_epochs, val_seed=cfg.seed + 7, desc=desc,
                 progress=progress, on_epoch=on_epoch)


def run_fingerprint(exp: ExperimentConfig, spec: MethodSpec, profile: ProfileConfig,
                    data: PreparedData) -> str:
    """What determines a training run's result: model, method, recipe, method parameters,
    device model, runtime, the prepared data's checksum and the library code. A saved run with
    the same fingerprint is the run this one would repeat (training is deterministic).

    The trajectory's backbone ages (`methods.tsb_ages`, `methods.tsb_annealed`,
    `methods.tsb_ages_bnrecal`) choose which saved states are evaluated, not what any run trains,
    so they are left out."""
    architecture = {k: list(v.shape) for k, v in experiment_model(exp).state_dict().items()}
    methods = {k: v for k, v in to_dict(exp.methods).items()
               if k not in ("tsb_ages", "tsb_annealed", "tsb_ages_bnrecal")}
    train = {k: v for k, v in to_dict(exp.train).items() if k != "extra_seeds"}
    payload = {"model": exp.model, "num_classes": exp.num_classes, "architecture": architecture,
               "method": spec.name,
               "train": train, "methods": methods,
               "device": to_dict(profile.device), "runtime": to_dict(profile.runtime),
               "data": data.checksum, "code": code_fingerprint()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _finished_run(paths: ProfilePaths, exp: ExperimentConfig, job: TrainingJob,
                  fingerprint: str) -> list[dict] | None:
    """The per-epoch curve of this exact run if a previous, possibly interrupted, invocation
    saved it complete (every checkpoint of the job, e.g. NIT's, its early snapshot and its
    per-epoch states, and the log, all with `fingerprint`); else None."""
    files = [paths.train_checkpoint(exp.model, f) for f in job.files]
    log_file = paths.train_log(exp.model, job.run)
    if not log_file.is_file() or not all(f.is_file() for f in files):
        return None
    try:
        saved = [io.load_checkpoint(f, "train") for f in files] + [io.read_json(log_file, "train")]
    except io.StageInputError as exc:  # damaged (e.g. truncated by a kill): say so, train again
        log.warning("%s/%s: the saved run cannot be reused and is trained again: %s",
                    exp.model, job.run, str(exc).split("; rerun")[0])
        return None
    if any(s.get("fingerprint") != fingerprint for s in saved):
        return None
    return saved[-1]["curve"]


def _save_run(paths: ProfilePaths, exp: ExperimentConfig, job: TrainingJob, result,
              fingerprint: str) -> None:
    """Save the checkpoints of a finished job (`TrainingJob.files`). No wall-clock time in the
    checkpoints (identical training, identical bytes): the curve with its seconds goes to the
    log, saved last."""
    model = exp.model
    for snap in job.snapshots:  # another method's training run (the TSB backbone)
        io.save_checkpoint(paths.train_checkpoint(model, snap.file),
                           {"model": model, "method": snap.method,
                            "state": result.snapshots[snap.epoch], "epochs": snap.epoch,
                            "selected_epoch": snap.epoch, "fingerprint": fingerprint})
    if job.every_epoch:
        io.save_checkpoint(paths.train_checkpoint(model, job.every_epoch),
                           {"model": model, "method": job.every_epoch,
                            "states": {e: result.snapshots[e] for e in range(1, result.epochs + 1)},
                            "fingerprint": fingerprint})
    if job.deploys_last:  # the end of its schedule
        io.save_checkpoint(paths.train_checkpoint(model, job.run),
                           {"model": model, "method": job.run,
                            "state": result.snapshots[job.cfg.epochs], "epochs": job.cfg.epochs,
                            "selected_epoch": job.cfg.epochs, "fingerprint": fingerprint})
    else:
        io.save_checkpoint(paths.train_checkpoint(model, job.run),
                           {"model": model, "method": job.run, "state": result.state,
                            "epochs": result.epochs, "selected_epoch": result.selected_epoch,
                            "fingerprint": fingerprint})
    io.write_json(paths.train_log(model, job.run), {"fingerprint": fingerprint, "curve": result.curve})


def _run_job(profile: ProfileConfig, paths: ProfilePaths, exp: ExperimentConfig, job: TrainingJob,
             fingerprint: str, device: torch.device, progress: bool,
             on_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Train `job` and save it (checkpoints, then its log)."""
    data = prepared_data(paths, exp)
    result = _train_one(job.spec, exp, job.cfg, data, profile, device,
                        f"{exp.model}/{job.run}", progress,
                        snapshot_epochs=job.snapshot_epochs, on_epoch=on_epoch)
    _save_run(paths, exp, job, result, fingerprint)


def _job_worker(profile: ProfileConfig, paths: ProfilePaths, model: str, run: str,
                fingerprint: str, threads: int, epochs: Any = None) -> str:
    """One job in a worker process of `runtime.train_workers` (`threads` torch threads); after
    every epoch it puts (run, epoch) on the queue `epochs`, when given, for the parent's bars."""
    torch.set_num_threads(threads)
    device = configure(dataclasses.replace(profile.runtime, threads=threads))
    exp = profile.experiment(model)
    job = next(j for j in training_jobs(exp) if j.run == run)
    report = None if epochs is None else (lambda row: epochs.put((run, row["epoch"])))
    _run_job(profile, paths, exp, job, fingerprint, device, progress=False, on_epoch=report)
    return run


def _run_parallel(profile: ProfileConfig, paths: ProfilePaths, exp: ExperimentConfig,
                  pending: list[tuple[TrainingJob, str]], progress: bool) -> None:
    """Train `pending` jobs (job, fingerprint) in `runtime.train_workers` processes at once,
    the longest first; each saves its run as it finishes."""
    import concurrent.futures
    import contextlib
    import multiprocessing

    workers = min(profile.runtime.train_workers, len(pending))
    threads = max(1, (profile.runtime.threads or torch.get_num_threads()) // workers)
    pending = sorted(pending, key=lambda p: -p[0].cfg.epochs * p[0].spec.forwards(exp))
    context = multiprocessing.get_context("spawn")
    with contextlib.ExitStack() as stack:
        # the workers' epoch reports, only when there is a progress bar to feed (entered first,
        # so it outlives the pool, whose exit waits for every worker)
        epochs = stack.enter_context(context.Manager()).Queue() if progress else None
        pool = stack.enter_context(concurrent.futures.ProcessPoolExecutor(workers,
                                                                          mp_context=context))
        futures = {pool.submit(_job_worker, profile, paths, exp.model, job.run, fp, threads,
                               epochs): job for job, fp in pending}
        title = (f"{exp.model} training runs ({workers} at once, "
                 f"{threads} thread{'s' if threads > 1 else ''} each)")
        bar = tqdm(total=sum(job.cfg.epochs for job, _ in pending), unit="epoch", desc=title,
                   disable=not progress)
        done_runs: list[str] = []
        remaining = set(futures)
        while remaining:
            finished, remaining = concurrent.futures.wait(remaining, timeout=1.0)
            _drain_epochs(epochs, bar, title)
            for done in finished:
                run = done.result()  # a worker's exception surfaces here
                note_finished("train", f"{exp.model}/{run}")
                done_runs.append(run)
                bar.set_postfix_str(f"done: {', '.join(done_runs)}")
        _drain_epochs(epochs, bar, title)
        bar.close()


def _drain_epochs(epochs: Any, bar: tqdm, title: str) -> None:
    """Advance `bar` (one step per epoch of every run) by the epochs the workers have put on
    queue `epochs` so far, naming the latest."""
    while epochs is not None:
        try:
            run, epoch = epochs.get_nowait()
        except queue.Empty:
            return
        bar.update()
        bar.set_description_str(f"{title}: {run} epoch {epoch}")


def train_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Train every job of `training_jobs`: clean and NIT always and every method with its own
    run, each deploying its best epoch on validation; NIT also saves the snapshots taken from it
    (the TSB backbone), and the selected methods' studies add theirs (with TSB: NIT's state
    after every epoch, the short annealed backbone run, the further training seeds).

    Each run is saved as soon as it finishes, with a fingerprint of everything that determines
    it (`run_fingerprint`); a rerun reuses saved runs with the same fingerprint, so an
    interrupted stage resumes from the methods that finished (a damaged one is named and
    trained again), except under `dvc repro --force` or `TSB_RETRAIN=1`
    (`tsblib.pipeline.force`), which retrain every run. With `runtime.train_workers` > 1
    the runs still to train run that many at once, in separate processes.
    """
    device = configure(profile.runtime)
    retrain = retrain_requested()
    rows, extra_rows = [], []
    for exp in profile.experiments:
        data = prepared_data(paths, exp)
        keep, pending, jobs = set(), [], []
        for job in training_jobs(exp):
            fingerprint = run_fingerprint(dataclasses.replace(exp, train=job.cfg), job.spec,
                                          profile, data)
            keep |= {paths.train_checkpoint(exp.model, f).name for f in job.files}
            jobs.append((job, fingerprint))
            if retrain:
                tqdm.write(f"{exp.model}/{job.run}: trained again, saved runs not reused "
                           f"(dvc repro --force or {RETRAIN_ENV}=1)")
                pending.append((job, fingerprint))
            elif _finished_run(paths, exp, job, fingerprint) is not None:
                if progress:
                    tqdm.write(f"{exp.model}/{job.run}: reusing the finished run saved in "
                               f"{paths.train_checkpoint(exp.model, job.run)} (same code, "
                               f"parameters and data)")
                note_finished("train", f"{exp.model}/{job.run}")
            else:
                pending.append((job, fingerprint))
        if profile.runtime.train_workers > 1 and len(pending) > 1:
            _run_parallel(profile, paths, exp, pending, progress)
        else:
            for job, fingerprint in pending:
                _run_job(profile, paths, exp, job, fingerprint, device, progress)
                note_finished("train", f"{exp.model}/{job.run}")
        for job, fingerprint in jobs:
            curve = _finished_run(paths, exp, job, fingerprint)
            if curve is None:
                raise io.StageInputError(f"{exp.model}/{job.run} finished but its saved run "
                                         f"cannot be read back; rerun the 'train' stage")
            row = {"model": exp.model, "method": job.run, "recipe": job.cfg.recipe}
            if job.deploys_last:  # the end of its schedule is what it keeps
                curve = [{**r, "selected": r["epoch"] == job.cfg.epochs} for r in curve]
            (extra_rows if job.extra else rows).extend({**row, **r} for r in curve)
        for stale in paths.train_checkpoint_dir(exp.model).glob("*.pt"):
            if stale.name not in keep:  # a method no longer selected: not an output any more
                stale.unlink()
    io.write_table(paths, schema.TRAINING, rows)
    io.write_table(paths, schema.TRAINING_EXTRA, extra_rows)


