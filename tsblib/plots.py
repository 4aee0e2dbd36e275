"""Figures and conclusion tables of the five figure notebooks (DESIGN.md section 7), read from results/<profile>/.
The notebooks only call these functions, so every figure and number can be rebuilt and tested without Jupyter."""
from __future__ import annotations

import functools
import json
import math
import os
import tempfile
import textwrap
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

# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

RESULT_FILES = {
    "summary": "summary.csv",
    "ablations": "ablations.csv",
    "training": "training.csv",
    "mapping": "mapping.csv",
    "overhead": "overhead.csv",
    "claims": "claims.json",
    "provenance": "provenance.json",
}
"""Attribute of `Results` -> file under results/<profile>/ it is read from."""

METHOD_LABELS = {
    "clean": "clean training",
    "nit": "NIT (noise-injection training)",
    "nit_bnrecal": "NIT + BN recalibration",
    "swim": "SWIM selective write-verify",
    "full_wv": "full write-verify",
    "nft_ovf": "NFT (variational forward)",
    "correctnet": "CorrectNet-style regulariser",
    "tsb": "TSB (our reading)",
    "tsb_backbone_only": "TSB backbone, no block",
    "tsb_backbone_bnrecal": "TSB backbone + BN recalibration",
}
"""Readable names of the deployment methods in summary.csv."""

METHOD_ORDER = ["clean", "nit", "nit_bnrecal", "swim", "full_wv", "nft_ovf", "correctnet", "tsb"]
"""Order in which methods are drawn and listed (DESIGN.md section 5)."""

_PALETTE = sns.color_palette("tab10")
METHOD_STYLE = {
    "clean": (_PALETTE[7], "o"),
    "nit": (_PALETTE[0], "s"),
    "nit_bnrecal": (_PALETTE[9], "D"),
    "swim": (_PALETTE[2], "^"),
    "full_wv": (_PALETTE[4], "v"),
    "nft_ovf": (_PALETTE[5], "P"),
    "correctnet": (_PALETTE[8], "X"),
    "tsb": (_PALETTE[3], "*"),
    "tsb_backbone_only": (_PALETTE[1], "h"),
    "tsb_backbone_bnrecal": (_PALETTE[6], "d"),
}
"""(colour, marker) of each method, the same in every figure."""

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
    "gap_improvement_own": "accuracy-gap improvement (own gap)",
    "gap_improvement_ideal": "accuracy-gap improvement (ideal gap)",
    "training_speedup": "training speedup (1 chip)",
    "wv_fraction_percent": "write-verified weights (%)",
    "mapping_cost_reduction": "mapping-cost reduction (time)",
}
"""The headline claims of the paper, in the order of its abstract."""

_CLAIM_UNITS = {"gap_improvement_own": "x", "gap_improvement_ideal": "x", "training_speedup": "x",
                "wv_fraction_percent": " %", "mapping_cost_reduction": "x"}


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
    """training.csv: per-epoch training curves."""
    mapping: pd.DataFrame
    """mapping.csv: expected mapping cost of every deployment plan and sigma."""
    overhead: pd.DataFrame
    """overhead.csv: weights and MACs added by the block."""
    claims: dict[str, Any]
    """claims.json: the headline claims, measured per model."""
    provenance: dict[str, Any]
    """provenance.json: the profile's configuration, data sources and machine."""

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

    def operating_sigma(self, model: str) -> float:
        """The sigma at which `model`'s claims are measured."""
        entry = self.claims.get("models", {}).get(model)
        if entry and "operating_sigma" in entry:
            return float(entry["operating_sigma"])
        return float(self.experiment(model)["evaluation"]["operating_sigma"])

    def swim_default_p(self, model: str) -> float:
        """The SWIM write-verify percentage drawn in the sigma sweep."""
        p = self.experiment(model).get("methods", {}).get("swim_default_p")
        if p is not None:
            return float(p)
        swim = self.summary[(self.summary["model"] == model) & (self.summary["method"] == "swim")]
        counts = swim.groupby("swim_p_percent")["sigma"].nunique()
        return float(counts.idxmax()) if len(counts) else float("nan")

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
    return pd.read_csv(path, keep_default_na=True)


def load_results(profile: str, results_dir: str | os.PathLike | None = None) -> Results:
    """Read results/<profile>/ (or `results_dir`) into a `Results`; a missing file raises
    FileNotFoundError naming it and the command that produces it."""
    folder = _resolve_results_dir(profile, results_dir)
    loaded: dict[str, Any] = {}
    for attr, name in RESULT_FILES.items():
        path = folder / name
        if not path.is_file():
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
    entry = results.claims.get("models", {}).get(model, {})
    base, tsb = entry.get("chips_baseline"), entry.get("chips_tsb")
    if base is None or tsb is None:
        rows = results.summary[(results.summary["model"] == model) & (results.summary["sigma"] > 0)]
        base = int(rows[~rows["method"].str.startswith("tsb")]["chips"].max()) if len(rows) else None
        tsb_rows = rows[rows["method"].str.startswith("tsb")]
        tsb = int(tsb_rows["chips"].max()) if len(tsb_rows) else None
    if tsb is None or tsb == base:
        return f"{base} chips per point"
    return f"{base} chips per point (TSB and its variants: {tsb})"


