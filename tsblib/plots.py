"""Figures and conclusion tables of the six figure notebooks (DESIGN.md section 7), read from results/<profile>/.
The notebooks only call these functions, so every figure and number can be rebuilt and tested without Jupyter.
Method names, colours, markers and order come from the method registry (`tsblib.methods.registry`)."""
from __future__ import annotations

import copy
import functools
import html
import json
import math
import os
import re
import tempfile
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import matplotlib
import matplotlib.lines
import matplotlib.ticker
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from tqdm import TqdmWarning

with warnings.catch_warnings():
    # The method modules (loaded by the registry) import tqdm.auto, which warns once, on first
    # import, inside a notebook kernel without ipywidgets. The figure notebooks show no progress
    # bar, and the warning (naming the site-packages path) would land in every executed notebook.
    warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
    import tqdm.auto

from tsblib.headline import (interval_text, measured_text, ratio_number, ratio_text,
                              verdict_text)
from tsblib.methods import registry

# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

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

MODEL_LABELS = {"lenet3": "LeNet-3", "vgg8": "VGG-8", "resnet18": "ResNet-18"}
"""Readable model names."""

CONVENTION_LABELS = {
    "device_range": "sigma relative to device range",
    "level_step": "sigma relative to one level step",
}
"""How each device-variation convention (DESIGN.md section 2) is written on figures."""

ABLATION_LABELS = {
    "width": "block width c",
    "placement": "block placement",
    "sharing": "sharing",
    "mode": "fine-tuning mode",
    "read_noise": "read-back noise sigma_read",
    "no_block": "no block (backbone alone)",
}
"""Titles of the ablation families in ablations.csv."""

_ABLATION_DEFAULT_KEY = {"width": "width", "placement": "placement", "sharing": "sharing",
                         "mode": "mode", "read_noise": "sigma_read"}

CLAIM_LABELS = {
    "gap_improvement_ideal": "accuracy-gap improvement (ideal gap, the headline)",
    "gap_improvement_own": "accuracy-gap improvement (own gap, second reading)",
    "gap_improvement_ideal_vs_strongest": "accuracy-gap improvement (ideal gap), strongest baseline",
    "gap_improvement_own_vs_strongest": "accuracy-gap improvement (own gap), strongest baseline",
    "training_speedup": "training speed-up at equal accuracy (FLOPs, 1 chip)",
    "wv_fraction_percent": "write-verified weights (%)",
    "mapping_cost_reduction": "mapping-cost reduction at equal accuracy (time)",
}
"""The headline claims of the paper, in the order of its abstract (the gap claim against NIT, the
paper's comparison, and against the most accurate baseline without write-verify), each read at
equal accuracy on paired chips (DESIGN section 6)."""

_CLAIM_UNITS = {"gap_improvement_own": "x", "gap_improvement_ideal": "x",
                "gap_improvement_own_vs_strongest": "x", "gap_improvement_ideal_vs_strongest": "x",
                "training_speedup": "x", "wv_fraction_percent": " %", "mapping_cost_reduction": "x"}

VARIED_COLOUR = sns.color_palette("tab10")[0]
"""Colour of the varied (non-default) settings in the ablation figure."""


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


# --------------------------------------------------------------------------------------------
# Captions and styling
# --------------------------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def _styled(fn: F) -> F:
    """Draw inside seaborn's whitegrid style and notebook context, leaving global state alone."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=1.0):
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def _chips_text(results: Results, model: str) -> str:
    entry = results.claims_of(model)
    base, tsb = entry.get("chips_baseline"), entry.get("chips_tsb")
    if base is None or tsb is None:
        rows = results.summary[(results.summary["model"] == model) & (results.summary["sigma"] > 0)]
        base = int(rows[~rows["method"].str.startswith("tsb")]["chips"].max()) if len(rows) else None
        tsb_rows = rows[rows["method"].str.startswith("tsb")]
        tsb = int(tsb_rows["chips"].max()) if len(tsb_rows) else None
    if tsb is None or tsb == base:
        text = f"{base} chips per point"
    else:
        text = f"{base} chips per point (TSB and its variants: {tsb}, the first {tsb} of them)"
    return text + _budget_text(results, model)


def _budget_text(results: Results, model: str) -> str:
    """The per-chip data budget of the per-chip methods (claims.json, the configuration), or ''."""
    speed = results.claims_of(model).get("training_speedup", {})
    images, passes = speed.get("tsb_finetune_images"), speed.get("tsb_finetune_passes")
    if images is None or passes is None:
        return ""
    recal = (results.experiment(model).get("methods", {}).get("params", {})
             .get("nit_bnrecal", {}).get("images"))
    return (f"; per chip: block fine-tuning on {images} training images x {passes} passes"
            + (f", BN recalibration on {recal} images" if recal else ""))


def device_model_text(device: dict[str, Any]) -> str:
    """'<models> device error, ' from a profile's device block (provenance config), or ''."""
    models = device.get("model") or device.get("noise_model")
    if not models:
        return ""
    names = [models] if isinstance(models, str) else list(models)
    return f"{'+'.join(names)} device error, "


def caption(results: Results, model: str | None = None) -> str:
    """One line for the bottom of a figure: device-variation convention, data source, chips per
    point, what the shading means, and that these are our measurements, not the paper's."""
    models = [model] if model is not None else results.models
    conv = CONVENTION_LABELS.get(results.convention, f"sigma convention '{results.convention}'")
    dev = results.provenance.get("config", {}).get("device", {})
    bits = ""
    if dev.get("weight_bits") and dev.get("device_bits"):
        bits = f"{dev['weight_bits']}-bit weights on {dev['device_bits']}-bit devices, "
    bits += device_model_text(dev)
    parts = []
    for m in models:
        parts.append(f"{MODEL_LABELS.get(m, m)} on {results.dataset_name(m)}, {_chips_text(results, m)}")
    return (f"Device model: {bits}{conv}. Data: {'; '.join(parts)}. shaded: 95 % CI (bands and error bars). "
            f"Profile '{results.profile}': our measurements under our reading of TSB "
            f"(DESIGN.md s.3), not the paper's numbers.")


def _finish(fig: Figure, results: Results, right: float = 1.0,
            legend: tuple[list, list, int] | None = None, note: str = "",
            caption_text: str | None = None) -> None:
    """Add the caption (after `note`, if any; `caption_text` instead of the profile's caption)
    at the bottom of `fig` (and, if given, a legend of (handles, labels, columns) just above it)
    and lay the panels out above both."""
    width_in, height_in = fig.get_size_inches()
    text = textwrap.fill((note + " " if note else "") + (caption_text or caption(results)),
                         width=max(60, int(width_in * 14)))
    lines = text.count("\n") + 1
    fig.text(0.01, 0.01, text, ha="left", va="bottom", fontsize=8.5, color="0.25")
    bottom_in = 0.2 + 0.16 * lines
    if legend is not None:
        handles, labels, ncol = legend
        rows = math.ceil(len(labels) / ncol)
        fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=9.5, frameon=True,
                   bbox_to_anchor=(0.5, bottom_in / height_in))
        bottom_in += 0.27 * rows + 0.1
    fig.tight_layout(rect=(0, bottom_in / height_in, right, 1))


def method_label(method: str, results: Results | None = None, model: str | None = None,
                 swim_p: float | None = None) -> str:
    """Readable name of a method or extra results row (registry), SWIM with its percentage."""
    text = registry.label(method)
    if method == "swim":
        p = swim_p if swim_p is not None else (
            results.swim_default_p(model) if results is not None and model is not None else None)
        if p is not None and not (isinstance(p, float) and math.isnan(p)):
            text += f" p={p:g} %"
    return text


def _style(method: str) -> tuple[Any, str]:
    return registry.style(method)


def method_order() -> list[str]:
    """Every registered method in figure order, then the block-less TSB backbone rows."""
    return [s.name for s in registry.ordered()] + ["tsb_backbone_only", "tsb_backbone_bnrecal"]


def _rows_at(results: Results, model: str, sigma: float) -> pd.DataFrame:
    s = results.summary
    return s[(s["model"] == model) & np.isclose(s["sigma"], sigma)]


def _method_row(results: Results, model: str, method: str, sigma: float,
                swim_p: float | None = None) -> pd.Series | None:
    rows = _rows_at(results, model, sigma)
    rows = rows[rows["method"] == method]
    if method == "swim":
        p = results.swim_default_p(model) if swim_p is None else swim_p
        rows = rows[np.isclose(rows["swim_p_percent"], p)]
    return rows.iloc[0] if len(rows) else None


def _deployed_methods(results: Results, model: str, sigma: float) -> list[str]:
    """Registered methods (not the block-less backbone rows) with a row at `sigma`, in order."""
    present = set(_rows_at(results, model, sigma)["method"])
    return [s.name for s in registry.ordered() if s.name in present]


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or (
        not isinstance(x, str) and pd.isna(x))


def _ci(x: Any) -> float:
    """A CI half-width for drawing: 0 where there is none (one chip, e.g. TSB at sigma = 0)."""
    return 0.0 if _missing(x) else float(x)


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def _single_chip_note(results: Results) -> str:
    """A sentence for rows measured on one chip (TSB at sigma = 0: backbone plus block,
    noise-free), which have no confidence interval; empty when there are none."""
    s = results.summary
    drawn = [spec.name for spec in registry.ordered()]
    one = s[(s["chips"] == 1) & s["acc_ci95"].isna() & s["method"].isin(drawn)]
    if one.empty:
        return ""
    names = ", ".join(dict.fromkeys(method_label(m) for m in one["method"]))
    sigmas = ", ".join(f"{x:g}" for x in sorted(set(one["sigma"])))
    return (f"{names} at sigma = {sigmas}: one noise-free chip (backbone plus block), so no "
            f"confidence band there.")


@_styled
def fig_accuracy_vs_sigma(results: Results) -> Figure:
    """Mean accuracy on chips vs device variation sigma, one panel per model, every method of the
    full sweep (SWIM at its default p), shaded 95 % confidence bands; dotted line: operating sigma."""
    models = results.models
    ncols = min(len(models), 3)
    nrows = math.ceil(len(models) / ncols)
    panel_w = 7.5 if ncols == 1 else 6.5
    fig, grid = plt.subplots(nrows, ncols, figsize=(panel_w * ncols + 3.8, 4.8 * nrows + 0.9),
                             squeeze=False)
    axes = grid.ravel()
    for ax in axes[len(models):]:
        fig.delaxes(ax)
    s = results.summary
    handles: dict[str, Any] = {}
    for ax, model in zip(axes, models):
        rows = s[s["model"] == model]
        for spec in registry.ordered():
            method = spec.name
            sub = rows[rows["method"] == method]
            if method == "swim":
                sub = sub[np.isclose(sub["swim_p_percent"], results.swim_default_p(model))]
            if sub["sigma"].nunique() < 2:
                continue
            sub = sub.sort_values("sigma")
            colour, marker = _style(method)
            main = method == "tsb"
            ci = sub["acc_ci95"].map(_ci)
            (line,) = ax.plot(sub["sigma"], sub["acc_mean"], marker=marker, color=colour,
                              lw=2.8 if main else 1.6, ms=10 if main else 6,
                              label=method_label(method, results, model), zorder=3 if main else 2)
            handles.setdefault(line.get_label(), line)
            ax.fill_between(sub["sigma"], sub["acc_mean"] - ci, sub["acc_mean"] + ci,
                            color=colour, alpha=0.15, lw=0)
        op = results.operating_sigma(model)
        ax.axvline(op, color="0.3", ls=":", lw=1.2)
        right_half = op > 0.5 * (rows["sigma"].min() + rows["sigma"].max())
        ax.annotate(f"operating sigma = {op:g}", xy=(op, 0.02), xycoords=("data", "axes fraction"),
                    xytext=(-4 if right_half else 4, 0), textcoords="offset points", fontsize=9,
                    color="0.3", ha="right" if right_half else "left")
        ax.set_xlabel(f"device variation sigma ({CONVENTION_LABELS.get(results.convention, results.convention)})")
        ax.set_ylabel("mean accuracy on chips (test split)")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{MODEL_LABELS.get(model, model)} on {results.dataset_name(model)}")
    fig.legend(list(handles.values()), list(handles), loc="center right", frameon=True,
               fontsize=10, title="method", title_fontsize=10)
    fig.suptitle("Accuracy under device variation (mean over chips, 95 % CI)", fontsize=14)
    _finish(fig, results, right=1 - 3.8 / fig.get_size_inches()[0], note=_single_chip_note(results))
    return fig


def _improvement(base_gap: float, tsb_gap: float) -> str:
    """Baseline gap / TSB gap as text; a ratio with a gap <= 0 is not meaningful and is named."""
    if tsb_gap <= 0:
        return "TSB gap <= 0" if base_gap > 0 else "both gaps <= 0"
    if base_gap <= 0:
        return "gap <= 0, no ratio"
    return f"{ratio_number(base_gap / tsb_gap)}x"


_VERDICT_COLOURS = {"pass": "#d9f0d3", "falls short": "#f4cccc", "undecided": "#eeeeee"}


