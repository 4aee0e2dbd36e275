"""Figure 6: every deployment under device models beyond the Gaussian (level-dependent, stuck-at,
read noise, drift against time)."""
from __future__ import annotations

import textwrap
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tsblib.figures.common import (CONVENTION_LABELS, MODEL_LABELS, _acc, _finish, _missing,
                                   _overlap, _style, _styled, device_model_text, method_label)
from tsblib import schema
from tsblib.figures.loader import Results
from tsblib.methods import registry

NAME = "robustness"
"""The figure's name: its notebook notebooks/robustness.ipynb, its DVC stage figure@robustness."""
ORDER = 6
"""Its number in DESIGN section 7 (the order of the figure stages)."""


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
    if frame.empty:
        return pd.DataFrame(columns=list(schema.ROBUSTNESS.result_columns))
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
    trained = device_model_text(results.config.device).rstrip(", ")
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