def caption(results: Results, model: str | None = None) -> str:
    """One line for the bottom of a figure: device-variation convention, data source, chips per
    point, what the shading means, and that these are our measurements, not the paper's."""
    models = [model] if model is not None else results.models
    conv = CONVENTION_LABELS.get(results.convention, f"sigma convention '{results.convention}'")
    dev = results.provenance.get("config", {}).get("device", {})
    bits = ""
    if dev.get("weight_bits") and dev.get("device_bits"):
        bits = f"{dev['weight_bits']}-bit weights on {dev['device_bits']}-bit devices, "
    parts = []
    for m in models:
        parts.append(f"{MODEL_LABELS.get(m, m)} on {results.dataset_name(m)}, {_chips_text(results, m)}")
    return (f"Device model: {bits}{conv}. Data: {'; '.join(parts)}. shaded: 95 % CI (bands and error bars). "
            f"Profile '{results.profile}': our measurements under our reading of TSB "
            f"(DESIGN.md s.3), not the paper's numbers.")


def _finish(fig: Figure, results: Results, right: float = 1.0,
            legend: tuple[list, list, int] | None = None) -> None:
    """Add the caption at the bottom of `fig` (and, if given, a legend of (handles, labels,
    columns) just above it) and lay the panels out above both."""
    width_in, height_in = fig.get_size_inches()
    text = textwrap.fill(caption(results), width=max(60, int(width_in * 14)))
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


def _label(method: str, results: Results | None = None, model: str | None = None) -> str:
    text = METHOD_LABELS.get(method, method)
    if method == "swim" and results is not None and model is not None:
        text += f" p={results.swim_default_p(model):g} %"
    return text


def _style(method: str) -> tuple[Any, str]:
    return METHOD_STYLE.get(method, ("0.4", "o"))


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
    present = set(_rows_at(results, model, sigma)["method"])
    return [m for m in METHOD_ORDER if m in present]


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


@_styled
def fig_accuracy_vs_sigma(results: Results) -> Figure:
    """Mean accuracy on chips vs device variation sigma, one panel per model, every method of the
    full sweep (SWIM at its default p), shaded 95 % confidence bands; dotted line: operating sigma."""
    models = results.models
    ncols = min(len(models), 3)
    nrows = math.ceil(len(models) / ncols)
    panel_w = 7.5 if ncols == 1 else 6.5
    fig, grid = plt.subplots(nrows, ncols, figsize=(panel_w * ncols + 3.6, 4.8 * nrows + 0.8),
                             squeeze=False)
    axes = grid.ravel()
    for ax in axes[len(models):]:
        fig.delaxes(ax)
    s = results.summary
    for ax, model in zip(axes, models):
        rows = s[s["model"] == model]
        for method in METHOD_ORDER:
            sub = rows[rows["method"] == method]
            if method == "swim":
                sub = sub[np.isclose(sub["swim_p_percent"], results.swim_default_p(model))]
            if sub["sigma"].nunique() < 2:
                continue
            sub = sub.sort_values("sigma")
            colour, marker = _style(method)
            lw = 2.8 if method == "tsb" else 1.6
            ax.plot(sub["sigma"], sub["acc_mean"], marker=marker, color=colour, lw=lw,
                    ms=10 if method == "tsb" else 6, label=_label(method, results, model),
                    zorder=3 if method == "tsb" else 2)
            ax.fill_between(sub["sigma"], sub["acc_mean"] - sub["acc_ci95"],
                            sub["acc_mean"] + sub["acc_ci95"], color=colour, alpha=0.15, lw=0)
        op = results.operating_sigma(model)
        ax.axvline(op, color="0.3", ls=":", lw=1.2)
        right_half = op > 0.5 * (rows["sigma"].min() + rows["sigma"].max())
        ax.annotate(f"operating sigma = {op:g}", xy=(op, 0.02), xycoords=("data", "axes fraction"),
                    xytext=(-4 if right_half else 4, 0), textcoords="offset points", fontsize=9,
                    color="0.3", ha="right" if right_half else "left")
        ax.set_xlabel(f"device variation sigma ({CONVENTION_LABELS.get(results.convention, results.convention)})")
        ax.set_ylabel("mean accuracy on chips")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{MODEL_LABELS.get(model, model)} on {results.dataset_name(model)}")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", frameon=True, fontsize=10,
               title="method", title_fontsize=10)
    fig.suptitle("Accuracy under device variation (mean over chips, 95 % CI)", fontsize=14)
    _finish(fig, results, right=1 - 3.6 / fig.get_size_inches()[0])
    return fig