def _claims_rows(results: Results, model: str) -> list[dict[str, str]]:
    """The headline claims of `model` as strings (see `claims_table`)."""
    entry = results.claims_of(model)
    rows = []
    for key, label in CLAIM_LABELS.items():
        c = entry.get(key)
        if c is None:
            continue
        unit = _CLAIM_UNITS[key]
        op, _, thr = c["paper_claim"].partition(" ")
        paper = f"{op} {float(thr):g}{unit.strip() if unit == 'x' else unit}"
        measured = measured_text(key, c)
        baseline = c.get("baseline")
        if key.startswith("gap"):
            against = method_label(baseline, results, model) if baseline else "-"
            if key.endswith("_vs_strongest"):
                against += " (most accurate without write-verify)"
        elif key == "training_speedup":
            against = "NIT on the same chips (FLOPs to first reach TSB's accuracy)"
        elif key == "mapping_cost_reduction":
            against = "the cheapest selective write-verify as accurate as TSB"
        else:
            against = "the backbone's weights, at the width chosen on validation"
        beside = ""
        if key == "training_speedup":
            am = (c.get("amortised") or {}).get("measured")
            beside = (c.get("note") or f"amortised over {c.get('amortised_chips', '?')} chips: "
                      f"{ratio_text(am)}; at NIT's selected epoch: "
                      f"{ratio_text(c.get('selected_epoch_ratio'))} (capped by the early fraction)")
        elif key == "mapping_cost_reduction":
            p = c.get("equal_accuracy_percent")
            beside = ((f"SWIM reaches TSB at {p:.2g} % verified" if p is not None else
                       "no write-verify setting reaches TSB") +
                      f"; vs full write-verify {ratio_text(c.get('full_wv_ratio'))}")
        elif key == "wv_fraction_percent":
            beside = "; ".join(f"{p['setting']}: {p['wv_percent']:.3g} %, acc {p['acc_mean']:.3f}"
                               for p in c.get("per_width", []))
        elif key.startswith("gap"):
            beside = (f"paired bootstrap over {c.get('interval95', {}).get('chips', '?')} chips; "
                      "pass needs its lower end above the claim")
        rows.append({"claim": label, "model": MODEL_LABELS.get(model, model),
                     "compared with": against, "paper's claim": paper,
                     "our measured value [95 % interval]": measured,
                     "meets?": verdict_text(c.get("meets_claim"), c.get("verdict_reason")),
                     "beside it": beside})
    return rows


def _draw_claims(ax: Any, results: Results, model: str) -> None:
    """The claims table of `model` drawn into `ax` (axis hidden), verdicts coloured."""
    ax.axis("off")
    rows = _claims_rows(results, model)
    if not rows:
        ax.text(0.5, 0.5, "no claims measured", ha="center", va="center", transform=ax.transAxes)
        return
    cols = ["claim", "compared with", "paper's claim", "our measured value [95 % interval]", "meets?"]
    wrap = {"claim": 40, "compared with": 40, "meets?": 26}
    cells = [[textwrap.fill(str(r[c]), wrap.get(c, 40)) for c in cols] for r in rows]
    # bbox: the table fills its axes (rows keep their relative heights), so it stays below the
    # axes title instead of growing over it
    table = ax.table(cellText=cells, colLabels=cols, cellLoc="left",
                     colWidths=[0.26, 0.27, 0.08, 0.22, 0.17], bbox=[0, 0, 1, 1])
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    for (i, j), cell in table.get_celld().items():
        n_lines = max(cells[i - 1][k].count("\n") + 1 for k in range(len(cols))) if i > 0 else 1
        cell.set_height(0.055 * n_lines + 0.03)
        if i == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("#e8e8e8")
        elif j == len(cols) - 1:
            verdict = rows[i - 1]["meets?"]
            cell.set_facecolor(_VERDICT_COLOURS.get(verdict.split(" (")[0], "white"))
    ax.set_title(f"{MODEL_LABELS.get(model, model)}: the paper's headline claims against our "
                 "measurement (gap ratios: pass only when the 95 % interval's lower end clears "
                 "the claim)", fontsize=11)


@_styled
def fig_accuracy_gap(results: Results) -> Figure:
    """Accuracy gap of each method at the operating sigma under both definitions (own: the
    deployed model's noise-free accuracy minus its accuracy on chips, TSB's reference being
    backbone plus block at sigma = 0; ideal: the clean-trained model's accuracy minus it), each
    baseline's gap divided by TSB's with its 95 % bootstrap interval, and the claims table."""
    models = results.models
    n_claims = {m: len(_claims_rows(results, m)) for m in models}
    bars_h = {m: 1.0 + 0.42 * (len(_deployed_methods(results, m, results.operating_sigma(m))) + 1)
              for m in models}
    table_h = {m: 0.9 + 0.36 * (n_claims[m] + 1) for m in models}
    ratios = [h for m in models for h in (bars_h[m], table_h[m])]
    fig = plt.figure(figsize=(17, sum(ratios) + 1.6))
    grid = fig.add_gridspec(2 * len(models), 2, height_ratios=ratios)
    for row, model in enumerate(models):
        sigma = results.operating_sigma(model)
        entry = results.claims_of(model)
        per_baseline = entry.get("per_baseline", {})
        strongest = results.strongest_baseline(model)
        methods = _deployed_methods(results, model, sigma)
        methods = [m for m in methods if m != "tsb"] + (["tsb"] if "tsb" in methods else [])
        data = [_method_row(results, model, m, sigma) for m in methods]
        tsb = _method_row(results, model, "tsb", sigma)
        titles = [("gap_own", "improvement_own", "own gap: noise-free acc. of the deployed model - acc. on chips\n"
                   "(TSB's reference: backbone + block at sigma = 0)"),
                  ("gap_ideal", "improvement_ideal", "ideal gap: clean-trained model's acc. - acc. on chips\n"
                   "(the same reference for every method)")]
        for col, (kind, imp_key, title) in enumerate(titles):
            ax = fig.add_subplot(grid[2 * row, col])
            values = np.array([100 * d[kind] for d in data])
            errs = np.array([100 * _ci(d["acc_ci95"]) for d in data])
            y = np.arange(len(methods))
            ax.barh(y, values, xerr=errs, color=[_style(m)[0] for m in methods], alpha=0.85,
                    capsize=3, edgecolor="black", linewidth=[2.0 if m == "tsb" else 0.0 for m in methods])
            names = []
            for m in methods:
                name = method_label(m, results, model)
                if m == strongest:
                    name += "\n(strongest without write-verify)"
                names.append(name)
            ax.set_yticks(y, names if col == 0 else [])
            ax.axvline(0, color="0.2", lw=0.8)
            ax.invert_yaxis()
            lo = min(0.0, float(np.min(values - errs)))
            hi = max(1.0, float(np.max(values + errs)))
            ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.75 * (hi - lo))
            for yi, m, d, v, e in zip(y, methods, data, values, errs):
                text = f"{v:.1f}"
                if m == "tsb":
                    text += "  (TSB)"
                elif m in per_baseline and imp_key in per_baseline[m]:
                    text += f"  gap ratio {interval_text(per_baseline[m][imp_key])}"
                    d = per_baseline[m].get("tsb_minus_baseline")
                    if d and col == 1:
                        text += (f"; TSB - it {100 * d['mean']:+.1f} pts "
                                 f"[{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]")
                elif tsb is not None:
                    text += f"  gap ratio {_improvement(float(d[kind]), float(tsb[kind]))} (no interval)"
                ax.text(max(v + e, 0) + 0.01 * (hi - lo), yi, text, va="center", fontsize=10)
            ax.set_xlabel("accuracy gap (percentage points); error bars: 95 % CI of the mean on chips")
            ax.set_title(f"{MODEL_LABELS.get(model, model)}, sigma = {sigma:g}: {title}", fontsize=10.5)
        _draw_claims(fig.add_subplot(grid[2 * row + 1, :]), results, model)
    fig.suptitle("Accuracy gap at the operating point (shorter is better); gap ratio = baseline gap / "
                 "TSB gap [95 % paired bootstrap interval over chips];\nTSB - it = paired accuracy "
                 "difference on the same chips (points, 95 % interval); ideal gap is the headline",
                 fontsize=13)
    _finish(fig, results)
    return fig


def _early_epoch(results: Results, model: str) -> int:
    """The epoch of NIT's snapshot that TSB uses as its backbone."""
    c = results.claims_of(model).get("training_speedup", {})
    if c.get("tsb_backbone_epochs") is not None:
        return int(c["tsb_backbone_epochs"])
    row = _method_row(results, model, "tsb", results.operating_sigma(model))
    if row is not None and not pd.isna(row["train_epochs"]):
        return int(row["train_epochs"])
    exp = results.experiment(model)
    return max(1, math.ceil(exp["methods"]["tsb_early_fraction"] * exp["train"]["epochs"] - 1e-9))


def _finetune_epochs(results: Results, model: str) -> int:
    """Epochs of one chip's block fine-tuning."""
    c = results.claims_of(model).get("training_speedup", {})
    if c.get("tsb_finetune_passes") is not None:
        return int(c["tsb_finetune_passes"])
    return int(results.experiment(model).get("tsb", {}).get("epochs", 0))


@dataclass(frozen=True)
class _Point:
    """TSB after block fine-tuning, as drawn on the training-cost figure."""

    acc: float
    ci95: float
    chips: int
    sigma: float
    split: str
    """'validation' (tsb_lr.csv, the chosen learning rate) or 'test' (summary.csv)."""


def _tsb_end_point(results: Results, model: str) -> _Point | None:
    """TSB's accuracy after one chip's fine-tuning for the training-cost figure: the validation
    accuracy of the chosen learning rate (tsb_lr.csv) when there is one, else the test-split
    accuracy at sigma_train (or at the operating sigma when the sweep lacks sigma_train)."""
    lr = results.tsb_lr[(results.tsb_lr["model"] == model) & results.tsb_lr["selected"]]
    if len(lr):
        r = lr.iloc[0]
        return _Point(float(r["val_acc_mean"]), _ci(r["val_acc_ci95"]), int(r["chips"]),
                      float(r["sigma"]), "validation")
    for sigma in (results.sigma_train(model), results.operating_sigma(model)):
        row = _method_row(results, model, "tsb", sigma)
        if row is not None:
            return _Point(float(row["acc_mean"]), _ci(row["acc_ci95"]), int(row["chips"]), sigma, "test")
    return None


def _flops_per_epoch(results: Results, model: str, method: str) -> float | None:
    """Training FLOPs of one epoch of run `method` (summary.csv: FLOPs to its deployed epoch /
    that epoch; every epoch of a run costs the same); None when summary.csv lacks them."""
    row = _method_row(results, model, method, results.operating_sigma(model))
    if row is None or _missing(row.get("train_flops")) or _missing(row.get("train_epochs")):
        return None
    epochs = float(row["train_epochs"])
    return float(row["train_flops"]) / epochs if epochs > 0 else None


def _tsb_pipeline_flops(results: Results, model: str) -> float | None:
    """FLOPs of the TSB pipeline for one chip (backbone + one chip's fine-tuning at the images
    and passes used), from claims.json."""
    value = results.claims_of(model).get("training_speedup", {}).get("tsb_flops_one_chip")
    return None if _missing(value) else float(value)


def _speedup_box(c: dict[str, Any], results: Results, model: str) -> str:
    """The speed-up box of the training-cost figure: the equal-accuracy FLOPs ratio (the
    verdict), then the amortised ratio and the ratio at NIT's selected epoch (the wall-clock
    seconds depend on the machine's load and stay out of the figure)."""
    verdict = (f"-> {verdict_text(c.get('meets_claim'), c.get('verdict_reason'))} "
               f"(paper: {c.get('paper_claim', '> 5')}x)")
    lines = ["training speed-up at equal accuracy (1 chip):",
             f"  FLOPs: {measured_text('training_speedup', c)}",
             *textwrap.wrap(verdict, 56, initial_indent="  ", subsequent_indent="     ")]
    am = (c.get("amortised") or {}).get("measured")
    if am is not None:
        lines.append(f"  amortised over {c.get('amortised_chips', '?')} chips: {ratio_text(am)}")
    if c.get("selected_epoch_ratio") is not None:
        lines.append(f"  at NIT's selected epoch: {ratio_text(c['selected_epoch_ratio'])} (capped")
        lines.append("  by the fixed early fraction; not a verdict)")
    return "\n".join(lines)


