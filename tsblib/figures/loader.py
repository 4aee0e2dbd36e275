"""The results of a profile as the figures read them: every results file of results/<profile>/
loaded once (`load_results`), checked against the results schema (`tsblib.schema`), with the
profile's typed configuration (`tsblib.config.ProfileConfig`, parsed from provenance.json) and
its claims beside them.

Nothing here guesses: a table without a column of the schema, a claims.json or provenance.json
without a key the figures read, or a configuration that does not parse, stops `load_results`
with a `ResultsSchemaError` naming the file, what is missing and the command that rewrites it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from tsblib import schema
from tsblib.config import ConfigError, ExperimentConfig, ProfileConfig
from tsblib.profiles import profile_from_record


TABLES: dict[str, schema.Table] = {
    "summary": schema.SUMMARY,
    "ablations": schema.ABLATIONS,
    "training": schema.TRAINING,
    "recipes": schema.RECIPES,
    "tsb_lr": schema.TSB_LR,
    "mapping": schema.MAPPING,
    "overhead": schema.OVERHEAD,
    "flops": schema.FLOPS,
    "robustness": schema.ROBUSTNESS,
}
"""Attribute of `Results` -> the results table (`tsblib.schema`) under results/<profile>/ it is
read from; an absent `optional` table reads as an empty frame with its `result_columns`."""

JSON_FILES: dict[str, str] = {"claims": schema.CLAIMS_FILE, "provenance": schema.PROVENANCE_FILE}
"""Attribute of `Results` -> JSON file under results/<profile>/ it is read from."""

RESULT_FILES: dict[str, str] = {**{attr: t.name for attr, t in TABLES.items()}, **JSON_FILES}
"""Attribute of `Results` -> file under results/<profile>/ it is read from (the figure stages'
dependencies)."""


CLAIMS_KEYS = ("convention", "models")
"""Keys of claims.json the figures read."""

MODEL_CLAIMS_KEYS = ("operating_sigma", "chips_baseline", "chips_tsb", "paired_chips", "tsb",
                     "strongest_baseline", "per_baseline", "loses_to", "frontier", "trajectory",
                     "seed_spread", "selection") + tuple(c.key for c in schema.CLAIMS)
"""Keys of each model's entry of claims.json (`models.<model>`) the figures read: every claim
of `schema.CLAIMS` and what is reported beside them (`seed_spread` is null without extra
training seeds)."""

CLAIM_KEYS = ("measured", "unbounded", "paper_claim", "paper_wording", "meets_claim",
              "verdict_reason", "definition")
"""Keys of every claim entry (`tsblib.verdicts`); a claim the data cannot decide holds null
values under them, never fewer keys."""

CLAIM_EXTRA_KEYS: dict[str, tuple[str, ...]] = {
    **{c.key: ("baseline", "interval95") for c in schema.CLAIMS if c.key.startswith("gap_")},
    "training_speedup": ("tsb_backbone_epochs", "tsb_backbone_flops", "tsb_finetune_images",
                         "tsb_finetune_passes", "tsb_finetune_flops_per_chip",
                         "tsb_flops_one_chip", "nit_flops_per_epoch", "nit_schedule_epochs",
                         "amortised_chips", "selected_epoch_ratio"),
    "wv_fraction_percent": ("chosen_width", "width_chosen_on_validation", "per_width"),
    "mapping_cost_reduction": ("equal_accuracy", "equal_accuracy_percent", "full_wv_ratio"),
}
"""Further keys of a claim entry the figures read. The training speed-up's `equal_accuracy`,
`amortised` and `note` are not among them: results without the per-epoch trajectory have a
`note` instead of the other two."""

PROVENANCE_KEYS = ("config", "data")
"""Keys of provenance.json the figures read: the profile's configuration and, per model, its
data set (`data.<model>.name`)."""


class ResultsSchemaError(ValueError):
    """A results file lacks a column or key of the results schema (or has a column the schema
    does not name); the message names the file, what is missing and the command that rewrites
    it."""


def _fix(profile: str, stage: str = "summarize") -> str:
    rerun = f"rerun `dvc repro summarize` (or `python -m tsblib summarize --profile {profile}`)"
    if stage != "summarize":
        rerun += (f"; if the per-model tables lack it too, rerun the stage that writes it first: "
                  f"`dvc repro {stage}`")
    return rerun


@dataclass
class Results:
    """Everything the figure notebooks read from one profile's results folder."""

    profile: str
    """Profile name (results/<profile>/)."""
    results_dir: Path
    """Folder the files were read from."""
    config: ProfileConfig
    """The profile's configuration the results were made with (provenance.json `config`,
    parsed and validated as params.yaml is: `tsblib.profiles.profile_from_record`)."""
    summary: pd.DataFrame
    """summary.csv: one row per (model, method, swim p, sigma)."""
    ablations: pd.DataFrame
    """ablations.csv: TSB variants and the block-less backbone at the operating sigma."""
    training: pd.DataFrame
    """training.csv: per-epoch validation curves of every training run (deployed epoch marked)."""
    recipes: pd.DataFrame
    """recipes.csv: the validation sweeps (NIT recipes, NFT betas); empty when absent."""
    tsb_lr: pd.DataFrame
    """tsb_lr.csv: validation accuracy of each TSB block width, learning rate and epochs; no rows
    when nothing was searched."""
    mapping: pd.DataFrame
    """mapping.csv: expected mapping cost of every deployment plan and sigma."""
    overhead: pd.DataFrame
    """overhead.csv: weights and MACs added by the block."""
    flops: pd.DataFrame
    """flops.csv: every training run's FLOPs per epoch."""
    claims: dict[str, Any]
    """claims.json: the headline claims, measured per model."""
    provenance: dict[str, Any]
    """provenance.json: the profile's configuration (typed in `config`), data sources and
    machine."""
    robustness: pd.DataFrame
    """robustness.csv: every deployment under device models beyond the Gaussian; empty when the
    robustness stage was not run."""

    @property
    def models(self) -> list[str]:
        """Models of the profile, in summary.csv order."""
        return list(dict.fromkeys(self.summary["model"]))

    @property
    def convention(self) -> str:
        """The device-variation convention ('device_range' or 'level_step')."""
        return self.config.device.convention.value

    def experiment(self, model: str) -> ExperimentConfig:
        """The configuration of `model`'s experiment."""
        return self.config.experiment(model)

    def claims_of(self, model: str) -> dict[str, Any]:
        """claims.json's entry of `model`."""
        return self.claims["models"][model]

    def operating_sigma(self, model: str) -> float:
        """The sigma at which `model`'s claims are measured."""
        return self.experiment(model).evaluation.operating_sigma

    def sigma_train(self, model: str) -> float:
        """The training sigma (the validation curves are measured on chips at it)."""
        return self.experiment(model).train.sigma_train

    def swim_default_p(self, model: str) -> float:
        """The SWIM write-verify percentage drawn in the sigma sweep."""
        return self.experiment(model).methods.of("swim").default_p

    def strongest_baseline(self, model: str) -> str:
        """The most accurate baseline without write-verify at the operating sigma (claims.json)."""
        return self.claims_of(model)["strongest_baseline"]

    def dataset_name(self, model: str) -> str:
        """Name of `model`'s data set (e.g. 'mnist-embedded'; provenance.json `data`)."""
        return str(self.provenance["data"][model]["name"])


