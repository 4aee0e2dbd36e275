"""Figure 5: the TSB ablations (width, placement, sharing, fine-tuning mode, read noise) at the
operating point."""
from __future__ import annotations

import enum
import math
import textwrap

import matplotlib
import matplotlib.lines
import matplotlib.ticker
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tsblib.figures.common import (ABLATION_LABELS, MODEL_LABELS, VARIED_COLOUR,
                                   _ABLATION_DEFAULT_KEY, _acc, _ci, _compare, _finish, _num,
                                   _style, _styled)
from tsblib.figures.loader import Results

NAME = "ablations"
"""The figure's name: its notebook notebooks/ablations.ipynb, its DVC stage figure@ablations."""
ORDER = 5
"""Its number in DESIGN section 7 (the order of the figure stages)."""


def _ablation_frame(results: Results, model: str) -> pd.DataFrame:
    """Ablation rows of `model` with the default TSB added to each family at its default setting."""
    a = results.ablations[results.ablations["model"] == model].copy()
    a["setting"] = a["setting"].astype(str)
    default = a[a["ablation"] == "default"]
    tsb_cfg = results.experiment(model).tsb
    extra = []
    if len(default):
        d = default.iloc[0]
        for family, key in _ABLATION_DEFAULT_KEY.items():
            if family in set(a["ablation"]):
                value = getattr(tsb_cfg, key)
                if isinstance(value, enum.Enum):  # placement, sharing, mode: as params.yaml writes them
                    value = value.value
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