def _improvement(base_gap: float, tsb_gap: float) -> str:
    """Baseline gap / TSB gap as text; a ratio with a gap <= 0 is not meaningful and is named."""
    if tsb_gap <= 0:
        return "TSB gap <= 0" if base_gap > 0 else "both gaps <= 0"
    if base_gap <= 0:
        return "gap <= 0, no ratio"
    return f"x{base_gap / tsb_gap:.1f} vs TSB"


@_styled
def fig_accuracy_gap(results: Results) -> Figure:
    """Accuracy gap of each method at the operating sigma under both definitions (own: the
    deployed model's noise-free accuracy minus its accuracy on chips; ideal: the clean-trained
    model's accuracy minus it), with each baseline's gap divided by TSB's annotated."""
    models = results.models
    fig, axes = plt.subplots(len(models), 2, figsize=(15, 5.2 * len(models) + 0.8), squeeze=False)
    for row, model in enumerate(models):
        sigma = results.operating_sigma(model)
        methods = _deployed_methods(results, model, sigma)
        methods = [m for m in methods if m != "tsb"] + ["tsb"] if "tsb" in methods else methods
        data = [_method_row(results, model, m, sigma) for m in methods]
        tsb = _method_row(results, model, "tsb", sigma)
        for col, (kind, title) in enumerate([("gap_own", "own gap: noise-free acc. of the deployed model - acc. on chips"),
                                             ("gap_ideal", "ideal gap: clean-trained model's acc. - acc. on chips")]):
            ax = axes[row][col]
            values = np.array([100 * d[kind] for d in data])
            errs = np.array([100 * d["acc_ci95"] for d in data])
            y = np.arange(len(methods))
            colours = [_style(m)[0] for m in methods]
            ax.barh(y, values, xerr=errs, color=colours, alpha=0.85, capsize=3,
                    edgecolor="black", linewidth=[2.0 if m == "tsb" else 0.0 for m in methods])
            ax.set_yticks(y, [_label(m, results, model) for m in methods] if col == 0 else [])
            ax.axvline(0, color="0.2", lw=0.8)
            ax.invert_yaxis()
            lo = min(0.0, float(np.min(values - errs)))
            hi = max(1.0, float(np.max(values + errs)))
            ax.set_xlim(lo - 0.05 * (hi - lo), hi + 0.42 * (hi - lo))
            for yi, m, v, e in zip(y, methods, values, errs):
                text = f"{v:.1f}"
                if tsb is not None and m != "tsb":
                    text += f"  ({_improvement(float(data[methods.index(m)][kind]), float(tsb[kind]))})"
                ax.text(max(v + e, 0) + 0.01 * (hi - lo), yi, text, va="center", fontsize=9)
            ax.set_xlabel("accuracy gap (percentage points)")
            ax.set_title(f"{MODEL_LABELS.get(model, model)}, sigma = {sigma:g}\n{title}", fontsize=11)
    fig.suptitle("Accuracy gap at the operating point (lower is better); "
                 "x N = baseline gap / TSB gap", fontsize=14)
    _finish(fig, results)
    return fig


def _early_epoch(results: Results, model: str) -> int:
    row = _method_row(results, model, "tsb", results.operating_sigma(model))
    if row is not None and not pd.isna(row["train_epochs"]):
        return int(row["train_epochs"])
    exp = results.experiment(model)
    return max(1, math.ceil(exp["methods"]["tsb_early_fraction"] * exp["train"]["epochs"] - 1e-9))


def _sigma_train(results: Results, model: str) -> float:
    exp = results.experiment(model)
    return float(exp.get("train", {}).get("sigma_train", results.operating_sigma(model)))


def _tsb_point_sigma(results: Results, model: str) -> float:
    """Sigma at which the TSB marker of the training figure is taken: sigma_train when the sweep
    has it (the training curves are measured there), else the operating sigma."""
    st = _sigma_train(results, model)
    return st if _method_row(results, model, "tsb", st) is not None else results.operating_sigma(model)


