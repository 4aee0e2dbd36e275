"""Figure 4: accuracy against weights-to-device mapping time and energy for each deployment plan,
and against the write-verified fraction."""
from __future__ import annotations

import textwrap
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tsblib.figures.common import (MODEL_LABELS, _acc, _ci, _compare, _finish, _num, _rows_at,
                                   _style, _styled)
from tsblib.figures.loader import Results
from tsblib.headline import measured_text, verdict_text
from tsblib.methods import registry

NAME = "mapping_cost"
"""The figure's name: its notebook notebooks/mapping_cost.ipynb, its DVC stage figure@mapping_cost."""
ORDER = 4
"""Its number in DESIGN section 7 (the order of the figure stages)."""


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
    front = pd.DataFrame(c["frontier"])
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
    wv = c["wv_fraction_percent"]
    chosen = f"width {wv['chosen_width']}"
    tcol, tmark = _style("tsb")
    ax.errorbar(tsb["wv_percent"], tsb["acc_mean"], yerr=tsb["acc_ci95"].map(_ci), color=tcol,
                marker=tmark, ms=12, capsize=3, lw=1.2, mec="black", label="TSB at each block width")
    for _, r in tsb.iterrows():
        bold = r["setting"] == chosen
        ax.annotate(r["setting"] + (" (chosen on validation)" if bold and wv[
                        "width_chosen_on_validation"] else " (stated)" if bold else ""),
                    (r["wv_percent"], r["acc_mean"]), xytext=(6, 6), textcoords="offset points",
                    fontsize=9, color=tcol, weight="bold" if bold else "normal")
    ax.axvline(0.4, color="0.4", ls="--", lw=1, label="the paper's < 0.4 % verified")
    p = c["mapping_cost_reduction"]["equal_accuracy_percent"]
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
    mp = results.config.mapping
    extra = (f" (pulse {mp.pulse_time_s:g} s / {mp.pulse_energy_j:g} J, read "
             f"{mp.read_time_s:g} s / {mp.read_energy_j:g} J, "
             f"{mp.parallel_devices} devices in parallel)")
    fig.suptitle("Weights-to-device mapping cost vs accuracy" + extra, fontsize=12)
    _finish(fig, results)
    return fig


def mapping_table(results: Results, model: str | None = None) -> pd.DataFrame:
    """Mapping cost at the operating sigma (mapping.csv) of each plan next to its accuracy on
    chips (summary.csv): verified and read-back weights, write pulses, reads, time and energy."""
    out = []
    for m in ([model] if model else results.models):
        sigma = results.operating_sigma(m)
        mp = results.mapping[(results.mapping["model"] == m) & np.isclose(results.mapping["sigma"], sigma)]
        pts = _mapping_points(results, m)
        plan_order = {"no_verify": 0, "swim": 1, "full_wv": 2, "tsb": 3}
        # the plans of the figure; mapping.csv also prices the plans of the TSB variants (the
        # ablations, the BN-recalibrated block methods), which this table leaves out
        mp = mp[mp["plan"].isin(plan_order)]
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
                        "read-back weights": str(int(r["read_back_weights"])),
                        "write pulses": _num(r["write_pulses"], ".4g"), "reads": _num(r["reads"], ".4g"),
                        "time (s)": _num(r["time_s"], ".3e"), "energy (J)": _num(r["energy_j"], ".3e"),
                        "acc on chips ± CI95": (_acc(match["acc_mean"].iloc[0], match["acc_ci95"].iloc[0])
                                                if len(match) else "-")})
    return pd.DataFrame(out)


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
    c = results.claims_of(model)["mapping_cost_reduction"]
    p = c["equal_accuracy_percent"]
    text += (" At equal accuracy, " + (f"selective write-verify reaches TSB's accuracy at "
                                       f"{p:.2g} % verified" if p is not None else
                                       "no write-verify setting reaches TSB's accuracy")
             + f": mapping-cost reduction {measured_text('mapping_cost_reduction', c)}, "
             f"{verdict_text(c['meets_claim'], c['verdict_reason'])} against the "
             f"paper's {c['paper_claim']}.")
    return text
