"""The pipeline stages (prepare, recipes, train, finetune, evaluate, mapping) for a profile;
summarize is in `tsblib.report`, robustness in `tsblib.robustness`.

Each stage reads the previous stages' outputs from `ProfilePaths`, writes its own atomically,
and is what `python -m tsblib <stage>` and dvc.yaml call. What a method trains and how it deploys
lives in its module under `tsblib/methods/` (the method registry); the stages only loop.
"""
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
from tsblib.config import (ExperimentConfig, MethodsConfig, ProfileConfig, TrainConfig, TSBConfig,
                           to_dict)
from tsblib.data import PreparedData, data_summary, load_dataset, load_prepared, save_prepared
from tsblib.deployment import NO_VERIFY, DeployPlan, programmed_once
from tsblib.methods.context import (EvalContext, FinetuneContext, TrainContext,
                                    load_trained_model, split_batches)
from tsblib.methods.registry import EXTRA_LABELS, MethodSpec, get_method, ordered
from tsblib.methods.studies import (TrainingJob, all_studies, studies_of, training_jobs,
                                    training_runs)
from tsblib.methods.training import train
from tsblib.methods.tsb_finetune import check_finetune_images, select_settings
from tsblib.models import INPUT_SHAPES, experiment_model
from tsblib.paths import ProfilePaths
from tsblib.pipeline import note_finished
from tsblib.pipeline.force import RETRAIN_ENV, retrain_requested
from tsblib.provenance import code_fingerprint
from tsblib.runtime import configure, use_channels_last
from tsblib.tsb import insert_tsb, tsb_overhead

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- helpers

def _data(paths: ProfilePaths, exp: ExperimentConfig, with_test: bool = False) -> PreparedData:
    return load_prepared(paths.prepared_file(exp.model), with_test=with_test)