@_styled
def fig_training_cost(results: Results) -> Figure:
    """Accuracy under variation (at sigma_train) during training, vs epochs and vs seconds: the full
    NIT schedule against the TSB pipeline (NIT stopped early, then per-chip block fine-tuning)."""
    models = results.models
    fig, axes = plt.subplots(len(models), 2, figsize=(15, 5.6 * len(models) + 0.8), squeeze=False)
    t = results.training
    for row, model in enumerate(models):
        early = _early_epoch(results, model)
        sigma = _tsb_point_sigma(results, model)
        tsb = _method_row(results, model, "tsb", sigma)
        nit_final = _method_row(results, model, "nit", sigma)
        rows = t[t["model"] == model]
        speed = results.claims.get("models", {}).get(model, {}).get("training_speedup", {})
        for col, xkey in enumerate(["epoch", "seconds"]):
            ax = axes[row][col]
            for method in ["clean", "nft_ovf", "correctnet", "nit"]:
                sub = rows[rows["method"] == method].sort_values("epoch")
                if sub.empty:
                    continue
                colour, marker = _style(method)
                main = method == "nit"
                ax.plot(sub[xkey], sub["var_acc_mean"], color=colour, lw=2.2 if main else 1.0,
                        alpha=1.0 if main else 0.55, marker=marker, ms=4 if main else 3,
                        label=f"{METHOD_LABELS[method]} (training curve)")
                if main:
                    ax.fill_between(sub[xkey], sub["var_acc_mean"] - sub["var_acc_ci95"],
                                    sub["var_acc_mean"] + sub["var_acc_ci95"], color=colour,
                                    alpha=0.15, lw=0)
                    back = sub[sub["epoch"] <= early]
                    ax.plot(back[xkey], back["var_acc_mean"], color=_style("tsb")[0], lw=5,
                            alpha=0.45, solid_capstyle="round",
                            label=(f"TSB backbone = NIT stopped at epoch {early}" if len(models) == 1
                                   else "TSB backbone = NIT stopped early"))
            if nit_final is not None:
                x = nit_final["train_epochs"] if xkey == "epoch" else nit_final["train_seconds"]
                ax.errorbar([x], [nit_final["acc_mean"]], yerr=[nit_final["acc_ci95"]], fmt="s",
                            color=_style("nit")[0], ms=9, capsize=4, mec="black",
                            label=f"NIT deployed ({int(nit_final['chips'])} chips)")
            if tsb is not None:
                ft = float(tsb["finetune_seconds_per_chip"]) if not pd.isna(tsb["finetune_seconds_per_chip"]) else 0.0
                x = tsb["train_epochs"] if xkey == "epoch" else tsb["train_seconds"] + ft
                back = rows[(rows["method"] == "nit") & (rows["epoch"] == early)]
                if len(back):
                    x0 = back["epoch" if xkey == "epoch" else "seconds"].iloc[0]
                    ax.annotate("", xy=(x, tsb["acc_mean"]), xytext=(x0, back["var_acc_mean"].iloc[0]),
                                arrowprops=dict(arrowstyle="->", color=_style("tsb")[0], lw=1.5, ls="--"))
                ax.errorbar([x], [tsb["acc_mean"]], yerr=[tsb["acc_ci95"]], fmt="*",
                            color=_style("tsb")[0], ms=18, capsize=4, mec="black",
                            label=f"TSB after per-chip fine-tuning ({int(tsb['chips'])} chips)")
            if xkey == "epoch":
                ax.set_xlabel("training epochs (TSB: backbone epochs; block fine-tuning per chip not counted)")
            else:
                ax.set_xlabel("training seconds (TSB: backbone + fine-tuning of one chip)")
            ax.set_ylabel(f"mean accuracy on chips, sigma = {sigma:g}")
            ax.set_ylim(0, 1.02)
            if xkey == "epoch":
                ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.set_title(f"{MODEL_LABELS.get(model, model)}: accuracy under variation vs "
                         f"{'epochs' if xkey == 'epoch' else 'wall-clock seconds'}", fontsize=11)
            if speed and col == 1:
                lines = []
                if speed.get("measured") is not None:
                    lines.append(f"speedup (1 chip): x{speed['measured']:.2f}")
                elif speed.get("unbounded"):
                    lines.append("speedup (1 chip): unbounded")
                if speed.get("epochs_ratio") is not None:
                    lines.append(f"epochs ratio: x{speed['epochs_ratio']:.2f}")
                if speed.get("amortised") is not None:
                    lines.append(f"amortised over {speed.get('amortised_chips')} chips: "
                                 f"x{speed['amortised']:.2f}")
                ax.text(0.98, 0.04, "\n".join(lines), transform=ax.transAxes, ha="right",
                        va="bottom", fontsize=10,
                        bbox=dict(boxstyle="round", fc="white", ec="0.6", alpha=0.9))
            if speed and col == 0 and speed.get("epochs_ratio") is not None:
                ax.text(0.98, 0.04, f"epochs ratio NIT / TSB backbone: x{speed['epochs_ratio']:.2f}",
                        transform=ax.transAxes, ha="right", va="bottom", fontsize=10,
                        bbox=dict(boxstyle="round", fc="white", ec="0.6", alpha=0.9))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.suptitle("Training cost: full NIT vs the TSB pipeline "
                 "(curves: accuracy on a few chips after each epoch, shaded 95 % CI)", fontsize=13)
    _finish(fig, results, legend=(handles, labels, 3))
    return fig


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
                        "acc_mean": r["acc_mean"], "acc_ci95": r["acc_ci95"], "chips": r["chips"],
                        "wv_fraction": r["wv_fraction"], "time_s": r["mapping_time_s"],
                        "energy_j": r["mapping_energy_j"]})
    return pd.DataFrame(out)


