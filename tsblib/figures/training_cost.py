"""Figure 3: training cost, NIT epoch by epoch against TSB from backbones of several ages, FLOPs to
equal accuracy, the recipe and beta sweeps and the selection tables."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.lines
import matplotlib.ticker
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from tsblib.figures.common import (MODEL_LABELS, _acc, _ci, _compare, _early_epoch,
                                   _finetune_epochs, _finish, _method_row, _missing, _num, _style,
                                   _styled, method_label)
from tsblib.figures.loader import Results
from tsblib.headline import measured_text, ratio_text, verdict_text
from tsblib.methods import registry

NAME = "training_cost"
"""The figure's name: its notebook notebooks/training_cost.ipynb, its DVC stage figure@training_cost."""
ORDER = 3
"""Its number in DESIGN section 7 (the order of the figure stages)."""


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


def _tsb_pipeline_flops(results: Results, model: str) -> float | None:
    """FLOPs of the TSB pipeline for one chip (backbone + one chip's fine-tuning at the images
    and passes used), from claims.json."""
    value = results.claims_of(model)["training_speedup"]["tsb_flops_one_chip"]
    return None if _missing(value) else float(value)


def _speedup_box(c: dict[str, Any], results: Results, model: str) -> str:
    """The speed-up box of the training-cost figure: the equal-accuracy FLOPs ratio (the
    verdict), then the amortised ratio and the ratio at NIT's selected epoch (the wall-clock
    seconds depend on the machine's load and stay out of the figure)."""
    verdict = (f"-> {verdict_text(c['meets_claim'], c['verdict_reason'])} "
               f"(paper: {c['paper_claim']}x)")
    lines = ["training speed-up at equal accuracy (1 chip):",
             f"  FLOPs: {measured_text('training_speedup', c)}",
             *textwrap.wrap(verdict, 56, initial_indent="  ", subsequent_indent="     ")]
    am = (c.get("amortised") or {}).get("measured")  # absent without the trajectory
    if am is not None:
        lines.append(f"  amortised over {c['amortised_chips']} chips: {ratio_text(am)}")
    if c["selected_epoch_ratio"] is not None:
        lines.append(f"  at NIT's selected epoch: {ratio_text(c['selected_epoch_ratio'])} (capped")
        lines.append("  by the fixed early fraction; not a verdict)")
    return "\n".join(lines)


def _draw_training_curves(ax_epochs: Any, ax_flops: Any, results: Results, model: str) -> None:
    """Validation accuracy on chips of every training run vs epochs and vs training FLOPs (not
    wall-clock seconds, which vary with the machine's load), the deployed epoch of each marked,
    NIT's early snapshot (the TSB backbone) and TSB after fine-tuning."""
    t = results.training[results.training["model"] == model].copy()
    runs = results.flops[results.flops["model"] == model]
    t["flops"] = t["epoch"] * t["method"].map(runs.set_index("run")["flops_per_epoch"])
    early = _early_epoch(results, model)
    ft_epochs = _finetune_epochs(results, model)
    sigma_train = results.sigma_train(model)
    tsb_row = _method_row(results, model, "tsb", results.operating_sigma(model))
    point = _tsb_end_point(results, model)
    tsb_colour = _style("tsb")[0]
    speed = results.claims_of(model)["training_speedup"]
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
    if not results.claims_of(model)["trajectory"]:  # else beside the trajectory
        ax_flops.text(0.98, 0.04, _speedup_box(speed, results, model), transform=ax_flops.transAxes,
                        ha="right", va="bottom", fontsize=9.5, family="monospace",
                        bbox=dict(boxstyle="round", fc="white", ec="0.6", alpha=0.92))


_SWEEP_COLOURS = sns.color_palette("Dark2")


_BETA_STYLES = ["-", "--", ":", "-."]


