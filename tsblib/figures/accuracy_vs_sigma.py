"""Figure 1 (DESIGN section 7): accuracy against sigma for every method, its operating-point table
and sentence."""
from __future__ import annotations

import math
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tsblib.figures.common import (CONVENTION_LABELS, MODEL_LABELS, _acc, _ci, _compare, _describe,
                                   _finish, _method_row, _num, _rows_at, _style, _styled,
                                   method_label, method_order)
from tsblib.figures.loader import Results
from tsblib.methods import registry

NAME = "accuracy_vs_sigma"
"""The figure's name: its notebook notebooks/accuracy_vs_sigma.ipynb, its DVC stage figure@accuracy_vs_sigma."""
ORDER = 1
"""Its number in DESIGN section 7 (the order of the figure stages)."""


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
                    "train FLOPs": _num(r["train_flops"], ".3e")})
    return pd.DataFrame(out)


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
