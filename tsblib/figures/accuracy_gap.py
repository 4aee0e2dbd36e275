"""Figure 2: accuracy gaps (own and ideal) at the operating sigma with the headline claims table,
the paired comparisons and the training seeds."""
from __future__ import annotations

import textwrap
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tsblib import schema
from tsblib.figures.common import (MODEL_LABELS, _acc, _ci, _deployed_methods, _finish,
                                   _improvement, _method_row, _num, _style, _styled, method_label)
from tsblib.figures.loader import Results
from tsblib.headline import interval_text, measured_text, ratio_text, verdict_text

NAME = "accuracy_gap"
"""The figure's name: its notebook notebooks/accuracy_gap.ipynb, its DVC stage figure@accuracy_gap."""
ORDER = 2
"""Its number in DESIGN section 7 (the order of the figure stages)."""


_VERDICT_COLOURS = {"pass": "#d9f0d3", "falls short": "#f4cccc", "undecided": "#eeeeee"}


def _claims_rows(results: Results, model: str) -> list[dict[str, str]]:
    """The headline claims of `model` as strings (see `claims_table`)."""
    entry = results.claims_of(model)
    rows = []
    for claim in schema.CLAIMS:
        key, unit = claim.key, claim.unit
        c = entry[key]
        op, _, thr = c["paper_claim"].partition(" ")
        paper = f"{op} {float(thr):g}{unit.strip() if unit == 'x' else unit}"
        measured = measured_text(key, c)
        if key.startswith("gap"):
            against = method_label(c["baseline"], results, model)
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
            # `amortised` and `note`: results without the per-epoch trajectory have a note
            # (why the speed-up is undecided) instead of the amortised reading
            am = (c.get("amortised") or {}).get("measured")
            beside = (c.get("note") or f"amortised over {c['amortised_chips']} chips: "
                      f"{ratio_text(am)}; at NIT's selected epoch: "
                      f"{ratio_text(c['selected_epoch_ratio'])} (capped by the early fraction)")
        elif key == "mapping_cost_reduction":
            p = c["equal_accuracy_percent"]
            beside = ((f"SWIM reaches TSB at {p:.2g} % verified" if p is not None else
                       "no write-verify setting reaches TSB") +
                      f"; vs full write-verify {ratio_text(c['full_wv_ratio'])}")
        elif key == "wv_fraction_percent":
            beside = "; ".join(f"{p['setting']}: {p['wv_percent']:.3g} %, acc {p['acc_mean']:.3f}"
                               for p in c["per_width"])
        elif key.startswith("gap"):
            beside = (f"paired bootstrap over {c['interval95']['chips']} chips; "
                      "pass needs its lower end above the claim")
        rows.append({"claim": claim.label, "model": MODEL_LABELS.get(model, model),
                     "compared with": against, "paper's claim": paper,
                     "our measured value [95 % interval]": measured,
                     "meets?": verdict_text(c["meets_claim"], c["verdict_reason"]),
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
        per_baseline = results.claims_of(model)["per_baseline"]
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
                    d = per_baseline[m]["tsb_minus_baseline"]
                    if col == 1:
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


def claims_table(results: Results) -> pd.DataFrame:
    """The headline claims per model: claim, what it is compared with, the paper's claim, our
    measured value (gap ratios with their 95 % bootstrap interval, e.g. '12.3x [8.10, 19.0]'),
    the verdict of claims.json ('pass' / 'falls short' / 'undecided'; gap ratios pass only when the
    interval's lower end clears the claim) and what is reported beside it."""
    rows = [r for model in results.claims["models"] for r in _claims_rows(results, model)]
    return pd.DataFrame(rows, columns=["claim", "model", "compared with", "paper's claim",
                                       "our measured value [95 % interval]", "meets?", "beside it"])


def claims_definitions(results: Results) -> pd.DataFrame:
    """How each headline claim is measured (from claims.json), one row per claim."""
    rows = {}
    for entry in results.claims["models"].values():
        for claim in schema.CLAIMS:
            c = entry[claim.key]
            if claim.label not in rows:
                rows[claim.label] = {"claim": claim.label, "paper's wording": c["paper_wording"],
                                     "definition": c["definition"]}
    return pd.DataFrame(list(rows.values()), columns=["claim", "paper's wording", "definition"])


def paired_table(results: Results) -> pd.DataFrame:
    """TSB against every baseline on the same chips at the operating sigma (claims.json
    `per_baseline`): the baseline's accuracy, TSB minus it with the 95 % interval of the paired
    difference, its mapping time against TSB's, and the verdict in words."""
    out = []
    for model in results.models:
        c = results.claims_of(model)
        tsb_time = c["tsb"]["mapping_time_s"]
        for name, b in c["per_baseline"].items():
            d = b["tsb_minus_baseline"]
            if name == "swim" and any(k.startswith("swim@") for k in c["per_baseline"]):
                continue
            method, _, p = name.partition("@")
            cheaper = tsb_time is not None and b["mapping_time_s"] is not None and \
                b["mapping_time_s"] <= tsb_time
            word = ("TSB more accurate" if d["low"] > 0 else "baseline more accurate"
                    if d["high"] < 0 else "not resolved")
            if d["high"] < 0 and cheaper:
                word += ", at no more mapping time: TSB loses"
            out.append({"model": MODEL_LABELS.get(model, model),
                        "baseline": method_label(method, results, model,
                                                 swim_p=float(p) if p else None),
                        "acc ± CI95": _acc(b["acc_mean"], b["acc_ci95"]),
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
        spread = results.claims_of(model)["seed_spread"]
        if not spread:  # null without extra training seeds
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


def _ratio_claim_text(c: dict[str, Any]) -> str:
    """'2.42x [1.10, 3.20]: falls short of the paper's > 20x', saying so plainly when TSB's gap
    reaches 0 (undecided) or is the larger one."""
    iv = c["interval95"]
    text = (f"{interval_text(iv)}: {verdict_text(c['meets_claim'], c['verdict_reason'])} against "
            f"the paper's {c['paper_claim']}x")
    point = c["measured"]
    if iv["tsb_gap_reaches_zero"]:
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
        parts.append(f"{name}-gap improvement over NIT {_ratio_claim_text(entry[key])}")
    label = method_label(results.strongest_baseline(model), results, model)
    for key, name in (("gap_improvement_ideal_vs_strongest", "ideal"),
                      ("gap_improvement_own_vs_strongest", "own")):
        parts.append(f"{name}-gap improvement over the strongest baseline without "
                     f"write-verify ({label}) {_ratio_claim_text(entry[key])}")
    text = (f"{MODEL_LABELS.get(model, model)} at sigma = {results.operating_sigma(model):g} "
            f"(95 % paired bootstrap intervals over {entry['paired_chips']} chips): "
            + "; ".join(parts) + ".")
    diffs = [f"{method_label(name, results, model)} {100 * b['tsb_minus_baseline']['mean']:+.1f} "
             f"[{100 * b['tsb_minus_baseline']['low']:+.1f}, {100 * b['tsb_minus_baseline']['high']:+.1f}]"
             for name, b in entry["per_baseline"].items() if "@" not in name]
    if diffs:
        text += (" TSB minus each baseline on the same chips, in accuracy points [95 % interval]: "
                 + "; ".join(diffs) + ".")
    for loss in entry["loses_to"]:
        text += (f" TSB loses to {loss['baseline']} at no more mapping time "
                 f"({100 * loss['tsb_minus_baseline']:+.1f} points).")
    tsb = entry["tsb"]
    if tsb["clean_acc"] is not None:
        text += (f" TSB's own-gap reference is backbone + block at sigma = 0: "
                 f"{float(tsb['clean_acc']):.3f}.")
    return text