def evaluation_batches(data: PreparedData, exp: ExperimentConfig, device: torch.device,
                       channels_last: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The test set as evaluation batches (`exp.evaluation.batch_size` images, normalised)."""
    return split_batches(data, data.test, exp.evaluation.batch_size, device, channels_last)


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


# ----------------------------------------------------------------------------- stages

def prepare(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Load every model's data set, carve the validation split and save it; write
    results/<profile>/data.json."""
    summaries = {}
    for exp in profile.experiments:
        data = load_dataset(exp.data)
        if data.num_classes != exp.num_classes:
            raise ValueError(f"models.{exp.model}.num_classes = {exp.num_classes} but data set "
                             f"{data.name!r} has {data.num_classes} classes; fix params.yaml")
        shape = tuple(data.train.images.shape[1:])
        if exp.model == "lenet3" and shape != INPUT_SHAPES["lenet3"]:
            raise ValueError(f"lenet3 needs 1x28x28 images but {data.name!r} has {shape}")
        save_prepared(data, paths.prepared_file(exp.model))
        summaries[exp.model] = data_summary(data)
    io.write_json(paths.result("data.json"), summaries)


def recipes_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """The validation sweeps behind the stated choices: NIT under every candidate recipe, and
    every NFT variant without an authors' beta under every candidate beta (with the stated
    recipe); per-epoch validation accuracy on chips at sigma_train -> recipes.csv."""
    device = configure(profile.runtime)
    rows = []
    for exp in profile.experiments:
        data = _data(paths, exp)
        sel = exp.selection
        epochs = sel.epochs or exp.train.epochs
        runs = []
        for r in sel.recipes:
            cfg = dataclasses.replace(exp.train, optimizer=r.optimizer, lr=r.lr,
                                      weight_decay=r.weight_decay, epochs=epochs)
            runs.append(("nit", f"recipe: {cfg.recipe}", cfg, exp))
        for method in exp.methods.methods:
            # The sweep reads no configured method parameter (so recipes.csv does not depend
            # on them): each candidate is the method's defaults with the candidate beta.
            params_cls = get_method(method).params
            if params_cls is None or "beta" not in {f.name for f in dataclasses.fields(params_cls)}:
                continue
            if params_cls().authors(exp.model, data.name) is not None:
                continue
            for beta in sel.nft_betas:
                tuned = dataclasses.replace(exp, methods=MethodsConfig(
                    methods=(method,), params={method: params_cls(beta=beta)}))
                runs.append((method, f"beta: {beta:g}",
                             dataclasses.replace(exp.train, epochs=epochs), tuned))
        for method, candidate, cfg, run_exp in tqdm(runs, desc=f"{exp.model} sweeps",
                                                    disable=not progress):
            result = _train_one(get_method(method), run_exp, cfg, data, profile, device,
                                f"{exp.model}/{method} {candidate}", progress)
            rows += [{"model": exp.model, "method": method, "candidate": candidate,
                      "recipe": cfg.recipe, **row} for row in result.curve]
    io.write_table(paths, schema.RECIPES, rows)


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
    data = _data(paths, exp)
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
        data = _data(paths, exp)
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


def finetune_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Choose the block's learning rate and epochs on validation (`tsb.lr` x
    `tsb.select_epochs` candidates), once per model, then run every listed method's own block
    fine-tuning with that choice (`MethodSpec.finetune`: TSB per chip, or once in shared-noise
    mode, for every variant and sigma; the BN-recalibrated block methods), and the default TSB on
    every backbone age and seed of the training-cost trajectory (`tsblib.methods.studies`)."""
    device = configure(profile.runtime)
    for exp in profile.experiments:  # a corrupt input is named now, not minutes into the stage
        io.check_checkpoints([paths.train_checkpoint_dir(exp.model)], "train")
    rows, lr_rows = [], []
    for exp in profile.experiments:
        finetuned = [spec for spec in ordered(exp.methods.methods) if spec.finetune is not None]
        if not finetuned:
            continue
        data = _data(paths, exp)
        check_finetune_images(data, exp.tsb, exp.model)
        backbone, _ = load_trained_model(paths, exp, "tsb_backbone", device)
        chosen = select_settings(backbone, data, exp, profile.device, profile.write_verify,
                                 device, profile.runtime, progress)
        lr, epochs = chosen.lr, chosen.epochs
        lr_rows += chosen.rows
        ctx = FinetuneContext(profile, exp, paths, device, data, backbone, lr, epochs, progress)
        for spec in finetuned:  # in figure order: TSB, then the BN-recalibrated block methods
            rows += spec.finetune(ctx)
        for study in studies_of(exp):  # TSB from every backbone age and seed, the same choice
            if study.finetune is not None:
                study.finetune(ctx)
    io.write_table(paths, schema.FINETUNE, rows)
    io.write_table(paths, schema.TSB_LR, lr_rows)


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
        data = _data(paths, exp, with_test=True)
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


def verify_plan(exp: ExperimentConfig, method: str, swim_p: float | None = None,
                tsb_cfg: TSBConfig | None = None) -> DeployPlan:
    """The mapping plan of results row `method` (`MethodSpec.plan`; 'no_verify' and rows that
    are not methods, such as the TSB backbone without its block, are programmed once). A TSB
    ablation variant is its method's plan with the variant's `tsb_cfg`."""
    if method == NO_VERIFY or method in EXTRA_LABELS:
        return programmed_once(exp)
    plan = get_method(method).plan or programmed_once
    return plan(exp, swim_p, tsb_cfg)


def mapping_sigmas(exp: ExperimentConfig) -> tuple[float, ...]:
    """The sigmas mapping.csv prices every plan at: the evaluated sigmas, sigma = 0 and the
    operating sigma (where the ablation variants are evaluated)."""
    ev = exp.evaluation
    return tuple(dict.fromkeys((*ev.sigmas, 0.0, ev.operating_sigma)))


def deployment_plans(exp: ExperimentConfig) -> list[tuple[str, float | None, DeployPlan]]:
    """Every plan a results row of `exp` deploys with, as (plan name, swim p, plan): programmed
    once ('no_verify', every method without a plan of its own), full write-verify (the mapping
    comparison's reference), each selected method with a plan of its own (at each of its
    `plan_percents`) and each of its `variants` (TSB's ablation variants)."""
    out: list[tuple[str, float | None, DeployPlan]] = [(NO_VERIFY, None, programmed_once(exp))]
    variants = []
    for spec in ordered({"full_wv"} | {m for m in exp.methods.methods if get_method(m).plan}):
        percents = spec.plan_percents(exp) if spec.plan_percents else (None,)
        out += [(spec.name, p, verify_plan(exp, spec.name, p)) for p in percents]
        if spec.name in exp.methods.methods and spec.variants is not None:
            variants += [(name, None, verify_plan(exp, spec.name, tsb_cfg=cfg))
                         for name, cfg in spec.variants(exp).items()]
    return out + variants


def plan_name(exp: ExperimentConfig, method: str) -> str:
    """The mapping.csv plan of results row `method` (`deployment_plans`): a method's own plan or
    one of its variants', else 'no_verify'."""
    if method == NO_VERIFY or method in EXTRA_LABELS:
        return NO_VERIFY
    if any(spec.variants is not None and method in spec.variants(exp)
           for spec in ordered(exp.methods.methods)):
        return method
    return method if get_method(method).plan else NO_VERIFY


def flops_rows(exp: ExperimentConfig, overhead: dict[str, Any], train_images: int) -> list[dict]:
    """flops.csv of `exp` (`tsblib.schema.FLOPS`): every training run's FLOPs per epoch, 2 x MACs
    x 3 (forward and backward) x training images x forwards per step."""
    macs = overhead["backbone_macs"]
    return [{"model": exp.model, "run": spec.name, "forwards_per_step": spec.forwards(exp),
             "macs_per_image": macs, "train_images": train_images,
             "flops_per_epoch": 6.0 * macs * train_images * spec.forwards(exp)}
            for spec in training_runs(exp)]


def overhead_row(exp: ExperimentConfig) -> dict[str, Any]:
    """The weights and MACs of `exp`'s backbone and its default block (`tsblib.schema.OVERHEAD`)."""
    model = insert_tsb(experiment_model(exp), exp.tsb)
    o = tsb_overhead(model, INPUT_SHAPES[exp.model])
    return {"model": exp.model, "tsb_width": exp.tsb.width, **dataclasses.asdict(o)}


def mapping_rows(profile: ProfileConfig, exp: ExperimentConfig) -> list[dict[str, Any]]:
    """mapping.csv of `exp` (`tsblib.schema.MAPPING`): every plan of `deployment_plans` priced at
    every sigma of `mapping_sigmas`."""
    rows = []
    for name, p, plan in deployment_plans(exp):
        for sigma in mapping_sigmas(exp):
            cost = plan.cost(sigma, profile)
            rows.append({"model": exp.model, "plan": name, "swim_p_percent": p, "sigma": sigma,
                         "weights": plan.weights, "verified_weights": plan.verified,
                         "read_back_weights": plan.read_back,
                         "devices": cost.devices, "verified_devices": cost.verified_devices,
                         "write_pulses": cost.write_pulses, "reads": cost.reads,
                         "time_s": cost.time_s, "energy_j": cost.energy_j})
    return rows


def mapping_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """The costs that need no trained weights: the expected weights-to-device mapping cost of
    every deployment plan at every sigma (mapping.csv), the block's overhead (overhead.csv) and
    every training run's FLOPs per epoch (flops.csv); `summarize` joins them, nothing recomputes
    them."""
    rows, overhead, flops = [], [], []
    for exp in profile.experiments:
        rows += mapping_rows(profile, exp)
        data = io.read_json(paths.result(schema.DATA_FILE), "prepare")[exp.model]
        overhead.append(overhead_row(exp))
        flops += flops_rows(exp, overhead[-1], int(data["train"]["count"]))
    io.write_table(paths, schema.MAPPING, rows)
    io.write_table(paths, schema.OVERHEAD, overhead)
    io.write_table(paths, schema.FLOPS, flops)