@_styled
def fig_mapping_cost(results: Results) -> Figure:
    """Accuracy at the operating sigma against the expected time and energy of programming the
    whole model onto devices: no verify (NIT), SWIM at each p, full write-verify, TSB."""
    models = results.models
    fig, axes = plt.subplots(len(models), 2, figsize=(15, 5.6 * len(models) + 0.8), squeeze=False)
    for row, model in enumerate(models):
        pts = _mapping_points(results, model)
        sigma = results.operating_sigma(model)
        for col, (key, unit) in enumerate([("time_s", "mapping time (s)"), ("energy_j", "mapping energy (J)")]):
            ax = axes[row][col]
            swim = pts[pts["method"] == "swim"]
            if len(swim):
                colour, marker = _style("swim")
                ax.errorbar(swim[key], swim["acc_mean"], yerr=swim["acc_ci95"], color=colour,
                            marker=marker, ms=8, capsize=3, lw=1.6, label="SWIM, top p % verified")
                for _, r in swim.iterrows():
                    ax.annotate(f"p={r['swim_p_percent']:g} %", (r[key], r["acc_mean"]),
                                xytext=(6, -14), textcoords="offset points", fontsize=9,
                                color=colour)
            for method, text in [("nit", "no verify (NIT)"), ("full_wv", "full write-verify"),
                                 ("tsb", "TSB: block verified")]:
                sub = pts[pts["method"] == method]
                if sub.empty:
                    continue
                colour, marker = _style(method)
                ax.errorbar(sub[key], sub["acc_mean"], yerr=sub["acc_ci95"], fmt=marker,
                            color=colour, ms=16 if method == "tsb" else 10, capsize=4,
                            mec="black", label=f"{text} ({int(sub['chips'].iloc[0])} chips)")
            ax.set_xscale("log")
            lo, hi = pts[key].min(), pts[key].max()
            ax.set_xlim(lo / 2.5, hi * 2.5)
            ax.set_xlabel(f"expected {unit}, log scale")
            ax.set_ylabel(f"mean accuracy on chips, sigma = {sigma:g}")
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
    r0 = 0
    for model in models:
        frame = _ablation_frame(results, model)
        sigma = results.operating_sigma(model)
        default = frame[frame["ablation"] == "default"]
        backbone = frame[frame["method"] == "tsb_backbone_only"]
        low = float((frame["acc_mean"] - frame["acc_ci95"]).min())
        high = float((frame["acc_mean"] + frame["acc_ci95"]).max())
        pad = 0.1 * max(high - low, 0.05)
        ylim = (max(0.0, low - pad), min(1.02, high + pad))
        for i, family in enumerate(families[model]):
            ax = axes[r0 + i // ncols][i % ncols]
            sub = frame[frame["ablation"] == family]
            sub = sub.iloc[sorted(range(len(sub)), key=lambda k: _setting_sort_key(sub["setting"].iloc[k]))]
            x = np.arange(len(sub))
            for xi, (_, r) in enumerate(sub.iterrows()):
                is_default = r["setting"].endswith("(default)") or r["method"] == "tsb"
                colour, marker = _style("tsb" if is_default else r["method"]) if (
                    is_default or r["method"] in METHOD_STYLE) else (_PALETTE[0], "o")
                ax.errorbar([xi], [r["acc_mean"]], yerr=[r["acc_ci95"]], fmt=marker if marker != "*" else "o",
                            color=colour, ms=9, capsize=5, lw=2, mec="black", zorder=3)
                ax.annotate(f"{r['acc_mean']:.3f} ± {r['acc_ci95']:.3f}\n({int(r['chips'])} chips)",
                            (xi, r["acc_mean"]), xytext=(9, 0), textcoords="offset points",
                            va="center", ha="left", fontsize=8.5)
            if len(default):
                d = default.iloc[0]
                ax.axhline(d["acc_mean"], color=_style("tsb")[0], lw=1.5, zorder=1)
                ax.axhspan(d["acc_mean"] - d["acc_ci95"], d["acc_mean"] + d["acc_ci95"],
                           color=_style("tsb")[0], alpha=0.12, lw=0, zorder=0)
            if len(backbone):
                b = backbone.iloc[0]
                ax.axhline(b["acc_mean"], color=_style("tsb_backbone_only")[0], ls="--", lw=1.5, zorder=1)
            ax.set_xticks(x, [textwrap.fill(s, 14) for s in sub["setting"]], fontsize=9.5)
            ax.set_xlim(-0.5, len(sub) - 0.2)
            ax.set_ylim(*ylim)
            ax.set_ylabel(f"mean accuracy, sigma = {sigma:g}" if i % ncols == 0 else "")
            ax.set_title(f"{MODEL_LABELS.get(model, model)}: {ABLATION_LABELS[family]}", fontsize=11)
        for j in range(len(families[model]), nrows_per[model] * ncols):
            fig.delaxes(axes[r0 + j // ncols][j % ncols])
        r0 += nrows_per[model]
    handles = [matplotlib.lines.Line2D([], [], color=_style("tsb")[0], lw=1.5),
               matplotlib.lines.Line2D([], [], color=_style("tsb_backbone_only")[0], ls="--", lw=1.5),
               matplotlib.lines.Line2D([], [], color=_style("tsb")[0], marker="o", ls="", mec="black"),
               matplotlib.lines.Line2D([], [], color=_PALETTE[0], marker="o", ls="", mec="black")]
    labels = ["default TSB (band: its 95 % CI)", "early backbone without block",
              "default setting", "varied setting"]
    fig.suptitle("Ablations of TSB at the operating sigma (points: mean accuracy on chips, "
                 "bars: 95 % CI; y axis zoomed)", fontsize=13)
    _finish(fig, results, legend=(handles, labels, 4))
    return fig


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def save_figure(fig: Figure, results: Results, name: str) -> list[Path]:
    """Write results/<profile>/figures/<name>.png (150 dpi) and .pdf atomically, without dates
    or version stamps, so the same figure gives the same bytes; returns the two paths."""
    folder = Path(results.results_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, metadata in (("png", {"Software": None}),
                          ("pdf", {"Creator": None, "Producer": None, "CreationDate": None})):
        target = folder / f"{name}.{fmt}"
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        try:
            with matplotlib.rc_context({"svg.hashsalt": "tsb", "pdf.compression": 6}):
                fig.savefig(tmp, format=fmt, dpi=150, metadata=metadata)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        written.append(target)
    return written


# --------------------------------------------------------------------------------------------
# Tables (strings with fixed decimals, so printed outputs are stable)
# --------------------------------------------------------------------------------------------


def _acc(mean: float, ci: float) -> str:
    return f"{mean:.3f} ± {ci:.3f}"


def _num(x: Any, fmt: str = ".3f", missing: str = "-") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return missing
    return format(float(x), fmt)


def _meets(measured: float | None, unbounded: bool, paper_claim: str) -> str:
    op, _, threshold = paper_claim.strip().partition(" ")
    thr = float(threshold)
    if unbounded:
        return "pass" if op == ">" else "falls short"
    if measured is None or (isinstance(measured, float) and math.isnan(measured)):
        return "n/a"
    ok = measured > thr if op == ">" else measured < thr
    return "pass" if ok else "falls short"


def claims_table(results: Results) -> pd.DataFrame:
    """The headline claims per model: claim, model, the paper's claim, our measured value and
    whether it meets the claim ('pass' / 'falls short'), recomputed from the measured value."""
    rows = []
    for model, entry in results.claims.get("models", {}).items():
        for key, label in CLAIM_LABELS.items():
            c = entry.get(key)
            if c is None:
                continue
            unit = _CLAIM_UNITS[key]
            op, _, thr = c["paper_claim"].partition(" ")
            paper = f"{op} {float(thr):g}{unit.strip() if unit == 'x' else unit}"
            if c.get("unbounded"):
                measured = "unbounded (TSB gap <= 0)" if key.startswith("gap") else "unbounded"
            elif c.get("measured") is None:
                measured = "n/a"
            else:
                digits = ".3f" if key == "wv_fraction_percent" else ".2f"
                measured = f"{format(float(c['measured']), digits)}{unit.strip() if unit == 'x' else unit}"
            rows.append({"claim": label, "model": MODEL_LABELS.get(model, model),
                         "paper's claim": paper, "our measured value": measured,
                         "meets?": _meets(c.get("measured"), bool(c.get("unbounded")), c["paper_claim"])})
    return pd.DataFrame(rows, columns=["claim", "model", "paper's claim", "our measured value", "meets?"])


def claims_definitions(results: Results) -> pd.DataFrame:
    """How each headline claim is measured (from claims.json), one row per claim."""
    rows = {}
    for entry in results.claims.get("models", {}).values():
        for key, label in CLAIM_LABELS.items():
            c = entry.get(key)
            if c is not None and label not in rows:
                definition = c.get("definition", "")
                if key == "training_speedup" and c.get("amortised_definition"):
                    definition += f"; amortised: {c['amortised_definition']}"
                rows[label] = {"claim": label, "paper's wording": c.get("paper_wording", ""),
                               "definition": definition}
    return pd.DataFrame(list(rows.values()), columns=["claim", "paper's wording", "definition"])


def operating_point_table(results: Results, model: str) -> pd.DataFrame:
    """Every deployment method of `model` at its operating sigma: chips, noise-free and on-chip
    accuracy, both gaps, write-verified fraction, mapping time, training epochs and seconds."""
    sigma = results.operating_sigma(model)
    rows = _rows_at(results, model, sigma)
    order = {m: i for i, m in enumerate(METHOD_ORDER + ["tsb_backbone_only", "tsb_backbone_bnrecal"])}
    rows = rows[rows["method"].isin(order)].copy()
    rows["_o"] = rows["method"].map(order)
    rows = rows.sort_values(["_o", "swim_p_percent"])
    out = []
    for _, r in rows.iterrows():
        name = METHOD_LABELS.get(r["method"], r["method"])
        if r["method"] == "swim":
            name += f" p={r['swim_p_percent']:g} %"
        out.append({"method": name, "chips": str(int(r["chips"])),
                    "noise-free acc": _num(r["clean_acc"]),
                    "acc on chips ± CI95": _acc(r["acc_mean"], r["acc_ci95"]),
                    "gap own": _num(r["gap_own"]), "gap ideal": _num(r["gap_ideal"]),
                    "verified %": _num(100 * r["wv_fraction"], ".3f"),
                    "mapping time (s)": _num(r["mapping_time_s"], ".3e"),
                    "train epochs": str(int(r["train_epochs"])),
                    "train s": _num(r["train_seconds"], ".1f")})
    return pd.DataFrame(out)


def speedup_table(results: Results) -> pd.DataFrame:
    """Training cost per model: NIT's full schedule vs the TSB backbone plus per-chip fine-tuning,
    and the speedups (one chip, epochs, amortised over the configured number of chips)."""
    out = []
    for model in results.models:
        sigma = results.operating_sigma(model)
        nit, tsb = _method_row(results, model, "nit", sigma), _method_row(results, model, "tsb", sigma)
        if nit is None or tsb is None:
            continue
        c = results.claims.get("models", {}).get(model, {}).get("training_speedup", {})
        ft = tsb["finetune_seconds_per_chip"]

        def ratio(key: str) -> str:
            if c.get("unbounded") and key == "measured":
                return "unbounded"
            return _num(c.get(key), ".2f") + ("x" if c.get(key) is not None else "")

        out.append({"model": MODEL_LABELS.get(model, model),
                    "NIT epochs": str(int(nit["train_epochs"])),
                    "NIT s": _num(nit["train_seconds"], ".1f"),
                    "TSB backbone epochs": str(int(tsb["train_epochs"])),
                    "TSB backbone s": _num(tsb["train_seconds"], ".1f"),
                    "fine-tune s/chip": _num(ft, ".2f"),
                    "speedup (1 chip)": ratio("measured"),
                    "epochs ratio": ratio("epochs_ratio"),
                    f"amortised ({c.get('amortised_chips', '?')} chips)": ratio("amortised")})
    return pd.DataFrame(out)


def mapping_table(results: Results, model: str | None = None) -> pd.DataFrame:
    """Mapping cost at the operating sigma (mapping.csv) of each plan next to its accuracy on
    chips (summary.csv): verified weights, write pulses, reads, time and energy."""
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
                    "tsb": "TSB (block verified)"}.get(r["plan"], f"SWIM p={r['swim_p_percent']:g} %")
            out.append({"model": MODEL_LABELS.get(m, m), "plan": plan,
                        "verified weights": f"{int(r['verified_weights'])} / {int(r['weights'])}",
                        "write pulses": _num(r["write_pulses"], ".4g"), "reads": _num(r["reads"], ".4g"),
                        "time (s)": _num(r["time_s"], ".3e"), "energy (J)": _num(r["energy_j"], ".3e"),
                        "acc on chips ± CI95": (_acc(match["acc_mean"].iloc[0], match["acc_ci95"].iloc[0])
                                                if len(match) else "-")})
    return pd.DataFrame(out)


def ablation_table(results: Results, model: str | None = None) -> pd.DataFrame:
    """Every ablation setting at the operating sigma: family, setting, accuracy ± CI, chips,
    write-verified fraction and fine-tuning seconds per chip."""
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
                            "verified %": _num(100 * r["wv_fraction"], ".3f"),
                            "fine-tune s/chip": _num(r["finetune_seconds_per_chip"], ".2f")})
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# Sentences for the notebooks' conclusions (computed from the numbers)
# --------------------------------------------------------------------------------------------


def _describe(row: pd.Series | None, label: str) -> str:
    if row is None:
        return f"{label}: not measured"
    return f"{label} {row['acc_mean']:.3f} ± {row['acc_ci95']:.3f} ({int(row['chips'])} chips)"


def accuracy_sentence(results: Results, model: str) -> str:
    """TSB vs NIT and the best other method at the operating sigma, in one sentence."""
    sigma = results.operating_sigma(model)
    tsb, nit = _method_row(results, model, "tsb", sigma), _method_row(results, model, "nit", sigma)
    rows = _rows_at(results, model, sigma)
    others = rows[rows["method"].isin([m for m in METHOD_ORDER if m not in ("tsb",)])]
    text = (f"{MODEL_LABELS.get(model, model)} at sigma = {sigma:g}: mean accuracy on chips "
            f"{_describe(tsb, 'TSB')} vs {_describe(nit, 'NIT')}.")
    if len(others):
        best = others.sort_values(["acc_mean", "method"], ascending=[False, True]).iloc[0]
        label = METHOD_LABELS.get(best["method"], best["method"])
        if best["method"] == "swim":
            label += f" p={best['swim_p_percent']:g} %"
        text += f" Best non-TSB method: {_describe(best, label)}."
        if tsb is not None:
            diff = tsb["acc_mean"] - best["acc_mean"]
            overlap = abs(diff) <= tsb["acc_ci95"] + best["acc_ci95"]
            text += (f" TSB is {abs(diff):.3f} {'above' if diff >= 0 else 'below'} it"
                     f"{' (confidence intervals overlap)' if overlap else ''}.")
    return text


def gap_sentence(results: Results, model: str) -> str:
    """Both gap improvements of TSB over NIT and whether they meet the paper's 'over 20x'."""
    entry = results.claims.get("models", {}).get(model, {})
    parts = []
    for key, name in (("gap_improvement_own", "own"), ("gap_improvement_ideal", "ideal")):
        c = entry.get(key)
        if c is None:
            continue
        value = "unbounded" if c.get("unbounded") else (f"x{c['measured']:.2f}" if c.get("measured") is not None else "n/a")
        parts.append(f"{name}-gap improvement over NIT {value} "
                     f"({_meets(c.get('measured'), bool(c.get('unbounded')), c['paper_claim'])} "
                     f"against the paper's {c['paper_claim']}x)")
    return f"{MODEL_LABELS.get(model, model)} at sigma = {results.operating_sigma(model):g}: " + "; ".join(parts) + "."


def training_sentence(results: Results, model: str) -> str:
    """NIT's training cost vs the TSB pipeline's, with the speedup, in one sentence."""
    sigma = results.operating_sigma(model)
    nit, tsb = _method_row(results, model, "nit", sigma), _method_row(results, model, "tsb", sigma)
    if nit is None or tsb is None:
        return f"{MODEL_LABELS.get(model, model)}: NIT or TSB not measured."
    c = results.claims.get("models", {}).get(model, {}).get("training_speedup", {})
    ft = 0.0 if pd.isna(tsb["finetune_seconds_per_chip"]) else float(tsb["finetune_seconds_per_chip"])
    speed = "unbounded" if c.get("unbounded") else _num(c.get("measured"), ".2f") + "x"
    return (f"{MODEL_LABELS.get(model, model)}: NIT trains {int(nit['train_epochs'])} epochs in "
            f"{nit['train_seconds']:.1f} s and reaches {_acc(nit['acc_mean'], nit['acc_ci95'])}; the TSB "
            f"backbone stops after {int(tsb['train_epochs'])} epochs ({tsb['train_seconds']:.1f} s), plus "
            f"{ft:.2f} s of block fine-tuning per chip, and reaches {_acc(tsb['acc_mean'], tsb['acc_ci95'])} "
            f"at sigma = {sigma:g}: speedup {speed} for one chip "
            f"({_meets(c.get('measured'), bool(c.get('unbounded')), c.get('paper_claim', '> 5'))} "
            f"against the paper's {c.get('paper_claim', '> 5')}x).")


def mapping_sentence(results: Results, model: str) -> str:
    """TSB's mapping time and accuracy against full write-verify and no verify, in one sentence."""
    pts = _mapping_points(results, model).set_index("plan", drop=False)
    if not {"tsb", "full_wv", "no_verify"} <= set(pts["plan"]):
        return f"{MODEL_LABELS.get(model, model)}: mapping points incomplete."
    t, f, n = pts.loc["tsb"], pts.loc["full_wv"], pts.loc["no_verify"]
    return (f"{MODEL_LABELS.get(model, model)} at sigma = {results.operating_sigma(model):g}: TSB maps in "
            f"{t['time_s']:.3e} s ({f['time_s'] / t['time_s']:.2f}x less than full write-verify, "
            f"{t['time_s'] / n['time_s']:.2f}x the no-verify time) and reaches "
            f"{_acc(t['acc_mean'], t['acc_ci95'])}, vs full write-verify {_acc(f['acc_mean'], f['acc_ci95'])} "
            f"and no verify {_acc(n['acc_mean'], n['acc_ci95'])}.")


def ablation_sentence(results: Results, model: str) -> str:
    """The best and worst ablation setting against the default TSB, in one sentence."""
    frame = _ablation_frame(results, model)
    default = frame[frame["ablation"] == "default"]
    variants = frame[~frame["ablation"].isin(["default"]) & ~frame["setting"].str.endswith("(default)")]
    if default.empty or variants.empty:
        return f"{MODEL_LABELS.get(model, model)}: no ablations measured."
    d = default.iloc[0]
    ordered = variants.sort_values(["acc_mean", "method"], ascending=[False, True])
    best, worst = ordered.iloc[0], ordered.iloc[-1]

    def name(r: pd.Series) -> str:
        return f"{ABLATION_LABELS.get(r['ablation'], r['ablation'])} = {r['setting']}"

    return (f"{MODEL_LABELS.get(model, model)} at sigma = {results.operating_sigma(model):g}: default TSB "
            f"{_acc(d['acc_mean'], d['acc_ci95'])}; best variant {name(best)} "
            f"{_acc(best['acc_mean'], best['acc_ci95'])}; worst {name(worst)} "
            f"{_acc(worst['acc_mean'], worst['acc_ci95'])}.")