def _draw_training_curves(ax_epochs: Any, ax_flops: Any, results: Results, model: str) -> None:
    """Validation accuracy on chips of every training run vs epochs and vs training FLOPs (not
    wall-clock seconds, which vary with the machine's load), the deployed epoch of each marked,
    NIT's early snapshot (the TSB backbone) and TSB after fine-tuning."""
    t = results.training[results.training["model"] == model].copy()
    per_epoch = {m: _flops_per_epoch(results, model, m) for m in set(t["method"])}
    t["flops"] = [e * per_epoch[m] if per_epoch[m] is not None else np.nan
                  for m, e in zip(t["method"], t["epoch"])]
    early = _early_epoch(results, model)
    ft_epochs = _finetune_epochs(results, model)
    sigma_train = results.sigma_train(model)
    tsb_row = _method_row(results, model, "tsb", results.operating_sigma(model))
    point = _tsb_end_point(results, model)
    tsb_colour = _style("tsb")[0]
    speed = results.claims_of(model).get("training_speedup", {})
    by_clean = [s.label for s in registry.ordered()
                if s.selects_epoch_on == "clean" and s.name in set(t["method"])]
    for ax, xkey in ((ax_epochs, "epoch"), (ax_flops, "flops")):
        for spec in registry.ordered():
            sub = t[t["method"] == spec.name].sort_values("epoch")
            if sub.empty or sub[xkey].isna().any():
                continue
            main = spec.name == "nit"
            ax.plot(sub[xkey], sub["val_chip_acc_mean"], color=spec.color, lw=2.2 if main else 1.2,
                    alpha=1.0 if main else 0.75, marker=spec.marker, ms=4 if main else 3,
                    label=spec.label, zorder=3 if main else 2)
            if main:
                ci = sub["val_chip_acc_ci95"].map(_ci)
                ax.fill_between(sub[xkey], sub["val_chip_acc_mean"] - ci,
                                sub["val_chip_acc_mean"] + ci, color=spec.color, alpha=0.15, lw=0)
                back = sub[sub["epoch"] <= early]
                ax.plot(back[xkey], back["val_chip_acc_mean"], color=tsb_colour, lw=6, alpha=0.4,
                        solid_capstyle="round", zorder=2, marker="o", ms=14, markevery=[len(back) - 1],
                        label=f"TSB backbone = NIT's snapshot at epoch {early}")
            chosen = sub[sub["selected"]]
            ax.plot(chosen[xkey], chosen["val_chip_acc_mean"], ls="", marker=spec.marker, ms=12,
                    color=spec.color, mec="black", mew=1.6, zorder=5)
        ax.plot([], [], ls="", marker="o", ms=11, mfc="white", mec="black", mew=1.6,
                label="deployed epoch of each run, chosen on validation"
                      + (f" ({', '.join(by_clean)}: on noise-free accuracy)" if by_clean else ""))
        x = early + ft_epochs if xkey == "epoch" else _tsb_pipeline_flops(results, model)
        if point is not None and tsb_row is not None and x is not None:
            start = t[(t["method"] == "nit") & (t["epoch"] == early)]
            if len(start) and not start[xkey].isna().any():
                ax.annotate("", xy=(x, point.acc), xytext=(start[xkey].iloc[0],
                                                           start["val_chip_acc_mean"].iloc[0]),
                            arrowprops=dict(arrowstyle="->", color=tsb_colour, lw=1.5, ls="--"))
            where = f"{point.split} split, {point.chips} chips"
            if not np.isclose(point.sigma, sigma_train):
                where += f", at sigma = {point.sigma:g}, not sigma_train"
            ax.errorbar([x], [point.acc], yerr=[point.ci95], fmt="*", color=tsb_colour, ms=18,
                        capsize=4, mec="black", zorder=6,
                        label=f"TSB after one chip's block fine-tuning ({where})")
        if xkey == "epoch":
            ax.set_xlabel(f"training epochs (TSB: {early} backbone + {ft_epochs} fine-tuning epochs "
                          "of one chip)")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        else:
            ax.set_xscale("log")  # NFT-OVF's four forwards per step put it far to the right
            ax.set_xlabel("training FLOPs, log scale (TSB: backbone + fine-tuning of one chip)")
        ax.set_ylabel(f"validation split: accuracy on chips,\nsigma_train = {sigma_train:g}")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{MODEL_LABELS.get(model, model)}: validation accuracy under variation vs "
                     f"{'epochs' if xkey == 'epoch' else 'training FLOPs'}", fontsize=11)
    if speed and not results.claims_of(model).get("trajectory"):  # else beside the trajectory
        ax_flops.text(0.98, 0.04, _speedup_box(speed, results, model), transform=ax_flops.transAxes,
                        ha="right", va="bottom", fontsize=9.5, family="monospace",
                        bbox=dict(boxstyle="round", fc="white", ec="0.6", alpha=0.92))


_SWEEP_COLOURS = sns.color_palette("Dark2")
_BETA_STYLES = ["-", "--", ":", "-."]


def _stated_candidate(results: Results, model: str, method: str) -> str | None:
    """The stated candidate of a sweep (claims selection; else the configuration)."""
    stated = results.claims_of(model).get("selection", {}).get(method, {}).get("stated")
    if stated:
        return str(stated)
    if method == "nit":
        recipes = results.training[(results.training["model"] == model)
                                   & (results.training["method"] == "nit")]["recipe"]
        return f"recipe: {recipes.iloc[0]}" if len(recipes) else None
    beta = results.method_params(model, method).get("beta")
    return None if beta is None else f"beta: {float(beta):g}"


def _best_candidate(sweep: pd.DataFrame) -> tuple[str, float] | None:
    """The candidate with the best per-epoch validation accuracy on chips, and that accuracy."""
    if sweep.empty:
        return None
    best = sweep.groupby("candidate", sort=False)["val_chip_acc_mean"].max()
    return str(best.idxmax()), float(best.max())


def _zoom(ax: Any, values: pd.Series, errs: pd.Series) -> None:
    low, high = float((values - errs).min()), float((values + errs).max())
    pad = 0.08 * max(high - low, 0.05)
    ax.set_ylim(max(0.0, low - pad), min(1.02, high + pad))


def _selection_note(results: Results, model: str, method: str, sweep: pd.DataFrame) -> str:
    stated = _stated_candidate(results, model, method)
    best = _best_candidate(sweep)
    if best is None or stated is None:
        return ""
    acc = sweep.groupby("candidate")["val_chip_acc_mean"].max()
    name = "NIT" if method == "nit" else method_label(method)

    def said(candidate: str) -> str:  # "recipe: adam lr=..." -> "recipe 'adam lr=...'"
        kind, _, value = candidate.partition(": ")
        return f"{kind} '{value}'" if value else f"'{candidate}'"

    if stated == best[0]:
        return f"{name}: the stated {said(stated)} is the best on validation ({best[1]:.3f})"
    stated_acc = f"{acc[stated]:.3f}" if stated in acc else "not in the sweep"
    return (f"{name}: the stated {said(stated)} ({stated_acc}) is NOT the best on validation: "
            f"{said(best[0])} reaches {best[1]:.3f}")


def _draw_recipe_sweep(ax: Any, results: Results, model: str) -> bool:
    """Validation accuracy on chips per epoch of every NIT recipe candidate, the stated one
    highlighted; False when recipes.csv has none for `model`."""
    r = results.recipes
    sweep = r[(r["model"] == model) & (r["method"] == "nit")]
    if sweep.empty:
        return False
    stated = _stated_candidate(results, model, "nit")
    best = _best_candidate(sweep)
    others = iter(_SWEEP_COLOURS)
    for cand, g in sweep.groupby("candidate", sort=False):
        g = g.sort_values("epoch")
        is_stated = cand == stated
        colour = _style("nit")[0] if is_stated else next(others)
        tags = [t for t, on in (("stated", is_stated), ("best on validation", best and cand == best[0])) if on]
        label = str(cand).removeprefix("recipe: ") + (f" ({', '.join(tags)})" if tags else "")
        ax.plot(g["epoch"], g["val_chip_acc_mean"], color=colour, lw=3.0 if is_stated else 1.4,
                marker="o", ms=5 if is_stated else 3.5, label=label, zorder=3 if is_stated else 2)
        if is_stated:
            ci = g["val_chip_acc_ci95"].map(_ci)
            ax.fill_between(g["epoch"], g["val_chip_acc_mean"] - ci, g["val_chip_acc_mean"] + ci,
                            color=colour, alpha=0.15, lw=0)
        chosen = g[g["selected"]]
        ax.plot(chosen["epoch"], chosen["val_chip_acc_mean"], ls="", marker="o", ms=10,
                color=colour, mec="black", mew=1.5, zorder=4)
    _zoom(ax, sweep["val_chip_acc_mean"], sweep["val_chip_acc_ci95"].map(_ci))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch of the sweep run (black edge: its best epoch)")
    ax.set_ylabel(f"validation split: accuracy on chips,\nsigma_train = {results.sigma_train(model):g}")
    ax.set_title(f"{MODEL_LABELS.get(model, model)}: NIT recipe candidates "
                 f"({int(sweep['epoch'].max())} epochs each; y axis zoomed)", fontsize=11)
    ax.legend(loc="lower right", fontsize=8.5, framealpha=0.9, title="recipe", title_fontsize=8.5)
    ax.text(0.01, 0.99, textwrap.fill(_selection_note(results, model, "nit", sweep), 70),
            transform=ax.transAxes, ha="left", va="top", fontsize=8.5,
            bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.9))
    return True


def _draw_beta_sweep(ax: Any, results: Results, model: str) -> bool:
    """Validation accuracy on chips per epoch of every NFT beta candidate (one colour per NFT
    variant, one line style per beta), the stated beta thick; False when there is none."""
    r = results.recipes
    sweep = r[(r["model"] == model) & (r["method"] != "nit")]
    if sweep.empty:
        return False
    notes = []
    for spec in registry.ordered(sorted(set(sweep["method"]) & set(registry.all_methods()))):
        sub = sweep[sweep["method"] == spec.name]
        stated = _stated_candidate(results, model, spec.name)
        best = _best_candidate(sub)
        for i, (cand, g) in enumerate(sub.groupby("candidate", sort=False)):
            g = g.sort_values("epoch")
            is_stated = cand == stated
            tags = [t for t, on in (("stated", is_stated), ("best", best and cand == best[0])) if on]
            ax.plot(g["epoch"], g["val_chip_acc_mean"], color=spec.color,
                    ls=_BETA_STYLES[i % len(_BETA_STYLES)], lw=3.0 if is_stated else 1.4,
                    marker=spec.marker, ms=5 if is_stated else 3.5,
                    label=f"{spec.label}, {cand}" + (f" ({', '.join(tags)})" if tags else ""))
            chosen = g[g["selected"]]
            ax.plot(chosen["epoch"], chosen["val_chip_acc_mean"], ls="", marker=spec.marker, ms=10,
                    color=spec.color, mec="black", mew=1.5, zorder=4)
        notes.append(_selection_note(results, model, spec.name, sub))
    _zoom(ax, sweep["val_chip_acc_mean"], sweep["val_chip_acc_ci95"].map(_ci))
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("epoch of the sweep run (black edge: its best epoch)")
    ax.set_ylabel(f"validation split: accuracy on chips,\nsigma_train = {results.sigma_train(model):g}")
    ax.set_title(f"{MODEL_LABELS.get(model, model)}: NFT beta candidates (the authors give no beta "
                 "here; y axis zoomed)", fontsize=11)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    ax.text(0.01, 0.99, "\n".join(textwrap.fill(n, 70) for n in notes if n), transform=ax.transAxes,
            ha="left", va="top", fontsize=8.5,
            bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.9))
    return True


def _has_sweeps(results: Results, model: str) -> bool:
    return bool((results.recipes["model"] == model).any())


@_styled
def fig_training_cost(results: Results) -> Figure:
    """Validation accuracy on chips (at sigma_train) during every training run, vs epochs and vs
    training FLOPs, with each run's deployed epoch (chosen on validation) marked: the full NIT
    schedule against the TSB pipeline (NIT's early snapshot, then one chip's block fine-tuning),
    the speed-up (FLOPs, the verdict; epochs beside it); and, from recipes.csv, the NIT recipe
    candidates and the NFT beta candidates on validation. Wall-clock seconds are not drawn: they
    vary with the machine's load (they are in the timing tables, results/<profile>/timing/)."""
    models = results.models
    sweeps = {m: _has_sweeps(results, m) for m in models}
    trajectory = {m: bool(results.claims_of(m).get("trajectory")) for m in models}
    nrows = sum(1 + int(sweeps[m]) + int(trajectory[m]) for m in models)
    fig, axes = plt.subplots(nrows, 2, figsize=(16, 5.4 * nrows + 1.6), squeeze=False)
    r = 0
    curves_ax = None  # the first validation-curves panel: its legend is the figure's
    for model in models:
        if trajectory[model]:
            _draw_equal_accuracy(axes[r][0], axes[r][1], results, model)
            r += 1
        _draw_training_curves(axes[r][0], axes[r][1], results, model)
        curves_ax = axes[r][0] if curves_ax is None else curves_ax
        r += 1
        if sweeps[model]:
            if not _draw_recipe_sweep(axes[r][0], results, model):
                fig.delaxes(axes[r][0])
            if not _draw_beta_sweep(axes[r][1], results, model):
                fig.delaxes(axes[r][1])
            r += 1
    handles, labels = curves_ax.get_legend_handles_labels()
    chips = {results.experiment(m).get("train", {}).get("val_chips") for m in models} - {None}
    chips_text = f"{chips.pop()} validation chips" if len(chips) == 1 else "validation chips"
    fig.suptitle(("Training cost: " + ("first row of each model, accuracy on the paired test "
                                        "chips vs FLOPs (the equal-accuracy reading); then "
                                        if any(trajectory.values()) else "")
                  + "every training run on the validation split (curves: mean accuracy "
                  f"on {chips_text} at sigma_train after each epoch, NIT shaded 95 % CI)"),
                 fontsize=12.5)
    _finish(fig, results, legend=(handles, labels, 3),
            note="The test split is read only by the final evaluation (the other figures).")
    return fig