def repo_root() -> Path:
    """The repository root: the first folder at or above the working directory that holds
    params.yaml and tsblib/ (works from notebooks/ and from results/<profile>/notebooks/)."""
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "params.yaml").is_file() and (folder / "tsblib").is_dir():
            return folder
    raise FileNotFoundError(f"no folder holding params.yaml and tsblib/ at or above {here}; "
                            "run the notebook from inside the repository")


def _resolve_results_dir(profile: str, results_dir: str | os.PathLike | None) -> Path:
    """results/<profile> under the repository root, or `results_dir` when given."""
    if results_dir is None:
        return repo_root() / "results" / profile
    return Path(results_dir).expanduser()  # load_results reports what is missing there


def read_table(path: Path, table: schema.Table, profile: str) -> pd.DataFrame:
    """Results table `table` from `path`, its columns checked against the schema (its
    `result_columns`, in any order); `selected` read as booleans."""
    frame = pd.read_csv(path, keep_default_na=True)
    expected = table.result_columns
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        what = "; ".join(part for part in (
            f"lacks column(s) {missing}" if missing else "",
            f"has column(s) {extra} that the schema does not name" if extra else "") if part)
        raise ResultsSchemaError(
            f"{path} {what} (tsblib/schema.py {table.name}: {list(expected)}); it was written by "
            f"another version of tsblib: {_fix(profile, table.stage)}")
    if "selected" in frame.columns:  # the strings True/False (bool already when pandas sees both)
        frame["selected"] = frame["selected"].astype(str).str.strip().str.lower() == "true"
    return frame


