"""The pipeline's stages, their order and the parameters each one reads: the one registry that
the CLI (`python -m tsblib <stage>` and `all`), the reproduction check, the demo and dvc.yaml
follow (tests/pipeline/test_pipeline.py checks dvc.yaml against it).

Every stage but `summarize` runs per model (`Stage.per_model`): one model at a time, its outputs
under results/<profile>/models/<model>/ and per-model checkpoint folders, so that dvc.yaml can
run it as one stage per model (`foreach`), a model can be rerun alone, and `summarize` meets
them all. A stage runs on a *scoped* profile (`tsblib.pipeline.scope`): every parameter group it does
not declare is replaced by a stand-in that raises on use, so a stage that reads an undeclared
parameter fails in the tests instead of leaving DVC with a stale result.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tsblib import io
from tsblib.config import ConfigError, ExperimentConfig, ProfileConfig, read_parameter_file
from tsblib.figures import figure_names
from tsblib.paths import ProfilePaths
from tsblib.pipeline.scope import scoped
from tsblib.profiles import load_profile
from tsblib.provenance import machine_info


@dataclass(frozen=True)
class Stage:
    """One pipeline stage."""

    name: str
    """Stage name: the `python -m tsblib <name>` sub-command and the dvc.yaml stage."""
    entry: str
    """Its entry point, 'module:function', called as function(profile, paths, progress=...)."""
    help: str
    """One line for `--help`."""
    params: tuple[str, ...]
    """Parameter groups it reads, relative to `profiles.<profile>` ('train', 'methods.methods',
    ...; '*' = the whole profile). dvc.yaml declares exactly these; for a per-model stage,
    'models' is its own model's entry (`profiles.<profile>.models.<model>`)."""
    per_model: bool = True
    """Runs once per model, writing only that model's outputs (`ProfilePaths.for_model`)."""

    def function(self) -> Callable[..., None]:
        """The entry point, imported on first use (stages import torch)."""
        module, name = self.entry.split(":")
        return getattr(importlib.import_module(module), name)


STAGES: tuple[Stage, ...] = (
    Stage("prepare", "tsblib.stages.prepare:prepare",
          "load every model's data set, carve the validation split (data/prepared/<profile>/)",
          ("data", "models")),
    Stage("recipes", "tsblib.stages.recipes:recipes_stage",
          "validation sweeps: NIT under each candidate recipe, NFT beta where the authors give "
          "none (recipes.csv)",
          ("train", "selection", "methods.methods", "device", "runtime", "models", "tsb.width",
           "ablation.widths")),
    Stage("train", "tsblib.stages.train:train_stage",
          "train every method with a training run (clean, NIT + early TSB backbone, NFT, "
          "CorrectNet); each deploys its best validation epoch",
          ("train", "methods", "device", "runtime", "models", "tsb.width", "ablation.widths")),
    Stage("finetune", "tsblib.stages.finetune:finetune_stage",
          "fine-tune the Tiny Shared Block per chip, for every variant and sigma (learning rate "
          "and epochs chosen on validation), the BN-recalibrated block methods, and TSB on every "
          "backbone age of the training-cost trajectory",
          ("tsb", "ablation", "evaluation", "methods", "device", "write_verify", "runtime",
           "models", "train.extra_seeds")),
    Stage("evaluate", "tsblib.stages.evaluate:evaluate_stage",
          "Monte Carlo accuracy of every method over the sigma sweep (with robustness, the only "
          "stages that read the test split)",
          ("evaluation", "methods", "tsb", "ablation", "device", "write_verify", "runtime",
           "models", "train.extra_seeds")),
    Stage("mapping", "tsblib.stages.mapping:mapping_stage",
          "the costs that need no trained weights: expected weights-to-device mapping cost of "
          "every deployment plan, the block's overhead and every training run's FLOPs per epoch",
          ("mapping", "write_verify", "device", "methods", "tsb", "evaluation.sigmas",
           "evaluation.operating_sigma", "models", "ablation")),
    Stage("robustness", "tsblib.robustness:robustness_stage",
          "every deployment at the operating sigma under device models beyond the Gaussian "
          "(level-dependent, stuck-at, read noise, drift vs time); reads the test split",
          ("robustness", "evaluation", "methods", "tsb", "device", "write_verify", "mapping",
           "runtime", "models", "ablation.widths")),
    Stage("summarize", "tsblib.report:summarize_stage",
          "merge results into summary.csv, ablations.csv, claims.json, provenance.json, the DVC "
          "metrics (metrics/<model>.json) and plot data (plots/); concatenates the per-model "
          "tables into results/<profile>/*.csv",
          ("*",), per_model=False),
)
"""The stages in pipeline order (`validate` runs before them: it writes no result)."""

FIGURES: tuple[str, ...] = figure_names()
"""Figure notebooks in notebooks/, in the order of DESIGN section 7: one per module of
`tsblib.figures` (found there, `figure_names`)."""


_FINISHED: dict[str, list[str]] = {}
"""Work items each stage has saved complete in this process (for the Ctrl-C message)."""


def note_finished(stage: str, item: str) -> None:
    """Record that `stage` saved `item` complete (e.g. 'lenet3/nit'), so an interruption can say
    what a rerun will reuse."""
    _FINISHED.setdefault(stage, []).append(item)


def finished(stage: str) -> list[str]:
    """Items `stage` saved complete in this process, in order."""
    return list(_FINISHED.get(stage, []))