def _draw_equal_accuracy(ax_curve: Any, ax_text: Any, results: Results, model: str) -> None:
    """Training cost at equal accuracy (claims.json `trajectory`, test chips at the operating
    sigma, the same chips for every point): NIT after every epoch, with and without per-chip BN
    recalibration, and TSB from backbones of several ages (NIT's own snapshots, and one short
    schedule annealed to its end), against training FLOPs (TSB: backbone + one chip's
    fine-tuning at the images and passes used); the speed-up box beside it."""
    c = results.claims_of(model)
    speed = c.get("training_speedup", {})
    traj = pd.DataFrame(c.get("trajectory", []))
    per_epoch = float(speed.get("nit_flops_per_epoch") or np.nan)
    ft = float(speed.get("tsb_finetune_flops_per_chip") or 0.0)
    styles = {"nit": ("nit", "NIT after each epoch, programmed once"),
              "nit_bnrecal": ("nit_bnrecal", "NIT after each epoch + per-chip BN recalibration"),
              "tsb": ("tsb", "TSB from NIT's snapshot at that epoch"),
              "tsb_bnrecal": ("tsb_bnrecal", "TSB + BN recalibration from that snapshot")}
    for curve, (method, text) in styles.items():
        sub = traj[(traj["curve"] == curve)] if len(traj) else traj
        if sub is None or not len(sub):
            continue
        colour, marker = _style(method)
        for backbone, part in sub.groupby("backbone"):
            part = part.sort_values("epochs")
            x = part["epochs"] * per_epoch + (ft if curve.startswith("tsb") else 0.0)
            ci = part["acc_ci95"].map(_ci)
            annealed = backbone == "annealed"
            ax_curve.errorbar(x, part["acc_mean"], yerr=ci, color=colour, marker="P" if annealed else marker,
                              ms=11 if annealed else 6, capsize=3, lw=0 if annealed else 1.8,
                              ls="", mec="black" if annealed else colour,
                              label=(f"{method_label(method)} from a {int(part['epochs'].iloc[0])}-epoch "
                                     "schedule annealed to its end" if annealed else text))
            if not annealed:
                ax_curve.plot(x, part["acc_mean"], color=colour, lw=1.8)
    tsb = c.get("tsb", {})
    if tsb.get("acc_mean") is not None:
        ax_curve.axhline(tsb["acc_mean"], color=_style("tsb")[0], ls=":", lw=1.2,
                         label=f"TSB as deployed: {_acc(tsb['acc_mean'], tsb.get('acc_ci95'))}")
    ax_curve.set_xscale("log")
    ax_curve.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no crowded labels
    ax_curve.set_xlabel("training FLOPs, log scale (TSB: backbone + one chip's fine-tuning)")
    ax_curve.set_ylabel(f"test split: mean accuracy on {c.get('chips_tsb', '?')} paired chips,\n"
                        f"sigma = {results.operating_sigma(model):g}")
    ax_curve.set_title(f"{MODEL_LABELS.get(model, model)}: accuracy on chips vs training cost "
                       "(equal-accuracy reading)", fontsize=11)
    ax_curve.legend(loc="lower right", fontsize=8.5, framealpha=0.9)
    ax_text.axis("off")
    lines = [_speedup_box(speed, results, model), "",
             f"NIT FLOPs per epoch: {per_epoch:.3e}",
             f"one chip's fine-tuning: {ft:.3e} FLOPs",
             f"  ({speed.get('tsb_finetune_images', '?')} images x "
             f"{speed.get('tsb_finetune_passes', '?')} passes)",
             "",
             textwrap.fill("A fixed early fraction alone caps 'NIT at its selected epoch / TSB' "
                           "near 1 / fraction; the verdict reads NIT's FLOPs to first reach TSB's "
                           "accuracy on the same chips instead.", 58)]
    ax_text.text(0.0, 0.95, "\n".join(lines), va="top", ha="left", family="monospace",
                 fontsize=9.5, transform=ax_text.transAxes)


def _mapping_points(results: Results, model: str) -> pd.DataFrame:
    """Accuracy and mapping cost at the operating sigma of no verify (NIT), SWIM p, full verify, TSB."""
    sigma = results.operating_sigma(model)
    rows = _rows_at(results, model, sigma)
    out = []
    plans = [("nit", "no_verify"), ("swim", "swim"), ("full_wv", "full_wv"), ("tsb", "tsb")]
    for method, plan in plans:
        sub = rows[rows["method"] == method]
        if method == "swim":
            sub = sub.sort_values("swim_p_percent")
        for _, r in sub.iterrows():
            out.append({"method": method, "plan": plan, "swim_p_percent": r["swim_p_percent"],
                        "acc_mean": r["acc_mean"], "acc_ci95": _ci(r["acc_ci95"]), "chips": r["chips"],
                        "wv_fraction": r["wv_fraction"], "time_s": r["mapping_time_s"],
                        "energy_j": r["mapping_energy_j"]})
    return pd.DataFrame(out, columns=["method", "plan", "swim_p_percent", "acc_mean", "acc_ci95",
                                      "chips", "wv_fraction", "time_s", "energy_j"])


def _draw_frontier(ax: Any, results: Results, model: str) -> None:
    """Accuracy on chips against the write-verified fraction (claims.json `frontier`): the
    selective write-verify sweep (0 % = NIT programmed once, 100 % = full write-verify) and TSB
    at every block width evaluated; the width chosen on validation and the SWIM percentage that
    reaches TSB's accuracy marked."""
    c = results.claims_of(model)
    front = pd.DataFrame(c.get("frontier", []))
    if front.empty:
        ax.axis("off")
        return
    sweep = front[front["method"] != "tsb"].sort_values("wv_percent")
    x = sweep["wv_percent"].clip(lower=0.01)  # 0 % on a log axis
    colour, marker = _style("swim")
    ax.errorbar(x, sweep["acc_mean"], yerr=sweep["acc_ci95"].map(_ci), color=colour, marker=marker,
                capsize=3, lw=1.6, label="selective write-verify: NIT (0 %, drawn at 0.01 %), "
                                          "SWIM p, full (100 %)")
    tsb = front[front["method"] == "tsb"]
    wv = c.get("wv_fraction_percent", {})
    chosen = f"width {wv.get('chosen_width')}"
    tcol, tmark = _style("tsb")
    ax.errorbar(tsb["wv_percent"], tsb["acc_mean"], yerr=tsb["acc_ci95"].map(_ci), color=tcol,
                marker=tmark, ms=12, capsize=3, lw=1.2, mec="black", label="TSB at each block width")
    for _, r in tsb.iterrows():
        bold = r["setting"] == chosen
        ax.annotate(r["setting"] + (" (chosen on validation)" if bold and wv.get(
                        "width_chosen_on_validation") else " (stated)" if bold else ""),
                    (r["wv_percent"], r["acc_mean"]), xytext=(6, 6), textcoords="offset points",
                    fontsize=9, color=tcol, weight="bold" if bold else "normal")
    ax.axvline(0.4, color="0.4", ls="--", lw=1, label="the paper's < 0.4 % verified")
    p = c.get("mapping_cost_reduction", {}).get("equal_accuracy_percent")
    if p is not None and p > 0:
        ax.axvline(p, color=colour, ls=":", lw=1.2, label=f"SWIM as accurate as TSB: {p:.2g} %")
    ax.set_xscale("log")
    ax.set_xlabel("write-verified weights (% of the backbone's), log scale")
    ax.set_ylabel(f"mean accuracy on chips, sigma = {results.operating_sigma(model):g}")
    ax.set_title(f"{MODEL_LABELS.get(model, model)}: accuracy vs write-verified fraction",
                 fontsize=11)
    ax.legend(loc="lower right", fontsize=8.5, framealpha=0.9)


def _read_back(results: Results, model: str) -> int | None:
    """Backbone weights TSB reads back once after programming (mapping.csv), or None."""
    mp = results.mapping
    if "read_back_weights" not in mp.columns:
        return None
    rows = mp[(mp["model"] == model) & (mp["plan"] == "tsb")]
    return int(rows["read_back_weights"].iloc[0]) if len(rows) else None


@_styled
def fig_mapping_cost(results: Results) -> Figure:
    """Accuracy at the operating sigma against the expected time and energy of programming the
    whole model onto devices: no verify (NIT), SWIM at each p, full write-verify, TSB (block
    write-verified, backbone programmed once and read back once)."""
    models = results.models
    fig, axes = plt.subplots(len(models), 3, figsize=(21, 5.8 * len(models) + 0.8), squeeze=False)
    for row, model in enumerate(models):
        _draw_frontier(axes[row][2], results, model)
        pts = _mapping_points(results, model)
        sigma = results.operating_sigma(model)
        read_back = _read_back(results, model)
        tsb_text = "TSB: block write-verified, backbone read back once"
        if read_back is not None:
            tsb_text = (f"TSB: block write-verified; its cost includes reading the {read_back:,} "
                        "backbone weights back once")
        for col, (key, unit) in enumerate([("time_s", "mapping time (s)"), ("energy_j", "mapping energy (J)")]):
            ax = axes[row][col]
            swim = pts[pts["method"] == "swim"]
            if len(swim):
                colour, marker = _style("swim")
                ax.errorbar(swim[key], swim["acc_mean"], yerr=swim["acc_ci95"], color=colour,
                            marker=marker, ms=8, capsize=3, lw=1.6,
                            label=f"{registry.label('swim')}, top p % verified")
                for _, r in swim.iterrows():
                    ax.annotate(f"p={r['swim_p_percent']:g} %", (r[key], r["acc_mean"]),
                                xytext=(6, -14), textcoords="offset points", fontsize=9,
                                color=colour)
            for method, text in [("nit", "no verify (the NIT model)"),
                                 ("full_wv", registry.label("full_wv")), ("tsb", tsb_text)]:
                sub = pts[pts["method"] == method]
                if sub.empty:
                    continue
                colour, marker = _style(method)
                ax.errorbar(sub[key], sub["acc_mean"], yerr=sub["acc_ci95"], fmt=marker,
                            color=colour, ms=16 if method == "tsb" else 10, capsize=4,
                            mec="black", label=textwrap.fill(f"{text} ({int(sub['chips'].iloc[0])} chips)", 60))
            ax.set_xscale("log")
            lo, hi = pts[key].min(), pts[key].max()
            ax.set_xlim(lo / 2.5, hi * 2.5)
            ax.set_xlabel(f"expected {unit}, log scale")
            ax.set_ylabel(f"mean accuracy on chips (test split), sigma = {sigma:g}")
            ymin = float((pts["acc_mean"] - pts["acc_ci95"]).min())
            ax.set_ylim(max(0.0, ymin - 0.08), 1.02)
            ax.set_title(f"{MODEL_LABELS.get(model, model)}: accuracy vs {unit.split(' (')[0]} "
                         "(upper left is better)", fontsize=11)
        axes[row][0].legend(loc="lower right", fontsize=9, framealpha=0.9)
    mp = results.provenance.get("config", {}).get("mapping", {})
    extra = ""
    if mp:
        extra = (f" (pulse {mp.get('pulse_time_s'):g} s / {mp.get('pulse_energy_j'):g} J, read "
                 f"{mp.get('read_time_s'):g} s / {mp.get('read_energy_j'):g} J, "
                 f"{mp.get('parallel_devices')} devices in parallel)")
    fig.suptitle("Weights-to-device mapping cost vs accuracy" + extra, fontsize=12)
    _finish(fig, results)
    return fig


def _ablation_frame(results: Results, model: str) -> pd.DataFrame:
    """Ablation rows of `model` with the default TSB added to each family at its default setting."""
    a = results.ablations[results.ablations["model"] == model].copy()
    a["setting"] = a["setting"].astype(str)
    default = a[a["ablation"] == "default"]
    tsb_cfg = results.experiment(model).get("tsb", {})
    extra = []
    if len(default):
        d = default.iloc[0]
        for family, key in _ABLATION_DEFAULT_KEY.items():
            if family in set(a["ablation"]) and key in tsb_cfg:
                value = tsb_cfg[key]
                setting = f"{value:g}" if isinstance(value, (int, float)) else str(value)
                row = d.copy()
                row["ablation"], row["setting"] = family, f"{setting} (default)"
                extra.append(row)
    if extra:
        a = pd.concat([a, pd.DataFrame(extra)], ignore_index=True)
    return a


def _setting_sort_key(setting: str) -> tuple[int, float, str]:
    base = setting.replace(" (default)", "")
    try:
        return (0, float(base), "")
    except ValueError:
        return (1, 0.0, base)


def _ablation_families(results: Results, model: str) -> list[str]:
    present = set(results.ablations[results.ablations["model"] == model]["ablation"])
    return [f for f in ABLATION_LABELS if f in present]


_NO_BLOCK_ROWS = ("tsb_backbone_only", "tsb_backbone_bnrecal")