def _stated_candidate(results: Results, model: str, method: str) -> str | None:
    """The stated candidate of `method`'s validation sweep (claims.json `selection`), or None."""
    # `selection` has an entry for each method with a validation sweep in recipes.csv only
    check = results.claims_of(model)["selection"].get(method)
    return None if check is None else str(check["stated"])


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
    trajectory = {m: bool(results.claims_of(m)["trajectory"]) for m in models}
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
    chips = {results.experiment(m).train.val_chips for m in models}
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
    speed = c["training_speedup"]
    traj = pd.DataFrame(c["trajectory"])
    per_epoch = float(speed["nit_flops_per_epoch"])
    ft = float(speed["tsb_finetune_flops_per_chip"])
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
    tsb = c["tsb"]
    ax_curve.axhline(tsb["acc_mean"], color=_style("tsb")[0], ls=":", lw=1.2,
                     label=f"TSB as deployed: {_acc(tsb['acc_mean'], tsb['acc_ci95'])}")
    ax_curve.set_xscale("log")
    ax_curve.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no crowded labels
    ax_curve.set_xlabel("training FLOPs, log scale (TSB: backbone + one chip's fine-tuning)")
    ax_curve.set_ylabel(f"test split: mean accuracy on {c['chips_tsb']} paired chips,\n"
                        f"sigma = {results.operating_sigma(model):g}")
    ax_curve.set_title(f"{MODEL_LABELS.get(model, model)}: accuracy on chips vs training cost "
                       "(equal-accuracy reading)", fontsize=11)
    ax_curve.legend(loc="lower right", fontsize=8.5, framealpha=0.9)
    ax_text.axis("off")
    lines = [_speedup_box(speed, results, model), "",
             f"NIT FLOPs per epoch: {per_epoch:.3e}",
             f"one chip's fine-tuning: {ft:.3e} FLOPs",
             f"  ({speed['tsb_finetune_images']} images x "
             f"{speed['tsb_finetune_passes']} passes)",
             "",
             textwrap.fill("A fixed early fraction alone caps 'NIT at its selected epoch / TSB' "
                           "near 1 / fraction; the verdict reads NIT's FLOPs to first reach TSB's "
                           "accuracy on the same chips instead.", 58)]
    ax_text.text(0.0, 0.95, "\n".join(lines), va="top", ha="left", family="monospace",
                 fontsize=9.5, transform=ax_text.transAxes)


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
        c = results.claims_of(model)["training_speedup"]
        eq = c.get("equal_accuracy")  # absent without the trajectory
        reached = eq["measured_nit_epochs"] if eq else None
        out.append({"model": MODEL_LABELS.get(model, model),
                    "NIT epochs to TSB's accuracy": ("-" if not eq else str(reached) if reached
                                                     else f"never in {c['nit_schedule_epochs']}"),
                    "NIT FLOPs per epoch": _num(c["nit_flops_per_epoch"], ".3e"),
                    "TSB backbone epochs": str(int(tsb["train_epochs"])),
                    "TSB backbone FLOPs": _num(c["tsb_backbone_flops"], ".3e"),
                    "fine-tuning per chip": f"{c['tsb_finetune_images']} images x "
                                            f"{_finetune_epochs(results, model)}",
                    "TSB pipeline FLOPs (1 chip)": _num(_tsb_pipeline_flops(results, model), ".3e"),
                    "speed-up at equal accuracy [95 %]": measured_text("training_speedup", c),
                    "meets?": verdict_text(c["meets_claim"], c["verdict_reason"]),
                    f"amortised ({c['amortised_chips']} chips)":
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
                        "FLOPs to it": "-" if row is None else _num(row["train_flops"], ".3e")})
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
        epochs = r["epochs"]
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
        settings = results.claims_of(model)["selection"]["tsb_settings"]
        for name, v in settings.items():
            searched = v["searched"]
            out.append({"model": MODEL_LABELS.get(model, model), "setting": name,
                        "chosen": f"{v['chosen']:g}" if v["chosen"] is not None else "-",
                        "searched": ", ".join(f"{x:g}" for x in searched),
                        "at an edge?": {"upper": "yes, the largest", "lower": "yes, the smallest"}
                        .get(v["at_edge"], "no" if len(searched) > 1 else "one value")})
    return pd.DataFrame(out, columns=["model", "setting", "chosen", "searched", "at an edge?"])


def training_sentence(results: Results, model: str) -> str:
    """NIT's training cost up to its deployed epoch vs the TSB pipeline's (epochs and FLOPs;
    not wall-clock seconds, which vary with the machine's load), with the speed-ups and what
    happens when many chips each need their own fine-tuning."""
    sigma = results.operating_sigma(model)
    nit, tsb = _method_row(results, model, "nit", sigma), _method_row(results, model, "tsb", sigma)
    if nit is None or tsb is None:
        return f"{MODEL_LABELS.get(model, model)}: NIT or TSB not measured."
    c = results.claims_of(model)["training_speedup"]
    t = results.training
    nit_run = t[(t["model"] == model) & (t["method"] == "nit")]
    ran = f" of {int(nit_run['epoch'].max())}" if len(nit_run) else ""
    text = (f"{MODEL_LABELS.get(model, model)}: NIT deploys epoch {int(nit['train_epochs'])}{ran} "
            f"(chosen on validation; {_num(nit['train_flops'], '.3e')} FLOPs) "
            f"and reaches {_acc(nit['acc_mean'], nit['acc_ci95'])} on test chips at sigma = {sigma:g}; "
            f"the TSB backbone is NIT's snapshot at epoch {int(tsb['train_epochs'])} "
            f"({_num(tsb['train_flops'], '.3e')} FLOPs), plus "
            f"{_finetune_epochs(results, model)} fine-tuning epoch(s) per chip, and reaches "
            f"{_acc(tsb['acc_mean'], tsb['acc_ci95'])}: {_compare('TSB', tsb, 'NIT', nit)}.")
    text += (f" Training speed-up at equal accuracy (FLOPs for NIT to first reach TSB's "
             f"accuracy on the same chips / TSB's, one chip): "
             f"{measured_text('training_speedup', c)}, "
             f"{verdict_text(c['meets_claim'], c['verdict_reason'])} against the "
             f"paper's {c['paper_claim']}x.")
    # `note` and `amortised`: results without the per-epoch trajectory have a note (why the
    # speed-up is undecided) instead of the amortised reading
    if c.get("note"):
        text += f" ({c['note']}.)"
    am, n = (c.get("amortised") or {}).get("measured"), c["amortised_chips"]
    if am is not None and n:
        text += (f" With {n} chips each fine-tuned: {ratio_text(am)}"
                 + (" (the TSB pipeline then costs more than NIT)." if am < 1 else "."))
    if c["selected_epoch_ratio"] is not None:
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
        # `selection.tsb` only where the finetune stage compared block widths on validation
        check = results.claims_of(model)["selection"].get("tsb")
        if check:
            parts.append(f"TSB block {check['stated']} stated; "
                         + ("the best on validation" if check["stated_is_best"] else
                            f"{check['best_on_validation']} is better on validation"))
    if not parts:
        return f"{MODEL_LABELS.get(model, model)}: no validation sweeps in the results."
    return f"{MODEL_LABELS.get(model, model)}: " + "; ".join(parts) + "."