def stage_names() -> tuple[str, ...]:
    """Names of the stages, in order."""
    return tuple(s.name for s in STAGES)


def get_stage(name: str) -> Stage:
    """The stage called `name`; a clear error for an unknown one."""
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise ConfigError(f"stage = {name!r} is unknown; stages: {list(stage_names())}")


def check_ready(profile: ProfileConfig) -> None:
    """Check what can be known before any stage runs, beyond the parameter validation that
    `load_profile` has done (types, ranges, block widths against every model's insertion
    widths, duplicate keys): every model's data set is present. Raises with the fix."""
    from tsblib.data import check_available

    for exp in profile.experiments:
        check_available(exp.data)
        check_finetune_budget(exp)


TRAINING_POOL = {"mnist-embedded": 5000, "mnist": 60000, "cifar10": 50000}
"""Images of each data set's training pool (embedded: all its digits, before the test split)."""


def check_finetune_budget(exp: ExperimentConfig) -> None:
    """Refuse a per-chip fine-tuning budget (`tsb.images`) larger than the training split can
    hold, before any stage runs: the training pool less the test split (embedded data) and the
    validation split, rounded up (the finetune stage checks the exact split size again)."""
    pool = TRAINING_POOL.get(exp.data.dataset)
    if pool is None or not exp.tsb.images:
        return
    if exp.data.dataset == "mnist-embedded":
        pool = pool - int(pool * exp.data.test_fraction)
    if exp.data.train_limit:
        pool = min(pool, exp.data.train_limit)
    train = math.ceil(pool * (1 - exp.data.val_fraction))
    if exp.tsb.images > train:
        raise ConfigError(f"models.{exp.model}.tsb.images = {exp.tsb.images} is not allowed: the "
                          f"training split of {exp.data.dataset!r} holds about {train} images "
                          f"(validation split removed); expected 0 (all of them) or at most "
                          f"{train}. Fix it in params.yaml.")


def check_stage_models(params_path: Path, profile: ProfileConfig) -> None:
    """Check that the top-level `models:` list of the parameter file (the list dvc.yaml runs one
    stage per model for: DVC cannot read `profiles.${profile}.models` indirectly) names exactly
    the models of the selected `profile`, in order. Raises with the fix."""
    listed = read_parameter_file(params_path).get("models")
    wanted = [e.model for e in profile.experiments]
    if listed != wanted:
        raise ConfigError(f"{params_path}: `models: {listed}` (the list dvc.yaml runs one stage per "
                          f"model for) must name the models of profile {profile.name!r}: set "
                          f"`models:` to the list [{', '.join(wanted)}], or run `python -m tsblib use "
                          f"{profile.name}`, which sets `profile:` and `models:` together")


def use_profile(params_path: Path, name: str) -> list[str]:
    """Select profile `name` for `dvc repro`: rewrite the top-level `profile:` and `models:`
    entries of the parameter file (comments and everything else kept; `models` as a block list,
    the form `dvc exp run -S` keeps), after validating the profile, and write its `validate`
    marker (data/validated/<name>.json), so that `dvc repro --dry` can plan a profile that has
    never run. Returns its models."""
    profile = load_profile(params_path, name)
    models = [e.model for e in profile.experiments]
    text = params_path.read_text()
    entries = {"profile": f"profile: {name}\n",
               "models": "models:\n" + "".join(f"- {m}\n" for m in models)}
    for key, entry in entries.items():
        # the key's line, with a one-line value or followed by its block list items
        pattern = re.compile(rf"^{key}:[^\n]*\n(?:- [^\n]*\n)*", re.MULTILINE)
        if len(pattern.findall(text)) != 1:
            raise ConfigError(f"{params_path} needs exactly one top-level `{key}:` entry (e.g. "
                              f"`{entry.strip()}`) for `use` to set it")
        text = pattern.sub(lambda _: entry, text)
    io.write_text(params_path, text)
    record_valid(profile, ProfilePaths(name, params_path.resolve().parent))
    return models


def record_valid(profile: ProfileConfig, paths: ProfilePaths) -> None:
    """Write the marker of the `validate` DVC stage. Its content depends only on the profile's
    name and models, so a parameter change that passes validation does not rerun `prepare`."""
    io.write_json(paths.validated, {"profile": profile.name,
                                    "models": [e.model for e in profile.experiments]})


def run_stage(name: str, profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> float:
    """Run stage `name` on `profile` scoped to the parameters it declares, and record its
    wall-clock seconds in its timing file (`ProfilePaths.timing`); return the seconds.

    A per-model stage runs each of the profile's models in turn, each on a profile holding only
    that model and writing only that model's outputs, and records each model's seconds."""
    stage = get_stage(name)
    units = ([(dataclasses.replace(profile, experiments=(exp,)), paths.for_model(exp.model))
              for exp in profile.experiments] if stage.per_model else [(profile, paths)])
    total = 0.0
    for unit_profile, unit_paths in units:
        start = time.perf_counter()
        stage.function()(scoped(unit_profile, stage.params, stage.name), unit_paths,
                         progress=progress)
        seconds = time.perf_counter() - start
        io.write_json(unit_paths.timing(name), {"stage": name, "model": unit_paths.model,
                                                "seconds": round(seconds, 3),
                                                "machine": machine_info()})
        total += seconds
    return total