def _require(mapping: Any, keys: tuple[str, ...], where: str, path: Path, profile: str) -> None:
    """Raise a ResultsSchemaError unless `mapping` (the part `where` of file `path`) is a
    mapping holding every key of `keys`."""
    if not isinstance(mapping, Mapping):
        raise ResultsSchemaError(f"{path}: {where} is not a mapping; {_fix(profile)}")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ResultsSchemaError(f"{path}: {where} lacks key(s) {missing}; it was written by "
                                 f"another version of tsblib: {_fix(profile)}")


def check_claims(claims: Any, models: list[str], path: Path, profile: str) -> None:
    """Every key of claims.json the figures read (`CLAIMS_KEYS`, `MODEL_CLAIMS_KEYS`,
    `CLAIM_KEYS`, `CLAIM_EXTRA_KEYS`), for every model of summary.csv."""
    _require(claims, CLAIMS_KEYS, "the top level", path, profile)
    _require(claims["models"], tuple(models), "'models'", path, profile)
    for model in models:
        entry = claims["models"][model]
        _require(entry, MODEL_CLAIMS_KEYS, f"models.{model}", path, profile)
        for claim in schema.CLAIMS:
            _require(entry[claim.key], CLAIM_KEYS + CLAIM_EXTRA_KEYS.get(claim.key, ()),
                     f"models.{model}.{claim.key}", path, profile)
        _require(entry["selection"], ("tsb_settings",), f"models.{model}.selection", path,
                 profile)


def check_provenance(provenance: Any, models: list[str], path: Path, profile: str) -> None:
    """Every key of provenance.json the figures read (`PROVENANCE_KEYS`; a data set name per
    model of summary.csv)."""
    _require(provenance, PROVENANCE_KEYS, "the top level", path, profile)
    _require(provenance["data"], tuple(models), "'data'", path, profile)
    for model in models:
        _require(provenance["data"][model], ("name",), f"data.{model}", path, profile)


def parse_config(provenance: dict[str, Any], models: list[str], path: Path,
                 profile: str) -> ProfileConfig:
    """provenance.json's `config` as the typed, validated `ProfileConfig`
    (`tsblib.profiles.profile_from_record`), with an experiment for every model of summary.csv."""
    config = provenance["config"]
    if not isinstance(config, dict):
        raise ResultsSchemaError(f"{path}: 'config' is not a mapping; {_fix(profile)}")
    try:
        parsed = profile_from_record(config)
        for model in models:
            parsed.experiment(model)
    except ConfigError as exc:
        raise ResultsSchemaError(f"{path}: its 'config' is not a valid profile configuration "
                                 f"of this tsblib ({exc}); {_fix(profile)}") from None
    return parsed


def load_results(profile: str, results_dir: str | os.PathLike | None = None) -> Results:
    """Read results/<profile>/ (or `results_dir`) into a `Results`; a missing file raises
    FileNotFoundError naming it and the command that produces it (an absent `optional` table of
    the schema reads as an empty frame with its columns instead), and a file without a column
    or key the figures read raises a `ResultsSchemaError`."""
    folder = _resolve_results_dir(profile, results_dir)
    loaded: dict[str, Any] = {}
    for attr, name in RESULT_FILES.items():
        path = folder / name
        table = TABLES.get(attr)
        if not path.is_file():
            if table is not None and table.optional:
                loaded[attr] = pd.DataFrame(columns=list(table.result_columns))
                continue
            raise FileNotFoundError(
                f"{path} not found: the results of profile '{profile}' are missing or incomplete; "
                f"run `dvc repro` (or `python -m tsblib all --profile {profile}`) first")
        if table is None:
            loaded[attr] = json.loads(path.read_text())
        else:
            loaded[attr] = read_table(path, table, profile)
    models = list(dict.fromkeys(loaded["summary"]["model"]))
    check_claims(loaded["claims"], models, folder / schema.CLAIMS_FILE, profile)
    provenance_path = folder / schema.PROVENANCE_FILE
    check_provenance(loaded["provenance"], models, provenance_path, profile)
    config = parse_config(loaded["provenance"], models, provenance_path, profile)
    return Results(profile=profile, results_dir=folder, config=config, **loaded)