@_styled
def fig_ablations(results: Results) -> Figure:
    """Mean accuracy (95 % CI) at the operating sigma for each setting of each ablation family
    (block width, placement, sharing, fine-tuning mode, read-back noise, no block), against the
    default TSB (red line and band) and the block-less early backbone (orange dashed line)."""
    models = results.models
    families = {m: _ablation_families(results, m) for m in models}
    ncols = min(3, max(len(f) for f in families.values()))
    nrows_per = {m: math.ceil(len(f) / ncols) for m, f in families.items()}
    nrows = sum(nrows_per.values())
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.6 * ncols, 4.5 * nrows + 1.0), squeeze=False)
    tsb_colour = _style("tsb")[0]
    r0 = 0
    for model in models:
        frame = _ablation_frame(results, model)
        sigma = results.operating_sigma(model)
        default = frame[frame["ablation"] == "default"]
        backbone = frame[frame["method"] == "tsb_backbone_only"]
        cis = frame["acc_ci95"].map(_ci)
        low = float((frame["acc_mean"] - cis).min())
        high = float((frame["acc_mean"] + cis).max())
        pad = 0.1 * max(high - low, 0.05)
        ylim = (max(0.0, low - pad), min(1.02, high + pad))
        for i, family in enumerate(families[model]):
            ax = axes[r0 + i // ncols][i % ncols]
            sub = frame[frame["ablation"] == family]
            sub = sub.iloc[sorted(range(len(sub)), key=lambda k: _setting_sort_key(sub["setting"].iloc[k]))]
            x = np.arange(len(sub))
            for xi, (_, r) in enumerate(sub.iterrows()):
                is_default = r["setting"].endswith("(default)") or r["method"] == "tsb"
                if is_default:
                    colour, marker = tsb_colour, "o"
                elif r["method"] in _NO_BLOCK_ROWS:
                    colour, marker = _style(r["method"])
                else:
                    colour, marker = VARIED_COLOUR, "o"
                ax.errorbar([xi], [r["acc_mean"]], yerr=[_ci(r["acc_ci95"])], fmt=marker,
                            color=colour, ms=9, capsize=5, lw=2, mec="black", zorder=3)
                ax.annotate(f"{r['acc_mean']:.3f} ± {_ci(r['acc_ci95']):.3f}\n({int(r['chips'])} chips)",
                            (xi, r["acc_mean"]), xytext=(9, 0), textcoords="offset points",
                            va="center", ha="left", fontsize=8.5)
            if len(default):
                d = default.iloc[0]
                ax.axhline(d["acc_mean"], color=tsb_colour, lw=1.5, zorder=1)
                ax.axhspan(d["acc_mean"] - _ci(d["acc_ci95"]), d["acc_mean"] + _ci(d["acc_ci95"]),
                           color=tsb_colour, alpha=0.12, lw=0, zorder=0)
            if len(backbone):
                b = backbone.iloc[0]
                ax.axhline(b["acc_mean"], color=_style("tsb_backbone_only")[0], ls="--", lw=1.5, zorder=1)
            ax.set_xticks(x, [textwrap.fill(s, 14) for s in sub["setting"]], fontsize=9.5)
            ax.set_xlim(-0.5, len(sub) - 0.2)
            ax.set_ylim(*ylim)
            ax.set_ylabel(f"mean accuracy (test split), sigma = {sigma:g}" if i % ncols == 0 else "")
            ax.set_title(f"{MODEL_LABELS.get(model, model)}: {ABLATION_LABELS[family]}", fontsize=11)
        for j in range(len(families[model]), nrows_per[model] * ncols):
            fig.delaxes(axes[r0 + j // ncols][j % ncols])
        r0 += nrows_per[model]
    handles = [matplotlib.lines.Line2D([], [], color=tsb_colour, lw=1.5),
               matplotlib.lines.Line2D([], [], color=_style("tsb_backbone_only")[0], ls="--", lw=1.5),
               matplotlib.lines.Line2D([], [], color=tsb_colour, marker="o", ls="", mec="black"),
               matplotlib.lines.Line2D([], [], color=VARIED_COLOUR, marker="o", ls="", mec="black")]
    labels = ["default TSB (band: its 95 % CI)", "early backbone without block",
              "default setting", "varied setting"]
    fig.suptitle("Ablations of TSB at the operating sigma (points: mean accuracy on chips, "
                 "bars: 95 % CI; y axis zoomed)", fontsize=13)
    _finish(fig, results, legend=(handles, labels, 4))
    return fig


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def _write_atomically(target: Path, write: Callable[[str], None]) -> None:
    """Call `write(tmp)` on a temporary file next to `target`, then rename it into place (mode
    0644); on failure the temporary file is removed and `target` is left as it was."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_figure(fig: Figure, results: Results, name: str) -> list[Path]:
    """Write results/<profile>/figures/<name>.png (150 dpi) and .pdf atomically, without dates
    or version stamps, so the same figure gives the same bytes; returns the two paths."""
    folder = Path(results.results_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, metadata in (("png", {"Software": None}),
                          ("pdf", {"Creator": None, "Producer": None, "CreationDate": None})):
        target = folder / f"{name}.{fmt}"

        def write(tmp: str, fmt: str = fmt, metadata: dict = metadata) -> None:
            with matplotlib.rc_context({"svg.hashsalt": "tsb", "pdf.compression": 6}):
                fig.savefig(tmp, format=fmt, dpi=150, metadata=metadata)

        _write_atomically(target, write)
        written.append(target)
    return written


NOTEBOOK_DPI = 100
"""Resolution of a figure shown in a notebook (`show_figure`): 8-point text is 11 pixels high."""

MIN_FONT_PT = 8.0
"""Smallest text size in the figures (tests/test_plots.py checks every text of every figure)."""


def show_figure(fig: Figure) -> None:
    """Show `fig` in a notebook at its own size, NOTEBOOK_DPI pixels per inch (JupyterLab's
    'unconfined' image: never scaled down to the panel, scrolled sideways where the panel is
    narrower), so that its smallest text (at least MIN_FONT_PT) is readable at 100 % zoom; then
    close it. The PNG carries no date or version, so the notebook's bytes depend on the figure
    alone."""
    import io as bytes_io

    from IPython.display import Image, display

    buffer = bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=NOTEBOOK_DPI, bbox_inches="tight",
                metadata={"Software": None})
    plt.close(fig)
    display(Image(data=buffer.getvalue(), format="png", unconfined=True))


# --------------------------------------------------------------------------------------------
# Executed notebooks (papermill), in the form JupyterLab keeps and without wall-clock times
# --------------------------------------------------------------------------------------------

NOTEBOOK_KERNEL = "python3"
"""The Jupyter kernel that executes the figure notebooks: the environment's own Python."""

VOLATILE_CELL_METADATA = ("execution", "papermill")
"""Cell metadata written by nbclient (`execution`: iopub timestamps) and papermill (start and end
times, duration, status); dropped from executed notebooks."""

_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=")
"""A parameter assignment line of a parameters cell (`name = value`)."""


def fold_parameters(parameters_source: str, injected_source: str) -> str:
    """The source of a parameters cell with papermill's injected values folded in: each
    assignment of an injected name takes the injected line, injected names the cell lacks are
    appended, and papermill's '# Parameters' comment is dropped."""
    injected = {}
    for line in injected_source.splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            injected[match.group(1)] = line
    lines = []
    for line in parameters_source.splitlines():
        match = _ASSIGNMENT.match(line)
        lines.append(injected.pop(match.group(1)) if match and match.group(1) in injected else line)
    return "\n".join(lines + list(injected.values()))


def _fold_injected_cell(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`cells` with papermill's injected-parameters cell folded into the parameters cell
    (`fold_parameters`) and removed, so the executed notebook has one parameters cell stating
    the values it ran with; code cells' execution counts are then renumbered 1, 2, ..."""
    tags = [c.get("metadata", {}).get("tags", ()) for c in cells]
    injected = next((i for i, t in enumerate(tags) if "injected-parameters" in t), None)
    target = next((i for i, t in enumerate(tags) if "parameters" in t), None)
    if injected is None:
        return cells
    if target is None:  # a notebook without a parameters cell: papermill's cell takes its place
        cells[injected]["metadata"]["tags"] = ["parameters"]
    else:
        cells[target]["source"] = fold_parameters(_source(cells[target]), _source(cells[injected]))
        cells = cells[:injected] + cells[injected + 1:]
    count = 0
    for cell in cells:
        if cell.get("cell_type") == "code" and cell.get("execution_count") is not None:
            count += 1
            cell["execution_count"] = count
            for output in cell.get("outputs", []):
                if output.get("output_type") == "execute_result":
                    output["execution_count"] = count
    return cells


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def kernelspec_metadata(kernel_name: str = NOTEBOOK_KERNEL) -> dict[str, str]:
    """The notebook metadata `kernelspec` of installed kernel `kernel_name` (its name, display
    name and language), exactly what JupyterLab writes into a notebook when it starts that
    kernel: a notebook that already holds it opens without being marked modified."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(kernel_name)
    return {"display_name": spec.display_name, "language": spec.language, "name": kernel_name}


def normalise_notebook(nb: dict[str, Any], kernel_name: str = NOTEBOOK_KERNEL) -> Any:
    """A copy of executed notebook `nb` (an nbformat NotebookNode or plain dict) that holds no
    wall-clock time or machine path and that JupyterLab opens unmodified: nbformat 4 at the
    current minor version with a valid id on every cell, one parameters cell holding the values
    it ran with (papermill's injected cell folded into it, `_fold_injected_cell`), the cell
    metadata of `VOLATILE_CELL_METADATA` and empty tag lists dropped, papermill's notebook
    metadata reduced to the injected parameters, and the kernelspec of the installed kernel
    (`kernelspec_metadata`). Returns a validated NotebookNode."""
    import nbformat
    from nbformat.validator import normalize

    out = copy.deepcopy(dict(nb))
    out["nbformat"], out["nbformat_minor"] = nbformat.v4.nbformat, nbformat.v4.nbformat_minor
    meta = out.setdefault("metadata", {})
    run = meta.pop("papermill", None) or {}
    if run.get("parameters"):
        meta["papermill"] = {"parameters": run["parameters"]}
    meta["kernelspec"] = kernelspec_metadata(kernel_name)
    for cell in out.get("cells", []):
        cell.setdefault("metadata", {})
    out["cells"] = _fold_injected_cell(out.get("cells", []))
    for i, cell in enumerate(out["cells"]):
        cell_meta = cell["metadata"]
        for key in VOLATILE_CELL_METADATA:
            cell_meta.pop(key, None)
        if not cell_meta.get("tags", True):
            del cell_meta["tags"]
        if not cell.get("id"):
            cell["id"] = f"cell-{i}"
    _, out = normalize(out)
    node = nbformat.from_dict(out)
    nbformat.validate(node)
    return node


def kernel_config() -> object:
    """Kernel-manager settings for papermill: CurveZMQ-encrypted kernel sockets where
    jupyter_client and pyzmq support them, which also silences ipykernel's 'Kernel is running
    over TCP without encryption' warning on every figure; empty (the defaults) otherwise."""
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    if zmq.has("curve") and KernelManager.class_traits().get("transport_encryption") is not None:
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config()


def execute_notebook(source: str | os.PathLike, target: str | os.PathLike,
                     parameters: dict[str, Any], cwd: str | os.PathLike,
                     kernel_name: str = NOTEBOOK_KERNEL,
                     library_root: str | os.PathLike | None = None) -> Path:
    """Execute notebook `source` with papermill (injecting `parameters`, running in `cwd`) and
    write the executed copy to `target` atomically, normalised by `normalise_notebook` and
    serialised as Jupyter saves notebooks: executing it again on the same results gives the same
    bytes, and opening it in JupyterLab does not mark it modified. With `library_root`, the
    kernel imports tsblib from that folder (put first on its PYTHONPATH) rather than from
    wherever the environment installed it. A failing cell raises papermill's
    PapermillExecutionError and leaves `target` as it was. Returns `target`."""
    import nbformat
    import papermill

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    saved = os.environ.get("PYTHONPATH")
    if library_root is not None:  # the kernel inherits this process's environment
        os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(library_root).resolve())]
                                                   + ([saved] if saved else []))
    try:
        nb = papermill.execute_notebook(str(source), None, parameters=parameters, cwd=str(cwd),
                                        progress_bar=False, kernel_name=kernel_name,
                                        config=kernel_config())
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    text = nbformat.writes(normalise_notebook(nb, kernel_name))
    _write_atomically(target, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return target


# --------------------------------------------------------------------------------------------
# Tables (strings with fixed decimals, so displayed outputs are stable)
# --------------------------------------------------------------------------------------------


_NUMERIC_CELL = re.compile(r"^[<>=~]*\s*[-+]?\.?\d|^unbounded")
"""A table cell that holds a number (possibly with a unit, ± CI or interval): '0.894 ± 0.008',
'2.60x [2.09, 3.31]', '> 20x', '1.823e+11', '12 / 1000', 'unbounded [2.1, unbounded]'."""

_PLACEHOLDERS = ("", "-", "n/a")

_CELL_STYLE = "padding: 0.25em 0.6em; vertical-align: top; border-bottom: 1px solid #ddd; "


def _numeric_column(values: pd.Series) -> bool:
    cells = [str(v) for v in values if str(v) not in _PLACEHOLDERS]
    return bool(cells) and all(_NUMERIC_CELL.match(c) for c in cells)


def table_html(table: pd.DataFrame) -> str:
    """`table` as an HTML table for the notebooks: one header row, no index, every cell in full,
    text columns left-aligned and wrapped between words, number columns right-aligned and never
    wrapped inside a value (a newline in a cell is a line break, so a long value can take two
    lines where it says so, e.g. an accuracy and its 5th percentile). Styles are inline
    attributes, because JupyterLab drops <style> blocks from notebooks it has not run itself
    (every executed notebook opened from the repository); the text is escaped and the output is
    the same bytes for the same table."""
    numeric = {c: _numeric_column(table[c]) for c in table.columns}
    align = {c: "right" if numeric[c] else "left" for c in table.columns}
    cell = {c: _CELL_STYLE + (f"text-align: {align[c]}; white-space: nowrap;" if numeric[c]
                              else f"text-align: {align[c]}; min-width: 9em;")
            for c in table.columns}
    head = "".join(f'<th style="{_CELL_STYLE}text-align: {align[c]}; vertical-align: bottom; '
                   f'border-bottom: 2px solid #888;">{html.escape(str(c))}</th>'
                   for c in table.columns)
    rows = ["<tr>" + "".join(f'<td style="{cell[c]}">'
                             f'{html.escape(str(v)).replace(chr(10), "<br>")}</td>'
                             for c, v in zip(table.columns, row)) + "</tr>"
            for row in table.itertuples(index=False)]
    return ('<table class="tsb-table" style="border-collapse: collapse; margin: 0;">\n'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>")


def table_text(table: pd.DataFrame) -> str:
    """`table` as plain text (no index, every cell in full): the twin of `table_html` that
    viewers without HTML show and that `pytest --nbval` compares as well (a line break in a cell
    becomes a space)."""
    if not len(table):
        return "(no rows)"
    flat = table.map(lambda v: v.replace("\n", " ") if isinstance(v, str) else v)
    return flat.to_string(index=False, max_colwidth=None)


def transposed(table: pd.DataFrame, key: str = "model", label: str = "") -> pd.DataFrame:
    """`table` turned on its side for a notebook panel: one column per value of `key` (e.g. one
    per model) and one row per other column, named in a first column headed `label`. A table of
    few rows and many columns becomes narrow enough to read without scrolling."""
    if not len(table):
        return table
    side = table.set_index(key).T.reset_index()
    side.columns = [label] + [str(c) for c in side.columns[1:]]
    return side


def show(table: pd.DataFrame) -> None:
    """Display `table` in a notebook as an HTML table (`table_html`) with a plain-text twin
    (`table_text`); JupyterLab shows the HTML."""
    from IPython.display import display

    display({"text/html": table_html(table), "text/plain": table_text(table)}, raw=True)


def say(*sentences: str) -> None:
    """Display conclusion sentences in a notebook as paragraphs (HTML, the text escaped, with the
    plain text as twin): JupyterLab wraps a paragraph between words, whereas it wraps printed
    text anywhere, even inside a number."""
    from IPython.display import display

    display({"text/html": "\n".join(f"<p>{html.escape(s)}</p>" for s in sentences),
             "text/plain": "\n".join(sentences)}, raw=True)


def _acc(mean: float, ci: Any) -> str:
    if _missing(ci):
        return f"{mean:.3f} ± n/a"
    return f"{mean:.3f} ± {float(ci):.3f}"


def _num(x: Any, fmt: str = ".3f", missing: str = "-") -> str:
    if _missing(x):
        return missing
    return format(float(x), fmt)


def claims_table(results: Results) -> pd.DataFrame:
    """The headline claims per model: claim, what it is compared with, the paper's claim, our
    measured value (gap ratios with their 95 % bootstrap interval, e.g. '12.3x [8.10, 19.0]'),
    the verdict of claims.json ('pass' / 'falls short' / 'undecided'; gap ratios pass only when the
    interval's lower end clears the claim) and what is reported beside it."""
    rows = [r for model in results.claims.get("models", {}) for r in _claims_rows(results, model)]
    return pd.DataFrame(rows, columns=["claim", "model", "compared with", "paper's claim",
                                       "our measured value [95 % interval]", "meets?", "beside it"])


def claims_definitions(results: Results) -> pd.DataFrame:
    """How each headline claim is measured (from claims.json), one row per claim."""
    rows = {}
    for entry in results.claims.get("models", {}).values():
        for key, label in CLAIM_LABELS.items():
            c = entry.get(key)
            if c is not None and label not in rows:
                definition = c.get("definition", "")
                for extra in ("epochs_definition", "amortised_definition"):
                    if c.get(extra):
                        definition += f"; {extra.split('_')[0]}: {c[extra]}"
                rows[label] = {"claim": label, "paper's wording": c.get("paper_wording", ""),
                               "definition": definition}
    return pd.DataFrame(list(rows.values()), columns=["claim", "paper's wording", "definition"])


def operating_point_table(results: Results, model: str) -> pd.DataFrame:
    """Every deployment method of `model` at its operating sigma: chips, noise-free and on-chip
    accuracy, both gaps, write-verified fraction, mapping time, and the training cost up to the
    deployed (validation-selected) epoch: epochs and FLOPs (wall-clock seconds, which vary with
    the machine's load, stay in summary.csv)."""
    sigma = results.operating_sigma(model)
    rows = _rows_at(results, model, sigma)
    order = {m: i for i, m in enumerate(method_order())}
    rows = rows[rows["method"].isin(order)].copy()
    rows["_o"] = rows["method"].map(order)
    rows = rows.sort_values(["_o", "swim_p_percent"])
    out = []
    for _, r in rows.iterrows():
        out.append({"method": method_label(r["method"], swim_p=r["swim_p_percent"]),
                    "chips": str(int(r["chips"])),
                    "noise-free acc (TSB: backbone + block)": _num(r["clean_acc"]),
                    "acc on chips ± CI95": _acc(r["acc_mean"], r["acc_ci95"]),
                    "gap own": _num(r["gap_own"]), "gap ideal": _num(r["gap_ideal"]),
                    "verified %": _num(100 * r["wv_fraction"], ".3f"),
                    "mapping time (s)": _num(r["mapping_time_s"], ".3e"),
                    "train epochs (deployed)": str(int(r["train_epochs"])),
                    "train FLOPs": _num(r.get("train_flops"), ".3e")})
    return pd.DataFrame(out)


def speedup_table(results: Results) -> pd.DataFrame:
    """Training cost per model: NIT up to its deployed epoch vs the TSB backbone plus one chip's
    fine-tuning, and the speed-ups: FLOPs (the verdict), epochs, and FLOPs amortised over the
    configured number of chips (wall-clock seconds, which vary with the machine's load, are
    only in the timing tables, results/<profile>/timing/)."""
    out = []
    for model in results.models:
        sigma = results.operating_sigma(model)
        nit, tsb = _method_row(results, model, "nit", sigma), _method_row(results, model, "tsb", sigma)
        if nit is None or tsb is None:
            continue
        c = results.claims_of(model).get("training_speedup", {})
        eq = c.get("equal_accuracy") or {}
        reached = eq.get("measured_nit_epochs")
        out.append({"model": MODEL_LABELS.get(model, model),
                    "NIT epochs to TSB's accuracy": ("-" if not eq else str(reached) if reached
                                                     else f"never in {c.get('nit_schedule_epochs')}"),
                    "NIT FLOPs per epoch": _num(c.get("nit_flops_per_epoch"), ".3e"),
                    "TSB backbone epochs": str(int(tsb["train_epochs"])),
                    "TSB backbone FLOPs": _num(c.get("tsb_backbone_flops"), ".3e"),
                    "fine-tuning per chip": f"{c.get('tsb_finetune_images', '?')} images x "
                                            f"{_finetune_epochs(results, model)}",
                    "TSB pipeline FLOPs (1 chip)": _num(_tsb_pipeline_flops(results, model), ".3e"),
                    "speed-up at equal accuracy [95 %]": measured_text("training_speedup", c),
                    "meets?": verdict_text(c.get("meets_claim"), c.get("verdict_reason")),
                    f"amortised ({c.get('amortised_chips', '?')} chips)":
                        ratio_text((c.get("amortised") or {}).get("measured"))})
    return pd.DataFrame(out)


def training_runs_table(results: Results) -> pd.DataFrame:
    """Every training run: its recipe, the epochs run, the deployed epoch chosen on validation
    and the validation accuracies there, and the FLOPs up to it (the wall-clock seconds, which
    vary with the machine's load, are in the timing table results/<profile>/timing/training.csv)."""
    out = []
    t = results.training
    for model in results.models:
        sigma = results.operating_sigma(model)
        for spec in registry.ordered():
            sub = t[(t["model"] == model) & (t["method"] == spec.name)].sort_values("epoch")
            if sub.empty:
                continue
            chosen = sub[sub["selected"]]
            c = chosen.iloc[0] if len(chosen) else None
            row = _method_row(results, model, spec.name, sigma)
            out.append({"model": MODEL_LABELS.get(model, model), "run": spec.label,
                        "recipe": str(sub["recipe"].iloc[0]),
                        "epochs run": str(int(sub["epoch"].max())),
                        "deployed epoch": "-" if c is None else str(int(c["epoch"])),
                        "chosen on": "noise-free accuracy" if spec.selects_epoch_on == "clean"
                                     else "accuracy on chips",
                        "val acc on chips ± CI95": "-" if c is None else _acc(c["val_chip_acc_mean"],
                                                                              c["val_chip_acc_ci95"]),
                        "val noise-free acc": "-" if c is None else _num(c["val_clean_acc"]),
                        "FLOPs to it": "-" if row is None else _num(row.get("train_flops"), ".3e")})
    return pd.DataFrame(out)


def selection_table(results: Results) -> pd.DataFrame:
    """The validation sweeps behind the stated choices (recipes.csv): per model, method and
    candidate, its best per-epoch validation accuracy on chips, whether it is the stated choice
    and whether it is the best on validation."""
    out = []
    r = results.recipes
    for model in results.models:
        for method in dict.fromkeys(r[r["model"] == model]["method"]):
            sweep = r[(r["model"] == model) & (r["method"] == method)]
            stated = _stated_candidate(results, model, method)
            best = _best_candidate(sweep)
            acc = sweep.groupby("candidate", sort=False)["val_chip_acc_mean"].max()
            for cand, value in acc.items():
                out.append({"model": MODEL_LABELS.get(model, model),
                            "method": "NIT recipe" if method == "nit" else f"{method_label(method)} beta",
                            "candidate": str(cand),
                            "best val acc on chips": _num(value),
                            "stated": "yes" if cand == stated else "",
                            "best on validation": "yes" if best and cand == best[0] else ""})
    return pd.DataFrame(out, columns=["model", "method", "candidate", "best val acc on chips",
                                      "stated", "best on validation"])


def tsb_lr_table(results: Results) -> pd.DataFrame:
    """The TSB block widths, fine-tuning learning rates and epochs tried on validation
    (tsb_lr.csv) and the chosen setting of the stated width."""
    out = []
    for _, r in results.tsb_lr.iterrows():
        epochs = r.get("epochs")
        out.append({"model": MODEL_LABELS.get(r["model"], r["model"]), "width": str(int(r["width"])),
                    "lr": f"{float(r['lr']):g}",
                    "epochs": "-" if _missing(epochs) else str(int(epochs)),
                    "sigma": f"{float(r['sigma']):g}", "chips": str(int(r["chips"])),
                    "val acc on chips ± CI95": _acc(r["val_acc_mean"], r["val_acc_ci95"]),
                    "chosen": "yes" if r["selected"] else ""})
    return pd.DataFrame(out, columns=["model", "width", "lr", "epochs", "sigma", "chips",
                                      "val acc on chips ± CI95", "chosen"])


def edges_table(results: Results) -> pd.DataFrame:
    """Each TSB setting chosen on validation (claims.json `selection.tsb_settings`): the choice,
    the searched range, and whether the choice lies at an edge of it (then the range should be
    widened before the choice is trusted)."""
    out = []
    for model in results.models:
        settings = results.claims_of(model).get("selection", {}).get("tsb_settings", {})
        for name, v in settings.items():
            searched = v.get("searched") or []
            out.append({"model": MODEL_LABELS.get(model, model), "setting": name,
                        "chosen": f"{v.get('chosen'):g}" if v.get("chosen") is not None else "-",
                        "searched": ", ".join(f"{x:g}" for x in searched),
                        "at an edge?": {"upper": "yes, the largest", "lower": "yes, the smallest"}
                        .get(v.get("at_edge"), "no" if len(searched) > 1 else "one value")})
    return pd.DataFrame(out, columns=["model", "setting", "chosen", "searched", "at an edge?"])


def paired_table(results: Results) -> pd.DataFrame:
    """TSB against every baseline on the same chips at the operating sigma (claims.json
    `per_baseline`): the baseline's accuracy, TSB minus it with the 95 % interval of the paired
    difference, its mapping time against TSB's, and the verdict in words."""
    out = []
    for model in results.models:
        c = results.claims_of(model)
        tsb_time = c.get("tsb", {}).get("mapping_time_s")
        for name, b in c.get("per_baseline", {}).items():
            d = b.get("tsb_minus_baseline")
            if not d or (name == "swim" and any(k.startswith("swim@") for k in c["per_baseline"])):
                continue
            method, _, p = name.partition("@")
            cheaper = tsb_time is not None and b.get("mapping_time_s") is not None and \
                b["mapping_time_s"] <= tsb_time
            word = ("TSB more accurate" if d["low"] > 0 else "baseline more accurate"
                    if d["high"] < 0 else "not resolved")
            if d["high"] < 0 and cheaper:
                word += ", at no more mapping time: TSB loses"
            out.append({"model": MODEL_LABELS.get(model, model),
                        "baseline": method_label(method, results, model,
                                                 swim_p=float(p) if p else None),
                        "acc ± CI95": _acc(b["acc_mean"], b.get("acc_ci95")),
                        "TSB - baseline (points) [95 %]":
                            f"{100 * d['mean']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]",
                        "chips": str(d["chips"]),
                        "mapping time vs TSB's": "-" if not tsb_time else
                            f"{b['mapping_time_s'] / tsb_time:.2f}x",
                        "reading": word})
    return pd.DataFrame(out, columns=["model", "baseline", "acc ± CI95",
                                      "TSB - baseline (points) [95 %]", "chips",
                                      "mapping time vs TSB's", "reading"])


def seeds_table(results: Results) -> pd.DataFrame:
    """The training-seed spread (claims.json `seed_spread`): per method, the mean accuracy of
    each seed on the same chips and the range between seeds, beside the chip interval of the
    main evaluation; and TSB minus NIT (and NIT + BN recal) per seed."""
    out = []
    for model in results.models:
        c = results.claims_of(model)
        spread = c.get("seed_spread")
        if not spread:
            continue
        for name, m in spread["methods"].items():
            row = _method_row(results, model, name, results.operating_sigma(model))
            out.append({"model": MODEL_LABELS.get(model, model), "method": method_label(name),
                        "per seed": " / ".join(f"{k}: {v:.3f}" for k, v in m["per_seed"].items()),
                        "range between seeds": f"{m['range']:.3f}",
                        "chip CI95 (main run)": "-" if row is None else _num(row["acc_ci95"])})
        for key, per in spread["differences"].items():
            other = key.replace("tsb_minus_", "")
            out.append({"model": MODEL_LABELS.get(model, model),
                        "method": f"TSB - {method_label(other)} (points)",
                        "per seed": " / ".join(f"{k}: {100 * d['mean']:+.1f} [{100 * d['low']:+.1f}, "
                                               f"{100 * d['high']:+.1f}]" for k, d in per.items()),
                        "range between seeds": f"{100 * (max(d['mean'] for d in per.values()) - min(d['mean'] for d in per.values())):.1f}",
                        "chip CI95 (main run)": "-"})
    return pd.DataFrame(out, columns=["model", "method", "per seed", "range between seeds",
                                      "chip CI95 (main run)"])


def mapping_table(results: Results, model: str | None = None) -> pd.DataFrame:
    """Mapping cost at the operating sigma (mapping.csv) of each plan next to its accuracy on
    chips (summary.csv): verified and read-back weights, write pulses, reads, time and energy."""
    out = []
    for m in ([model] if model else results.models):
        sigma = results.operating_sigma(m)
        mp = results.mapping[(results.mapping["model"] == m) & np.isclose(results.mapping["sigma"], sigma)]
        pts = _mapping_points(results, m)
        plan_order = {"no_verify": 0, "swim": 1, "full_wv": 2, "tsb": 3}
        mp = mp.assign(_o=mp["plan"].map(plan_order)).sort_values(["_o", "swim_p_percent"])
        for _, r in mp.iterrows():
            match = pts[pts["plan"] == r["plan"]]
            if r["plan"] == "swim":
                match = match[np.isclose(match["swim_p_percent"], r["swim_p_percent"])]
            plan = {"no_verify": "no verify (NIT)", "full_wv": "full write-verify",
                    "tsb": "TSB (block verified, backbone read back)"}.get(
                        r["plan"], f"SWIM p={r['swim_p_percent']:g} %")
            out.append({"model": MODEL_LABELS.get(m, m), "plan": plan,
                        "verified weights": f"{int(r['verified_weights'])} / {int(r['weights'])}",
                        "read-back weights": str(int(r.get("read_back_weights", 0) or 0)),
                        "write pulses": _num(r["write_pulses"], ".4g"), "reads": _num(r["reads"], ".4g"),
                        "time (s)": _num(r["time_s"], ".3e"), "energy (J)": _num(r["energy_j"], ".3e"),
                        "acc on chips ± CI95": (_acc(match["acc_mean"].iloc[0], match["acc_ci95"].iloc[0])
                                                if len(match) else "-")})
    return pd.DataFrame(out)


def ablation_table(results: Results, model: str | None = None) -> pd.DataFrame:
    """Every ablation setting at the operating sigma: family, setting, accuracy ± CI, chips and
    write-verified fraction (fine-tuning seconds per chip, which vary with the machine's load,
    are in the timing table results/<profile>/timing/finetune.csv)."""
    out = []
    for m in ([model] if model else results.models):
        frame = _ablation_frame(results, m)
        for family in ["default"] + _ablation_families(results, m):
            sub = frame[frame["ablation"] == family]
            sub = sub.iloc[sorted(range(len(sub)), key=lambda k: _setting_sort_key(sub["setting"].iloc[k]))]
            for _, r in sub.iterrows():
                out.append({"model": MODEL_LABELS.get(m, m),
                            "ablation": ABLATION_LABELS.get(family, "default TSB"),
                            "setting": r["setting"], "chips": str(int(r["chips"])),
                            "acc on chips ± CI95": _acc(r["acc_mean"], r["acc_ci95"]),
                            "verified %": _num(100 * r["wv_fraction"], ".3f")})
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# Sentences for the notebooks' conclusions (every word that judges is computed from the numbers)
# --------------------------------------------------------------------------------------------


def _describe(row: pd.Series | None, label: str) -> str:
    if row is None:
        return f"{label}: not measured"
    return f"{label} {_acc(row['acc_mean'], row['acc_ci95'])} ({int(row['chips'])} chips)"


def _overlap(a: pd.Series, b: pd.Series) -> bool:
    return abs(a["acc_mean"] - b["acc_mean"]) <= _ci(a["acc_ci95"]) + _ci(b["acc_ci95"])


def _compare(name: str, row: pd.Series, other_name: str, other: pd.Series) -> str:
    """'<name> is 0.123 above/below <other_name> (confidence intervals (do not) overlap)'."""
    diff = float(row["acc_mean"] - other["acc_mean"])
    if diff == 0:
        return f"{name} and {other_name} have the same mean accuracy"
    return (f"{name} is {abs(diff):.3f} {'above' if diff > 0 else 'below'} {other_name} "
            f"(confidence intervals {'overlap' if _overlap(row, other) else 'do not overlap'})")


def accuracy_sentence(results: Results, model: str) -> str:
    """TSB vs NIT and vs every other method at the operating sigma: which methods are more
    accurate on chips than TSB, said plainly."""
    sigma = results.operating_sigma(model)
    tsb, nit = _method_row(results, model, "tsb", sigma), _method_row(results, model, "nit", sigma)
    rows = _rows_at(results, model, sigma)
    others = rows[rows["method"].isin([s.name for s in registry.ordered() if s.name != "tsb"])]
    text = (f"{MODEL_LABELS.get(model, model)} at sigma = {sigma:g} (test split): mean accuracy on "
            f"chips {_describe(tsb, 'TSB')} vs {_describe(nit, 'NIT')}.")
    if tsb is None or others.empty:
        return text
    ranked = others.sort_values(["acc_mean", "method"], ascending=[False, True])
    better = ranked[ranked["acc_mean"] > tsb["acc_mean"]]
    names = [f"{method_label(r['method'], swim_p=r['swim_p_percent'])} ({r['acc_mean']:.3f})"
             for _, r in better.iterrows()]
    best = ranked.iloc[0]
    best_name = method_label(best["method"], swim_p=best["swim_p_percent"])
    if better.empty:
        text += f" TSB is the most accurate method; {_compare('TSB', tsb, f'the next best ({best_name})', best)}."
    else:
        text += (f" {len(better)} of {len(ranked)} other deployments are more accurate than TSB: "
                 f"{', '.join(names)}; {_compare('TSB', tsb, f'the most accurate ({best_name})', best)}.")
    return text


def _ratio_claim_text(c: dict[str, Any]) -> str:
    """'2.42x [1.10, 3.20]: falls short of the paper's > 20x', saying so plainly when TSB's gap
    reaches 0 (undecided) or is the larger one."""
    iv = c.get("interval95")
    value = interval_text(iv) if iv else ratio_text(c.get("measured"), bool(c.get("unbounded")))
    text = (f"{value}: {verdict_text(c.get('meets_claim'), c.get('verdict_reason'))} against the "
            f"paper's {c['paper_claim']}x")
    point = c.get("measured")
    if iv and iv.get("tsb_gap_reaches_zero"):
        text += " (TSB's gap or its interval reaches 0, so the ratio is undefined)"
    elif point is not None and point < 1:
        text += " (below 1: TSB's gap is larger than the baseline's on this definition)"
    return text


def gap_sentence(results: Results, model: str) -> str:
    """The gap improvements of TSB over NIT and over the strongest baseline without
    write-verify, both definitions, with their 95 % intervals and verdicts."""
    entry = results.claims_of(model)
    parts = []
    for key, name in (("gap_improvement_ideal", "ideal (headline)"), ("gap_improvement_own", "own")):
        if entry.get(key) is not None:
            parts.append(f"{name}-gap improvement over NIT {_ratio_claim_text(entry[key])}")
    strongest = results.strongest_baseline(model)
    if strongest:
        label = method_label(strongest, results, model)
        for key, name in (("gap_improvement_ideal_vs_strongest", "ideal"),
                          ("gap_improvement_own_vs_strongest", "own")):
            if entry.get(key) is not None:
                parts.append(f"{name}-gap improvement over the strongest baseline without "
                             f"write-verify ({label}) {_ratio_claim_text(entry[key])}")
    text = (f"{MODEL_LABELS.get(model, model)} at sigma = {results.operating_sigma(model):g} "
            f"(95 % paired bootstrap intervals over {entry.get('paired_chips', '?')} chips): "
            + "; ".join(parts) + ".")
    diffs = [f"{method_label(name, results, model)} {100 * b['tsb_minus_baseline']['mean']:+.1f} "
             f"[{100 * b['tsb_minus_baseline']['low']:+.1f}, {100 * b['tsb_minus_baseline']['high']:+.1f}]"
             for name, b in entry.get("per_baseline", {}).items()
             if "@" not in name and b.get("tsb_minus_baseline")]
    if diffs:
        text += (" TSB minus each baseline on the same chips, in accuracy points [95 % interval]: "
                 + "; ".join(diffs) + ".")
    for loss in entry.get("loses_to", []):
        text += (f" TSB loses to {loss['baseline']} at no more mapping time "
                 f"({100 * loss['tsb_minus_baseline']:+.1f} points).")
    tsb = entry.get("tsb", {})
    if tsb.get("clean_acc") is not None:
        text += (f" TSB's own-gap reference is backbone + block at sigma = 0: "
                 f"{float(tsb['clean_acc']):.3f}.")
    return text


def training_sentence(results: Results, model: str) -> str:
    """NIT's training cost up to its deployed epoch vs the TSB pipeline's (epochs and FLOPs;
    not wall-clock seconds, which vary with the machine's load), with the speed-ups and what
    happens when many chips each need their own fine-tuning."""
    sigma = results.operating_sigma(model)
    nit, tsb = _method_row(results, model, "nit", sigma), _method_row(results, model, "tsb", sigma)
    if nit is None or tsb is None:
        return f"{MODEL_LABELS.get(model, model)}: NIT or TSB not measured."
    c = results.claims_of(model).get("training_speedup", {})
    t = results.training
    nit_run = t[(t["model"] == model) & (t["method"] == "nit")]
    ran = f" of {int(nit_run['epoch'].max())}" if len(nit_run) else ""
    text = (f"{MODEL_LABELS.get(model, model)}: NIT deploys epoch {int(nit['train_epochs'])}{ran} "
            f"(chosen on validation; {_num(nit.get('train_flops'), '.3e')} FLOPs) "
            f"and reaches {_acc(nit['acc_mean'], nit['acc_ci95'])} on test chips at sigma = {sigma:g}; "
            f"the TSB backbone is NIT's snapshot at epoch {int(tsb['train_epochs'])} "
            f"({_num(tsb.get('train_flops'), '.3e')} FLOPs), plus "
            f"{_finetune_epochs(results, model)} fine-tuning epoch(s) per chip, and reaches "
            f"{_acc(tsb['acc_mean'], tsb['acc_ci95'])}: {_compare('TSB', tsb, 'NIT', nit)}.")
    if c:
        text += (f" Training speed-up at equal accuracy (FLOPs for NIT to first reach TSB's "
                 f"accuracy on the same chips / TSB's, one chip): "
                 f"{measured_text('training_speedup', c)}, "
                 f"{verdict_text(c.get('meets_claim'), c.get('verdict_reason'))} against the "
                 f"paper's {c.get('paper_claim', '> 5')}x.")
        if c.get("note"):
            text += f" ({c['note']}.)"
        am, n = (c.get("amortised") or {}).get("measured"), c.get("amortised_chips")
        if am is not None and n:
            text += (f" With {n} chips each fine-tuned: {ratio_text(am)}"
                     + (" (the TSB pipeline then costs more than NIT)." if am < 1 else "."))
        if c.get("selected_epoch_ratio") is not None:
            text += (f" Read at NIT's validation-selected epoch instead, the ratio would be "
                     f"{ratio_text(c['selected_epoch_ratio'])}, a number capped near "
                     f"1 / tsb_early_fraction whatever TSB does.")
    return text


def selection_sentence(results: Results, model: str) -> str:
    """Whether each stated choice (NIT recipe, NFT beta, TSB learning rate) is the best on the
    validation split, said plainly."""
    r = results.recipes
    parts = []
    for method in dict.fromkeys(r[r["model"] == model]["method"]):
        note = _selection_note(results, model, method, r[(r["model"] == model) & (r["method"] == method)])
        if note:
            parts.append(note)
    lr = results.tsb_lr[results.tsb_lr["model"] == model]
    if len(lr):
        chosen = lr[lr["selected"]]
        if len(chosen):
            c = chosen.iloc[0]
            parts.append(f"TSB fine-tuning learning rate {float(c['lr']):g} chosen on validation "
                         f"({_acc(c['val_acc_mean'], c['val_acc_ci95'])} on {int(c['chips'])} chips at "
                         f"sigma = {float(c['sigma']):g}, of {len(lr)} candidates)")
        check = results.claims_of(model).get("selection", {}).get("tsb")
        if check:
            parts.append(f"TSB block {check['stated']} stated; "
                         + ("the best on validation" if check["stated_is_best"] else
                            f"{check['best_on_validation']} is better on validation"))
    if not parts:
        return f"{MODEL_LABELS.get(model, model)}: no validation sweeps in the results."
    return f"{MODEL_LABELS.get(model, model)}: " + "; ".join(parts) + "."


def mapping_sentence(results: Results, model: str) -> str:
    """TSB's mapping time and accuracy against full write-verify and no verify."""
    pts = _mapping_points(results, model).set_index("plan", drop=False)
    if not {"tsb", "full_wv", "no_verify"} <= set(pts["plan"]):
        return f"{MODEL_LABELS.get(model, model)}: mapping points incomplete."
    t, f, n = pts.loc["tsb"], pts.loc["full_wv"], pts.loc["no_verify"]
    read_back = _read_back(results, model)
    rb = f", reading {read_back:,} backbone weights back once included" if read_back else ""
    text = (f"{MODEL_LABELS.get(model, model)} at sigma = {results.operating_sigma(model):g}: TSB maps in "
            f"{t['time_s']:.3e} s{rb} ({f['time_s'] / t['time_s']:.2f}x less than full write-verify, "
            f"{t['time_s'] / n['time_s']:.2f}x the no-verify time) and reaches "
            f"{_acc(t['acc_mean'], t['acc_ci95'])}: {_compare('TSB', t, 'full write-verify', f)}; "
            f"{_compare('TSB', t, 'no verify', n)}.")
    c = results.claims_of(model).get("mapping_cost_reduction", {})
    if "equal_accuracy" in c:
        p = c.get("equal_accuracy_percent")
        text += (" At equal accuracy, " + (f"selective write-verify reaches TSB's accuracy at "
                                           f"{p:.2g} % verified" if p is not None else
                                           "no write-verify setting reaches TSB's accuracy")
                 + f": mapping-cost reduction {measured_text('mapping_cost_reduction', c)}, "
                 f"{verdict_text(c.get('meets_claim'), c.get('verdict_reason'))} against the "
                 f"paper's {c.get('paper_claim')}.")
    return text


def ablation_sentence(results: Results, model: str) -> str:
    """The default TSB against the block-less backbone and its best and worst variant."""
    frame = _ablation_frame(results, model)
    default = frame[frame["ablation"] == "default"]
    variants = frame[~frame["ablation"].isin(["default", "no_block"])
                     & ~frame["setting"].str.endswith("(default)")]
    if default.empty:
        return f"{MODEL_LABELS.get(model, model)}: no ablations measured."
    d = default.iloc[0]
    text = f"{MODEL_LABELS.get(model, model)} at sigma = {results.operating_sigma(model):g}: default TSB {_acc(d['acc_mean'], d['acc_ci95'])}"
    backbone = frame[frame["method"] == "tsb_backbone_only"]
    if len(backbone):
        text += f"; {_compare('it', d, 'the early backbone without a block', backbone.iloc[0])}"
    if len(variants):
        ranked = variants.sort_values(["acc_mean", "method"], ascending=[False, True])
        best, worst = ranked.iloc[0], ranked.iloc[-1]

        def name(r: pd.Series) -> str:
            return f"{ABLATION_LABELS.get(r['ablation'], r['ablation'])} = {r['setting']}"

        text += (f"; best variant {name(best)} {_acc(best['acc_mean'], best['acc_ci95'])} "
                 f"({'above' if best['acc_mean'] > d['acc_mean'] else 'not above'} the default); "
                 f"worst {name(worst)} {_acc(worst['acc_mean'], worst['acc_ci95'])}")
    return text + "."


# --------------------------------------------------------------------------------------------
# Figure 6: robustness beyond the Gaussian model
# --------------------------------------------------------------------------------------------

def _robust_label(method: str, results: Results, model: str) -> str:
    """Legend text of a robustness deployment: its own (`RobustSpec.label`), else its method's."""
    own = registry.robust_deployments().get(method)
    return own.label if own is not None and own.label else method_label(method, results, model)


def _robust_style(method: str) -> tuple[Any, str]:
    """(colour, marker) of a robustness deployment: its own, else its method's."""
    own = registry.robust_deployments().get(method)
    colour, marker = _style(method)
    return ((own.color or colour, own.marker or marker) if own is not None else (colour, marker))


def robustness_frame(results: Results, model: str) -> pd.DataFrame:
    """robustness.csv rows of `model` (drift columns normalised: time_s float, compensation
    bool or NaN)."""
    frame = results.robustness
    if frame is None or frame.empty:
        return pd.DataFrame(columns=OPTIONAL_FILES["robustness"])
    frame = frame[frame["model"] == model].copy()
    frame["compensation"] = frame["compensation"].map(
        lambda v: v if isinstance(v, bool) or _missing(v) else str(v).strip().lower() == "true")
    return frame


def _static(frame: pd.DataFrame) -> pd.DataFrame:
    """Scenarios without drift."""
    return frame[frame["time_s"].isna()]


def _drifting(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["time_s"].notna()]


def robustness_caption(results: Results, model: str) -> str:
    """What the robustness figure shows and how it was measured (device models per scenario)."""
    frame = robustness_frame(results, model)
    chips = int(frame["chips"].max()) if len(frame) else 0
    sigma = float(frame["sigma"].iloc[0]) if len(frame) else float("nan")
    conv = CONVENTION_LABELS.get(results.convention, results.convention)
    dev = results.provenance.get("config", {}).get("device", {})
    trained = device_model_text(dev).rstrip(", ") or "the profile's device model"
    models = "; ".join(f"{name}: {dm}" for name, dm in
                       dict(zip(frame["scenario"], frame["device_model"])).items())
    return (f"Device models of the chips (scenario: models): {models}; {conv}, sigma = {sigma:g}; "
            f"models trained with {trained}. Data: {MODEL_LABELS.get(model, model)} on "
            f"{results.dataset_name(model)}, {chips} chips per point; bars: 95 % CI of the mean, "
            f"hollow markers: 5th percentile of chip accuracy. Profile '{results.profile}': our "
            f"measurements under our reading of TSB (DESIGN.md s.3), not the paper's numbers.")


@_styled
def fig_robustness(results: Results) -> Figure:
    """Per model: accuracy of every deployment under each device model at the operating sigma
    (mean, 95 % CI, 5th percentile), and under drift as accuracy vs time after programming,
    without (solid) and with (dashed) global drift compensation."""
    models = [m for m in results.models if len(robustness_frame(results, m))] or results.models[:1]
    fig, axes = plt.subplots(len(models), 2, figsize=(15, 5.2 * len(models)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.6, 1]})
    handles: dict[str, Any] = {}
    for row, model in zip(axes, models):
        frame = robustness_frame(results, model)
        ax, ax_t = row
        if frame.empty:
            ax.text(0.5, 0.5, "robustness stage not run for this profile", ha="center",
                    transform=ax.transAxes)
            continue
        methods = list(dict.fromkeys(frame["method"]))
        static = _static(frame)
        scenarios = list(dict.fromkeys(static["scenario"]))
        width = 0.8 / max(1, len(methods))
        for j, method in enumerate(methods):
            color, marker = _robust_style(method)
            rows = static[static["method"] == method].set_index("scenario").reindex(scenarios)
            x = np.arange(len(scenarios)) - 0.4 + width * (j + 0.5)
            h = ax.errorbar(x, rows["acc_mean"], yerr=rows["acc_ci95"].fillna(0), fmt=marker,
                            color=color, ms=8, capsize=3, label=_robust_label(method, results, model))
            ax.scatter(x, rows["acc_p05"], marker=marker, facecolors="none", edgecolors=color, s=40)
            handles.setdefault(method, h)
        ax.set_xticks(np.arange(len(scenarios)))
        ax.set_xticklabels([textwrap.fill(s, 14) for s in scenarios], fontsize=9)
        ax.set_ylabel("test accuracy on chips")
        ax.set_title(f"{MODEL_LABELS.get(model, model)}: device models at sigma = "
                     f"{float(frame['sigma'].iloc[0]):g}")
        drift = _drifting(frame)
        if drift.empty:
            ax_t.text(0.5, 0.5, "no drift scenario", ha="center", transform=ax_t.transAxes)
            continue
        for method in methods:
            color, marker = _robust_style(method)
            for comp, style in ((False, "-"), (True, "--")):
                part = drift[(drift["method"] == method) & (drift["compensation"] == comp)]
                part = part.sort_values("time_s")
                if part.empty:
                    continue
                ax_t.errorbar(part["time_s"], part["acc_mean"], yerr=part["acc_ci95"].fillna(0),
                              fmt=marker + style, color=color, ms=6, capsize=2, lw=1.4)
        ax_t.set_xscale("log")
        ax_t.set_xlabel("time after programming (s)")
        ax_t.set_ylabel("test accuracy on chips")
        ax_t.set_title(f"{', '.join(dict.fromkeys(drift['scenario']))}: solid no compensation, "
                       f"dashed global compensation", fontsize=10)
    labels = [h.get_label() for h in handles.values()]
    _finish(fig, results, legend=(list(handles.values()), labels, 3),
            caption_text=robustness_caption(results, models[0]))
    return fig


def time_text(seconds: float) -> str:
    """A time after programming in readable units: '20 s', '1 h', '1 day', '30 days', '1 year'."""
    for unit, size in (("year", 365 * 86400), ("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            value = seconds / size
            text = f"{value:.3g}"
            plural = "s" if unit in ("year", "day") and text != "1" else ""
            return f"{text} {unit}{plural}"
    return f"{seconds:g} s"


def _condition_text(scenario: str, t: Any, comp: Any) -> str:
    if _missing(t):
        return scenario
    return f"{scenario}, {time_text(float(t))}, {'compensated' if comp else 'uncompensated'}"


def robustness_table(results: Results, model: str | None = None) -> pd.DataFrame:
    """Mean accuracy ± 95 % CI (5th percentile) of every deployment per device model and drift
    condition, one row per condition; narrow enough for a notebook panel (the device models on
    the condition's second line, the 5th percentile on each value's, and for one `model` no
    model column: the first column's header names it)."""
    out = []
    for m in ([model] if model else results.models):
        frame = robustness_frame(results, m)
        for (scenario, t, comp), part in frame.groupby(
                ["scenario", "time_s", "compensation"], dropna=False, sort=False):
            head = "condition (device models)"
            if model is not None:  # the model names the table
                head = f"{MODEL_LABELS.get(m, m)}: {head}"
            row = {head: f"{_condition_text(scenario, t, comp)}\n"
                         f"({part['device_model'].iloc[0]})"}
            if model is None:
                row["model"] = MODEL_LABELS.get(m, m)
            for _, r in part.iterrows():
                row[_robust_label(r["method"], results, m)] = (  # two lines: fits the panel
                    f"{_acc(r['acc_mean'], r['acc_ci95'])}\n(p5 {r['acc_p05']:.3f})")
            out.append(row)
    return pd.DataFrame(out)


def robustness_verdict(tsb: pd.Series, best: pd.Series) -> str:
    """'holds' (TSB above, 95 % intervals apart), 'breaks' (TSB below, apart), or 'unresolved'
    (the intervals overlap)."""
    if _overlap(tsb, best):
        return "unresolved"
    return "holds" if tsb["acc_mean"] > best["acc_mean"] else "breaks"


def robustness_sentence(results: Results, model: str) -> str:
    """Where TSB's advantage holds and where it breaks, from robustness.csv: per device model,
    TSB (a) against the most accurate deployment without write-verify (NIT, NIT + BN
    recalibration), in mean (95 % CI) and 5th-percentile chip accuracy, with full write-verify and
    TSB (b) beside it; drift at the longest time, without and with compensation."""
    frame = robustness_frame(results, model)
    if frame.empty:
        return f"{MODEL_LABELS.get(model, model)}: the robustness stage has not been run."
    no_wv = ["nit", "nit_bnrecal"]
    parts = []
    drift = _drifting(frame)
    last = drift["time_s"].max() if len(drift) else None
    conditions = [(s, None, None) for s in dict.fromkeys(_static(frame)["scenario"])]
    if last is not None:
        conditions += [(s, last, c) for s in dict.fromkeys(drift["scenario"])
                       for c in dict.fromkeys(drift["compensation"])]
    for scenario, t, comp in conditions:
        part = frame[frame["scenario"] == scenario]
        if t is not None:
            part = part[(part["time_s"] == t) & (part["compensation"] == comp)]
        by = {r["method"]: r for _, r in part.iterrows()}
        if "tsb" not in by or not any(m in by for m in no_wv):
            continue
        tsb = by["tsb"]
        best = max((by[m] for m in no_wv if m in by), key=lambda r: r["acc_mean"])
        verdict = robustness_verdict(tsb, best)
        label = _robust_label(best["method"], results, model)
        text = (f"{_condition_text(scenario, t, comp)}: TSB (a) {_acc(tsb['acc_mean'], tsb['acc_ci95'])} "
                f"(5th percentile {tsb['acc_p05']:.3f}) vs {label} "
                f"{_acc(best['acc_mean'], best['acc_ci95'])} ({best['acc_p05']:.3f}): advantage "
                + {"holds": "holds", "breaks": "breaks (TSB below)",
                   "unresolved": f"unresolved at {int(tsb['chips'])} chips (intervals overlap; TSB "
                                 f"{'ahead' if tsb['acc_mean'] > best['acc_mean'] else 'behind'})"}[verdict])
        if "full_wv" in by:
            text += f"; full write-verify {_acc(by['full_wv']['acc_mean'], by['full_wv']['acc_ci95'])}"
        if "tsb_gaussian" in by:
            g = by["tsb_gaussian"]
            text += f"; TSB (b) {_acc(g['acc_mean'], g['acc_ci95'])}"
        parts.append(text)
    return f"{MODEL_LABELS.get(model, model)}: " + ". ".join(parts) + "."
