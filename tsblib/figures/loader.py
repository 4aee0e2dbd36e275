"""The results of a profile as the figures read them: every results file of results/<profile>/
loaded once (`load_results`), with the configuration and claims beside them."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd


RESULT_FILES = {
    "summary": "summary.csv",
    "ablations": "ablations.csv",
    "training": "training.csv",
    "recipes": "recipes.csv",
    "tsb_lr": "tsb_lr.csv",
    "mapping": "mapping.csv",
    "overhead": "overhead.csv",
    "claims": "claims.json",
    "provenance": "provenance.json",
    "robustness": "robustness.csv",
}
"""Attribute of `Results` -> file under results/<profile>/ it is read from."""


OPTIONAL_FILES = {
    "recipes": ["model", "method", "candidate", "recipe", "epoch", "loss",
                "val_clean_acc", "val_chip_acc_mean", "val_chip_acc_ci95", "selected"],
    "tsb_lr": ["model", "width", "lr", "sigma", "chips", "val_acc_mean", "val_acc_ci95",
               "selected"],
    "robustness": ["model", "scenario", "device_model", "time_s", "compensation", "method",
                   "sigma", "chips", "clean_acc", "acc_mean", "acc_std", "acc_ci95", "gap_own",
                   "acc_p01", "acc_p05", "acc_p50", "yield_1pt", "yield_2pt", "wv_fraction",
                   "mapping_time_s", "mapping_energy_j", "convention"],
}
"""Files that may be absent (the demo skips the validation sweeps; a single TSB learning rate
has no evidence rows; the robustness stage may be left unrun): attribute -> columns of the empty
frame read in their place."""


@dataclass
class Results:
    """Everything the figure notebooks read from one profile's results folder."""

    profile: str
    """Profile name (results/<profile>/)."""
    results_dir: Path
    """Folder the files were read from."""
    summary: pd.DataFrame
    """summary.csv: one row per (model, method, swim p, sigma)."""
    ablations: pd.DataFrame
    """ablations.csv: TSB variants and the block-less backbone at the operating sigma."""
    training: pd.DataFrame
    """training.csv: per-epoch validation curves of every training run (deployed epoch marked)."""
    recipes: pd.DataFrame
    """recipes.csv: the validation sweeps (NIT recipes, NFT betas); empty when absent."""
    tsb_lr: pd.DataFrame
    """tsb_lr.csv: validation accuracy of each TSB fine-tuning learning rate; may be empty."""
    mapping: pd.DataFrame
    """mapping.csv: expected mapping cost of every deployment plan and sigma."""
    overhead: pd.DataFrame
    """overhead.csv: weights and MACs added by the block."""
    claims: dict[str, Any]
    """claims.json: the headline claims, measured per model."""
    provenance: dict[str, Any]
    """provenance.json: the profile's configuration, data sources and machine."""
    robustness: pd.DataFrame = None  # type: ignore[assignment]
    """robustness.csv: every deployment under device models beyond the Gaussian; may be empty."""

    @property
    def models(self) -> list[str]:
        """Models of the profile, in summary.csv order."""
        return list(dict.fromkeys(self.summary["model"]))

    @property
    def convention(self) -> str:
        """The device-variation convention ('device_range' or 'level_step')."""
        cfg = self.provenance.get("config", {})
        return str(cfg.get("device", {}).get("convention") or self.claims.get("convention")
                   or self.summary["convention"].iloc[0])

    def experiment(self, model: str) -> dict[str, Any]:
        """The profile configuration of `model` (an entry of config['experiments'])."""
        for exp in self.provenance.get("config", {}).get("experiments", []):
            if exp.get("model") == model:
                return exp
        return {}

    def claims_of(self, model: str) -> dict[str, Any]:
        """claims.json's entry of `model` (empty when it has none)."""
        return self.claims.get("models", {}).get(model, {})

    def operating_sigma(self, model: str) -> float:
        """The sigma at which `model`'s claims are measured."""
        entry = self.claims_of(model)
        if entry and "operating_sigma" in entry:
            return float(entry["operating_sigma"])
        return float(self.experiment(model)["evaluation"]["operating_sigma"])

    def sigma_train(self, model: str) -> float:
        """The training sigma (the validation curves are measured on chips at it)."""
        train = self.experiment(model).get("train", {})
        return float(train.get("sigma_train", self.operating_sigma(model)))

    def method_params(self, model: str, method: str) -> dict[str, Any]:
        """`methods.params.<method>` of `model`'s configuration (empty when absent)."""
        return self.experiment(model).get("methods", {}).get("params", {}).get(method) or {}

    def swim_default_p(self, model: str) -> float:
        """The SWIM write-verify percentage drawn in the sigma sweep."""
        p = self.method_params(model, "swim").get("default_p")
        if p is not None:
            return float(p)
        swim = self.summary[(self.summary["model"] == model) & (self.summary["method"] == "swim")]
        counts = swim.groupby("swim_p_percent")["sigma"].nunique()
        return float(counts.idxmax()) if len(counts) else float("nan")

    def strongest_baseline(self, model: str) -> str | None:
        """The most accurate baseline without write-verify at the operating sigma (claims.json)."""
        return self.claims_of(model).get("strongest_baseline")

    def dataset_name(self, model: str) -> str:
        """Name of `model`'s data set (e.g. 'mnist-embedded')."""
        data = self.provenance.get("data", {}).get(model, {})
        if data.get("name"):
            return str(data["name"])
        rows = self.summary[self.summary["model"] == model]
        return str(rows["dataset"].iloc[0]) if len(rows) else "unknown data"


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


def _read_csv(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, keep_default_na=True)
    if "selected" in frame.columns:  # the strings True/False (bool already when pandas sees both)
        frame["selected"] = frame["selected"].astype(str).str.strip().str.lower() == "true"
    return frame


def load_results(profile: str, results_dir: str | os.PathLike | None = None) -> Results:
    """Read results/<profile>/ (or `results_dir`) into a `Results`; a missing file raises
    FileNotFoundError naming it and the command that produces it (the optional files of
    `OPTIONAL_FILES` are read as empty frames instead)."""
    folder = _resolve_results_dir(profile, results_dir)
    loaded: dict[str, Any] = {}
    for attr, name in RESULT_FILES.items():
        path = folder / name
        if not path.is_file():
            if attr in OPTIONAL_FILES:
                loaded[attr] = pd.DataFrame(columns=OPTIONAL_FILES[attr])
                continue
            raise FileNotFoundError(
                f"{path} not found: the results of profile '{profile}' are missing or incomplete; "
                f"run `dvc repro` (or `python -m tsblib all --profile {profile}`) first")
        if name.endswith(".json"):
            loaded[attr] = json.loads(path.read_text())
        else:
            loaded[attr] = _read_csv(path)
    return Results(profile=profile, results_dir=folder, **loaded)
