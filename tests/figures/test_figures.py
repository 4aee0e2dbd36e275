"""Tests of tsblib.figures on a tiny synthetic results folder in the current results schema: figures,
captions, tables, sentences, errors and byte-identical saving."""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tsblib.figures import (ablations, accuracy_gap, accuracy_vs_sigma, common, loader, mapping_cost,
                            notebook, robustness, training_cost)
from tsblib.headline import interval_text, verdict_text
from tsblib.methods.registry import label, ordered, style
from tsblib.pipeline import FIGURES
from tsblib.schema import CLAIM_BY_KEY, TIMED_TABLES, TSB_LR


def _draw(name: str):
    """The drawing function of figure `name` (`tsblib.figures.<name>.fig_<name>`)."""
    return getattr(importlib.import_module(f"tsblib.figures.{name}"), f"fig_{name}")

MODELS = {"lenet3": "mnist-embedded", "vgg8": "cifar10"}
SIGMAS = [0.0, 0.25, 0.5]
OPERATING = 0.5
BASELINES = ["clean", "nit", "nit_bnrecal", "swim", "full_wv", "nft_ovf", "nft_irs", "correctnet"]
VARIANTS = [("tsb_width4", "width", "4"), ("tsb_width16", "width", "16"),
            ("tsb_mode_shared_noise", "mode", "shared_noise")]
DROPS = {"clean": 0.6, "nit": 0.3, "full_wv": 0.15, "tsb": 0.05}
EPOCHS, EARLY, SELECTED = 10, 2, 8
STATED_RECIPE = "recipe: adam lr=0.001 wd=0 cosine"
OTHER_RECIPE = "recipe: sgd lr=0.05 wd=0.0005 cosine"


def _interval(point: float | None, low: float | None, high: float | None) -> dict:
    return {"resamples": 1000, "chips": 5, "point": point, "low": low, "high": high,
            "point_unbounded": point is None, "low_unbounded": low is None,
            "high_unbounded": high is None, "tsb_gap_reaches_zero": low is None}


def _claim(measured: float | None, claim: str, meets: bool | None, **extra) -> dict:
    return {"measured": measured, "unbounded": False, "paper_claim": claim,
            "paper_wording": "wording", "meets_claim": meets, "verdict_reason": None,
            "definition": "definition", **extra}


def _difference(mean: float) -> dict:
    """A paired difference as bootstrap.PairedDifference.as_dict writes it."""
    return {"mean": mean, "low": mean - 0.01, "high": mean + 0.01, "ci95": 0.01, "chips": 5}


def _summary_row(model: str, method: str, sigma: float, p: float | None = None,
                 drops: dict | None = None) -> dict:
    drop = (drops or DROPS).get(method, 0.2) * sigma
    tsb = method.startswith("tsb")
    one_chip = tsb and sigma == 0 and "backbone" not in method
    flops = {"nft_ovf": 4e9}.get(method, 2e8 if tsb else 1e9)
    return {"profile": "tiny", "dataset": MODELS[model], "model": model, "method": method,
            "swim_p_percent": p, "sigma": sigma, "chips": 1 if one_chip else 5 if tsb else 8,
            "clean_acc": 0.95, "acc_mean": 0.95 - drop, "acc_std": 0.0 if one_chip else 0.02,
            "acc_ci95": None if one_chip else 0.01, "gap_own": drop, "gap_ideal": drop + 0.01,
            "wv_fraction": 1.0 if method == "full_wv" else 0.003 if tsb else 0.0,
            "train_epochs": EARLY if tsb else SELECTED, "train_flops": flops,
            "mapping_time_s": 1e-3 if method == "full_wv" else 1e-4, "mapping_energy_j": 1e-6,
            "convention": "device_range", "acc_p01": 0.9 - drop, "acc_p05": 0.91 - drop,
            "acc_p50": 0.95 - drop, "yield_1pt": 0.5, "yield_2pt": 0.7}


def _gap_claims(gap_own: float, gap_own_low: float | None, meets_own: bool | None,
                strongest: str) -> dict:
    return {
        "gap_improvement_own": _claim(gap_own, "> 20", meets_own, baseline="nit",
                                      interval95=_interval(gap_own, gap_own_low, None)),
        "gap_improvement_ideal": _claim(3.0, "> 20", False, baseline="nit",
                                        interval95=_interval(3.0, 2.0, 4.5)),
        "gap_improvement_own_vs_strongest": _claim(
            0.8, "> 20", False, baseline=strongest, interval95=_interval(0.8, 0.5, 1.2)),
        "gap_improvement_ideal_vs_strongest": _claim(
            1.5, "> 20", False, baseline=strongest, interval95=_interval(1.5, 1.1, 2.0)),
    }


def write_results(folder: Path, gap_own: float = 25.0, gap_own_low: float | None = 21.0,
                  meets_own: bool | None = True, drops: dict | None = None,
                  sweeps: bool = True, amortised: float = 0.5, seconds_scale: float = 1.0) -> Path:
    """A complete, tiny results folder for two models (validation sweeps for lenet3 only), its
    timing tables' wall-clock times multiplied by `seconds_scale` (as on a busier machine);
    returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    summary, ablations, training, recipes, tsb_lr, mapping, overhead, flops = ([] for _ in range(8))
    claims: dict = {"profile": "tiny", "convention": "device_range", "note": "synthetic", "models": {}}
    for model in MODELS:
        rows = []
        for sigma in SIGMAS:
            for method in BASELINES + ["tsb"]:
                rows.append(_summary_row(model, method, sigma, 1.0 if method == "swim" else None, drops))
        rows.append(_summary_row(model, "swim", OPERATING, 5.0, drops))
        for method in ["tsb_backbone_only", "tsb_backbone_bnrecal"]:
            rows.append(_summary_row(model, method, OPERATING, drops=drops))
        for method, _, _ in VARIANTS:
            rows.append(_summary_row(model, method, OPERATING, drops=drops))
        summary += rows
        for r in rows:
            if not r["method"].startswith("tsb") or r["sigma"] != OPERATING:
                continue
            fixed = {"tsb": ("default", "default"),
                     "tsb_backbone_only": ("no_block", "backbone only"),
                     "tsb_backbone_bnrecal": ("no_block", "BN recalibration alone")}
            variants = {m: (a, s) for m, a, s in VARIANTS}
            ablation, setting = fixed.get(r["method"]) or variants[r["method"]]
            ablations.append({"model": model, "ablation": ablation, "setting": setting,
                              **{k: r[k] for k in ("method", "sigma", "chips", "acc_mean", "acc_std",
                                                   "acc_ci95", "wv_fraction")}})
        for method in ["clean", "nit", "nft_ovf", "nft_irs", "correctnet"]:
            flops.append({"model": model, "run": method, "forwards_per_step": 1.0,
                          "macs_per_image": 100, "train_images": 1000,
                          "flops_per_epoch": {"nft_ovf": 4e9}.get(method, 1e9) / SELECTED})
            for epoch in range(1, EPOCHS + 1):
                training.append({"model": model, "method": method, "recipe": STATED_RECIPE[8:],
                                 "epoch": epoch, "seconds": float(epoch), "loss": 1.0 / epoch,
                                 "val_clean_acc": 0.9, "val_chip_acc_mean": 0.5 + 0.02 * epoch,
                                 "val_chip_acc_ci95": 0.03, "selected": epoch == SELECTED})
        if sweeps and model == "lenet3":
            for method, cands in [("nit", [STATED_RECIPE, OTHER_RECIPE]),
                                  ("nft_ovf", ["beta: 0.01", "beta: 0.1"]),
                                  ("nft_irs", ["beta: 0.01", "beta: 0.1"])]:
                for k, cand in enumerate(cands):
                    for epoch in range(1, 4):  # the second candidate wins
                        recipes.append({"model": model, "method": method, "candidate": cand,
                                        "recipe": STATED_RECIPE[8:], "epoch": epoch,
                                        "seconds": float(epoch), "loss": 1.0, "val_clean_acc": 0.8,
                                        "val_chip_acc_mean": 0.4 + 0.1 * epoch + 0.05 * k,
                                        "val_chip_acc_ci95": 0.02, "selected": epoch == 3})
            for lr, acc in [(1e-3, 0.80), (1e-2, 0.85)]:
                tsb_lr.append({"model": model, "width": 8, "lr": lr, "epochs": 1, "sigma": OPERATING,
                               "chips": 2, "val_acc_mean": acc, "val_acc_ci95": 0.02,
                               "selected": lr == 1e-2})
        for plan, p, verified, read_back in [("no_verify", None, 0, 0), ("full_wv", None, 1000, 0),
                                             ("tsb", None, 3, 1000), ("swim", 1.0, 10, 0),
                                             ("swim", 5.0, 50, 0)]:
            for sigma in SIGMAS:
                mapping.append({"model": model, "plan": plan, "swim_p_percent": p, "sigma": sigma,
                                "weights": 1000 + (3 if plan == "tsb" else 0),
                                "verified_weights": verified, "read_back_weights": read_back,
                                "devices": 4000, "verified_devices": 4 * verified,
                                "write_pulses": 4000.0 + 40 * verified, "reads": 40.0 * verified,
                                "time_s": 1e-4 * (1 + verified / 100),
                                "energy_j": 1e-6 * (1 + verified / 100)})
        overhead.append({"model": model, "tsb_width": 8, "block_weights": 64,
                         "backbone_weights": 18320, "fraction": 0.0035, "added_macs": 1,
                         "backbone_macs": 100, "insertion_points": 2})
        per_baseline = {m: {"acc_mean": 0.8, "acc_ci95": 0.01, "clean_acc": 0.95, "gap_own": 0.1,
                            "gap_ideal": 0.11, "write_verify": m in ("swim", "full_wv"),
                            "mapping_time_s": 1e-3 if m == "full_wv" else 1e-4,
                            "tsb_minus_baseline": _difference(0.02),
                            "improvement_own": _interval(4.0 + i, 3.0, 5.0 + i),
                            "improvement_ideal": _interval(2.0, 1.5, None)}
                        for i, m in enumerate(BASELINES) if m != "clean"}
        claims["models"][model] = {
            "dataset": MODELS[model], "operating_sigma": OPERATING, "chips_tsb": 5, "chips_baseline": 8,
            "paired_chips": 5, "tsb": {"clean_acc": 0.95, "acc_mean": 0.925, "acc_ci95": 0.01,
                                       "mapping_time_s": 1e-4},
            "strongest_baseline": "nit_bnrecal", "loses_to": [], "seed_spread": None,
            "frontier": [{"method": "nit", "setting": "0 %", "wv_percent": 0.0, "acc_mean": 0.8,
                          "acc_ci95": 0.01},
                         {"method": "swim", "setting": "1 %", "wv_percent": 1.0, "acc_mean": 0.85,
                          "acc_ci95": 0.01},
                         {"method": "tsb", "setting": "width 8", "wv_percent": 0.3,
                          "acc_mean": 0.925, "acc_ci95": 0.01}],
            **_gap_claims(gap_own, gap_own_low, meets_own, "nit_bnrecal"),
            "training_speedup": _claim(
                6.0, "> 5", True, nit_selected_epoch=SELECTED, tsb_backbone_epochs=EARLY,
                tsb_finetune_passes=1, tsb_finetune_images=100, nit_flops_per_epoch=1.25e8,
                tsb_backbone_flops=EARLY * 1.25e8, tsb_finetune_flops_per_chip=1e7,
                tsb_flops_one_chip=EARLY * 1.25e8 + 1e7, selected_epoch_ratio=3.9,
                equal_accuracy={"measured": 6.0, "low": 5.5, "high": 7.0,
                                "measured_lower_bound": False, "low_lower_bound": False,
                                "high_lower_bound": False, "measured_nit_epochs": 7},
                amortised={"measured": amortised}, amortised_chips=100, nit_schedule_epochs=EPOCHS),
            "wv_fraction_percent": _claim(
                0.35, "< 0.4", True, chosen_width=8, width_chosen_on_validation=False,
                per_width=[{"method": "tsb", "setting": "width 8", "wv_percent": 0.35,
                            "acc_mean": 0.925, "acc_ci95": 0.01}]),
            "mapping_cost_reduction": _claim(
                7.0, "> 1", True, equal_accuracy={"measured": 7.0, "low": 6.0, "high": 8.0},
                equal_accuracy_percent=4.0, full_wv_ratio=10.0),
            "per_baseline": per_baseline,
            "trajectory": ([{"curve": c, "backbone": "epoch", "epochs": e, "chips": 5,
                             "acc_mean": 0.5 + 0.04 * e + (0.05 if c != "nit" else 0.0),
                             "acc_ci95": 0.01} for c in ("nit", "nit_bnrecal") for e in range(1, 11)]
                           + [{"curve": "tsb", "backbone": "epoch", "epochs": e, "chips": 5,
                               "acc_mean": 0.8 + 0.01 * e, "acc_ci95": 0.01} for e in (1, 2, 3, 5)]
                           + [{"curve": "tsb", "backbone": "annealed", "epochs": EARLY, "chips": 5,
                               "acc_mean": 0.85, "acc_ci95": 0.01}]),
            "selection": {
                **({"nit": {"stated": STATED_RECIPE, "best_on_validation": OTHER_RECIPE,
                            "stated_is_best": False,
                            "val_chip_acc": {STATED_RECIPE: 0.7, OTHER_RECIPE: 0.75}},
                    **{m: {"stated": "beta: 0.01", "best_on_validation": "beta: 0.1",
                           "stated_is_best": False, "val_chip_acc": {"beta: 0.01": 0.7,
                                                                     "beta: 0.1": 0.75}}
                       for m in ("nft_ovf", "nft_irs")}}
                   if sweeps and model == "lenet3" else {}),
                "tsb_settings": {"lr": {"chosen": 0.01, "searched": [0.001, 0.01], "at_edge": "upper"},
                                 "epochs": {"chosen": 1, "searched": [1], "at_edge": None}}},
        }
    def timed(rows: list[dict], name: str) -> None:
        """The results table without its seconds, and its timing table (seconds scaled)."""
        frame = pd.DataFrame(rows)
        frame.drop(columns="seconds").to_csv(folder / name, index=False)
        timing = frame[list(TIMED_TABLES[name]) + ["seconds"]].copy()
        timing["seconds"] = timing["seconds"] * seconds_scale
        (folder / "timing").mkdir(parents=True, exist_ok=True)
        timing.to_csv(folder / "timing" / name, index=False)

    pd.DataFrame(summary).to_csv(folder / "summary.csv", index=False)
    pd.DataFrame(ablations).to_csv(folder / "ablations.csv", index=False)
    timed(training, "training.csv")
    if sweeps:
        timed(recipes, "recipes.csv")
    # the finetune stage always writes tsb_lr.csv, with no rows when nothing was searched
    pd.DataFrame(tsb_lr, columns=list(TSB_LR.result_columns)).to_csv(folder / "tsb_lr.csv", index=False)
    pd.DataFrame(mapping).to_csv(folder / "mapping.csv", index=False)
    pd.DataFrame(overhead).to_csv(folder / "overhead.csv", index=False)
    pd.DataFrame(flops).to_csv(folder / "flops.csv", index=False)
    (folder / "claims.json").write_text(json.dumps(claims))
    config = {"name": "tiny",
              "device": {"weight_bits": 8, "device_bits": 2, "convention": "device_range"},
              "mapping": {"pulse_time_s": 1e-7, "read_time_s": 1e-8, "pulse_energy_j": 1e-11,
                          "read_energy_j": 1e-12, "parallel_devices": 128},
              "experiments": [{"model": m,
                               "train": {"epochs": EPOCHS, "sigma_train": OPERATING, "val_chips": 5,
                                         "optimizer": "adam", "lr": 0.001, "schedule": "cosine",
                                         "weight_decay": 0.0},
                               "methods": {"methods": BASELINES + ["tsb"], "tsb_early_fraction": 0.2,
                                           "params": {"swim": {"p_percent": [1.0, 5.0],
                                                               "default_p": 1.0,
                                                               "sensitivity_batches": 1},
                                                      "nft_ovf": {"beta": 0.01},
                                                      "nft_irs": {"beta": 0.01}}},
                               "tsb": {"width": 8, "mode": "per_chip", "epochs": 1},
                               "evaluation": {"operating_sigma": OPERATING}} for m in MODELS]}
    (folder / "provenance.json").write_text(json.dumps(
        {"config": config, "data": {m: {"name": d, "source": "synthetic"} for m, d in MODELS.items()}}))
    return folder


@pytest.fixture()
def results(tmp_path: Path) -> loader.Results:
    return loader.load_results("tiny", write_results(tmp_path / "results" / "tiny"))


def _visible_axes(fig: Figure) -> int:
    return sum(1 for ax in fig.axes if ax.get_visible())


def _texts(fig: Figure) -> str:
    """Every text of the figure: figure texts, titles, tick labels, annotations, legends, tables."""
    out = [t.get_text() for t in fig.texts]
    out += [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.texts + ax.get_yticklabels() + ax.get_xticklabels()]
        if ax.get_legend() is not None:
            out += [t.get_text() for t in ax.get_legend().get_texts()]
        for table in ax.tables:
            out += [c.get_text().get_text() for c in table.get_celld().values()]
    return " ".join(t.replace("\n", " ") for t in out)


@pytest.mark.parametrize("name, expected_axes", [
    ("accuracy_vs_sigma", 2),   # one panel per model
    ("accuracy_gap", 6),        # own gap, ideal gap and the claims table per model
    ("training_cost", 10),      # equal accuracy (curve, numbers), epochs, FLOPs per model
                                #  + lenet3's recipe and beta sweeps
    ("mapping_cost", 6),        # vs time, vs energy and the write-verify frontier per model
    ("ablations", 6),           # width, mode, no_block per model
])
def test_figures_have_expected_panels_and_caption(results: loader.Results, name: str,
                                                  expected_axes: int) -> None:
    fig = _draw(name)(results)
    try:
        assert isinstance(fig, Figure)
        assert _visible_axes(fig) == expected_axes
        texts = " ".join(t.get_text().replace("\n", " ") for t in fig.texts)
        assert "sigma relative to device range" in texts
        assert "95 % CI" in texts and "not the paper's numbers" in texts
    finally:
        plt.close(fig)


def test_optional_sweep_files_may_be_absent(tmp_path: Path) -> None:
    res = loader.load_results("tiny", write_results(tmp_path / "r", sweeps=False))
    assert res.recipes.empty and res.tsb_lr.empty
    assert "candidate" in res.recipes.columns and "val_acc_mean" in res.tsb_lr.columns
    fig = training_cost.fig_training_cost(res)
    try:
        assert _visible_axes(fig) == 8  # no sweep panels: equal accuracy and curves per model
        # without a validation TSB point the star is the test-split accuracy, and says so
        assert "TSB after one chip's block fine-tuning (test split" in _texts(fig)
    finally:
        plt.close(fig)
    assert training_cost.selection_table(res).empty
    assert "no validation sweeps" in training_cost.selection_sentence(res, "lenet3")


def test_methods_come_from_the_registry(results: loader.Results) -> None:
    fig = accuracy_vs_sigma.fig_accuracy_vs_sigma(results)
    try:
        legend = {t.get_text(): h for t, h in zip(fig.legends[0].get_texts(), fig.legends[0].legend_handles)}
        assert label("nft_irs") in legend and label("nft_ovf") in legend
        for name in ("nit", "nft_irs", "tsb"):
            colour, marker = style(name)
            handle = legend[label(name)]
            assert mcolors.same_color(handle.get_color(), colour) and handle.get_marker() == marker
        order = [t for t in legend]
        present = set(results.summary["method"])  # every registered method with results
        assert order == [common.method_label(s.name, results, "lenet3") for s in ordered()
                         if s.name in present]
    finally:
        plt.close(fig)


def test_single_chip_tsb_at_sigma_zero_is_named(results: loader.Results) -> None:
    fig = accuracy_vs_sigma.fig_accuracy_vs_sigma(results)
    try:
        assert "at sigma = 0: one noise-free chip" in _texts(fig)
    finally:
        plt.close(fig)
    table = accuracy_vs_sigma.operating_point_table(results, "lenet3")
    assert "nft_irs" not in " ".join(table["method"]) and label("nft_irs") in set(table["method"])
    assert table["train FLOPs"].str.contains("e+").all()


def test_caption_states_convention_data_and_chips(results: loader.Results) -> None:
    text = common.caption(results, "lenet3")
    assert "\n" not in text
    assert "sigma relative to device range" in text and "mnist-embedded" in text
    assert "8 chips" in text and "5" in text and "shaded: 95 % CI" in text


def test_interval_and_verdict_text() -> None:
    assert interval_text(_interval(12.34, 8.1, 19.0)) == "12.3x [8.10, 19.0]"
    assert interval_text(_interval(2.419, 1.1, None)) == "2.42x [1.10, unbounded]"
    assert interval_text(_interval(None, None, None)).startswith("undefined")  # TSB gap <= 0
    assert interval_text(_interval(250.0, -0.0774, 1234.0)) == "250x [-0.0774, 1234]"
    assert [verdict_text(v) for v in (True, False, None)] == ["pass", "falls short", "undecided"]


def test_claims_table_uses_the_interval_verdict(tmp_path: Path) -> None:
    table = accuracy_gap.claims_table(loader.load_results("tiny", write_results(tmp_path / "a")))
    own = table[table["claim"] == CLAIM_BY_KEY["gap_improvement_own"].label]
    assert set(own["meets?"]) == {"pass"}
    assert set(own["our measured value [95 % interval]"]) == {"25.0x [21.0, unbounded]"}
    ideal = table[table["claim"] == CLAIM_BY_KEY["gap_improvement_ideal"].label]
    assert set(ideal["meets?"]) == {"falls short"}
    strongest = table[table["claim"].str.contains("strongest")]
    assert len(strongest) == 4  # own and ideal, two models
    assert strongest["compared with"].str.startswith(label("nit_bnrecal")).all()
    speed = table[table["claim"] == CLAIM_BY_KEY["training_speedup"].label]
    assert set(speed["our measured value [95 % interval]"]) == {"6.00x [5.50, 7.00]"}
    assert speed["beside it"].str.contains("at NIT's selected epoch: 3.90x").all()
    assert not speed["beside it"].str.contains("seconds").any()  # load-dependent: timing/ only
    assert set(table[table["claim"].str.contains("write-verified")]["meets?"]) == {"pass"}
    # a point estimate above the claim whose interval's lower end is below it falls short
    short = accuracy_gap.claims_table(loader.load_results(
        "tiny", write_results(tmp_path / "b", gap_own=25.0, gap_own_low=15.0, meets_own=False)))
    assert set(short[short["claim"] == CLAIM_BY_KEY["gap_improvement_own"].label]["meets?"]) == {"falls short"}
    undecided = accuracy_gap.claims_table(loader.load_results(
        "tiny", write_results(tmp_path / "c", gap_own_low=None, meets_own=None)))
    assert set(undecided[undecided["claim"] == CLAIM_BY_KEY["gap_improvement_own"].label]["meets?"]) == {"undecided"}


def test_accuracy_gap_figure_shows_intervals_and_reference(results: loader.Results) -> None:
    fig = accuracy_gap.fig_accuracy_gap(results)
    try:
        text = _texts(fig)
        assert "backbone + block at sigma = 0" in text
        assert label("nft_irs") in text
        # nft_irs is BASELINES[6] in the fixture: own-gap ratio 4 + 6 = 10, interval [3, 5 + 6]
        assert "gap ratio 10.0x [3.00, 11.0]" in text
        assert "gap ratio 2.00x [1.50, unbounded]" in text
        assert "(strongest without write-verify)" in text
        assert "25.0x [21.0, unbounded]" in text and "falls short" in text and "pass" in text
    finally:
        plt.close(fig)


def test_training_figure_marks_deployed_epochs_and_speedup(results: loader.Results) -> None:
    fig = training_cost.fig_training_cost(results)
    try:
        ax = fig.axes[2]  # after the first model's equal-accuracy row
        assert "validation split" in ax.get_ylabel()
        assert "test split" in fig.axes[0].get_ylabel() and "paired chips" in fig.axes[0].get_ylabel()
        nit_colour = style("nit")[0]
        marked = [line for line in ax.get_lines()
                  if mcolors.same_color(line.get_markeredgecolor(), "black") and len(line.get_xdata())
                  and mcolors.same_color(line.get_color(), nit_colour)]
        assert [list(line.get_xdata()) for line in marked] == [[SELECTED]]
        text = _texts(fig)
        assert "FLOPs: 6.00x [5.50, 7.00]" in text and "-> pass" in text and "seconds" not in text
        assert "amortised over 100 chips: 0.500x" in text
        assert f"TSB (our reading) from a {EARLY}-epoch schedule annealed to its end" in text
        assert "NIT after each epoch + per-chip BN recalibration" in text
        assert f"NIT's snapshot at epoch {EARLY}" in text
        assert "validation split, 2 chips" in text  # TSB star from tsb_lr.csv's chosen lr
        sweep = next(a for a in fig.axes if "NIT recipe candidates" in a.get_title())
        widths = {line.get_label(): line.get_linewidth() for line in sweep.get_lines()
                  if not line.get_label().startswith("_")}
        stated = next(k for k in widths if k.startswith(STATED_RECIPE[8:]))
        assert "(stated)" in stated and widths[stated] > max(v for k, v in widths.items() if k != stated)
        assert any("best on validation" in k for k in widths if k != stated)
        assert "is NOT the best on validation" in text
        assert any("NFT beta candidates" in a.get_title() for a in fig.axes)
    finally:
        plt.close(fig)


def test_mapping_figure_says_tsb_reads_back(results: loader.Results) -> None:
    fig = mapping_cost.fig_mapping_cost(results)
    try:
        assert "reading the 1,000 backbone weights back once" in _texts(fig)
    finally:
        plt.close(fig)
    table = mapping_cost.mapping_table(results, "lenet3")
    assert table.set_index("plan").loc["TSB (block verified, backbone read back)", "read-back weights"] == "1000"


def test_tables_are_strings(results: loader.Results) -> None:
    for table in [accuracy_vs_sigma.operating_point_table(results, "lenet3"), training_cost.speedup_table(results),
                  mapping_cost.mapping_table(results), ablations.ablation_table(results),
                  accuracy_gap.claims_table(results), accuracy_gap.claims_definitions(results),
                  training_cost.training_runs_table(results), training_cost.selection_table(results),
                  training_cost.tsb_lr_table(results)]:
        assert len(table) > 0
        assert all(table[c].map(lambda v: isinstance(v, str)).all() for c in table.columns)
    runs = training_cost.training_runs_table(results)
    assert set(runs["deployed epoch"]) == {str(SELECTED)}
    assert label("nft_irs") in set(runs["run"])
    speed = training_cost.speedup_table(results)
    assert list(speed["speed-up at equal accuracy [95 %]"]) == ["6.00x [5.50, 7.00]"] * 2
    assert list(speed["meets?"]) == ["pass", "pass"]
    side = common.transposed(speed, label="training cost")  # as the notebook shows it
    assert list(side.columns) == ["training cost", "LeNet-3", "VGG-8"]
    assert list(side["training cost"]) == list(speed.columns[1:])
    assert side.set_index("training cost").loc["meets?", "VGG-8"] == "pass"


def test_accuracy_sentence_says_when_tsb_wins_and_when_it_loses(tmp_path: Path) -> None:
    wins = loader.load_results("tiny", write_results(tmp_path / "w"))
    text = accuracy_vs_sigma.accuracy_sentence(wins, "lenet3")
    assert "TSB 0.925 ± 0.010 (5 chips)" in text and "TSB is the most accurate method" in text
    loses = loader.load_results("tiny", write_results(tmp_path / "l", drops={**DROPS, "tsb": 0.4}))
    text = accuracy_vs_sigma.accuracy_sentence(loses, "lenet3")
    assert "TSB is the most accurate" not in text
    assert "more accurate than TSB" in text and label("full_wv") in text
    assert f"below the most accurate ({label('full_wv')})" in text


def test_gap_and_training_sentences_follow_the_numbers(tmp_path: Path) -> None:
    res = loader.load_results("tiny", write_results(tmp_path / "a", amortised=0.5))
    gap = accuracy_gap.gap_sentence(res, "lenet3")
    assert "25.0x [21.0, unbounded]: pass" in gap
    assert f"strongest baseline without write-verify ({label('nit_bnrecal')}) 0.800x" in gap
    assert "TSB's gap is larger" in gap  # the 0.8x ratio against the strongest baseline
    text = training_cost.training_sentence(res, "lenet3")
    assert "With 100 chips each fine-tuned: 0.500x (the TSB pipeline then costs more" in text
    assert "6.00x [5.50, 7.00], pass against the paper's > 5x" in text
    assert "capped near 1 / tsb_early_fraction" in text
    cheap = loader.load_results("tiny", write_results(tmp_path / "b", amortised=3.0))
    assert "each fine-tuned: 3.00x." in training_cost.training_sentence(cheap, "lenet3")
    sel = training_cost.selection_sentence(res, "lenet3")
    assert "the stated recipe 'adam lr=0.001 wd=0 cosine' (0.700) is NOT the best" in sel
    assert "learning rate 0.01 chosen on validation" in sel


def test_missing_results_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dvc repro") as info:
        loader.load_results("nothing", tmp_path / "does-not-exist")
    assert "summary.csv" in str(info.value)


def test_save_figure_is_byte_identical(results: loader.Results) -> None:
    fig = accuracy_vs_sigma.fig_accuracy_vs_sigma(results)
    try:
        first = {p.suffix: p.read_bytes() for p in common.save_figure(fig, results, "repeat")}
        second = {p.suffix: p.read_bytes() for p in common.save_figure(fig, results, "repeat")}
    finally:
        plt.close(fig)
    assert set(first) == {".png", ".pdf"}
    assert first == second
    folder = results.results_dir / "figures"
    assert sorted(p.name for p in folder.iterdir()) == ["repeat.pdf", "repeat.png"]  # no temp files


def test_repo_root_from_nested_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tsblib").mkdir()
    (tmp_path / "params.yaml").write_text("profile: tiny\n")
    nested = tmp_path / "results" / "tiny" / "notebooks"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert loader.repo_root() == tmp_path.resolve()


def test_swim_default_p_from_the_typed_configuration(results: loader.Results) -> None:
    assert results.swim_default_p("lenet3") == 1.0
    assert results.swim_default_p("vgg8") == results.experiment("vgg8").methods.of("swim").default_p


def test_training_figure_plots_flops_not_seconds(results: loader.Results) -> None:
    fig = training_cost.fig_training_cost(results)
    try:
        ax = fig.axes[3]
        assert "FLOPs" in ax.get_xlabel() and "FLOPs" in ax.get_title()
        nit = next(line for line in ax.get_lines() if line.get_label() == label("nit"))
        per_epoch = 1e9 / SELECTED  # summary.csv: NIT's FLOPs to its deployed epoch / that epoch
        assert list(nit.get_xdata()) == pytest.approx([e * per_epoch for e in range(1, EPOCHS + 1)])
        star = [c for c in ax.containers if "after one chip's block fine-tuning" in str(c.get_label())]
        assert len(star) == 1
        # backbone + one chip's fine-tuning at the images and passes used (claims.json)
        assert star[0].lines[0].get_xdata()[0] == pytest.approx(EARLY * 1.25e8 + 1e7)
    finally:
        plt.close(fig)


def test_figures_tables_and_sentences_do_not_depend_on_wall_clock_seconds(tmp_path: Path) -> None:
    """A rerun on a busier machine changes every time in the results; nothing drawn or shown may
    change with them, so the figures and executed notebooks stay byte-identical."""
    quick = loader.load_results("tiny", write_results(tmp_path / "quick" / "tiny"))
    slow = loader.load_results("tiny", write_results(tmp_path / "slow" / "tiny", seconds_scale=3.7))
    assert (tmp_path / "quick" / "tiny" / "timing" / "training.csv").read_text() != \
        (tmp_path / "slow" / "tiny" / "timing" / "training.csv").read_text()
    for name in ("accuracy_vs_sigma", "accuracy_gap", "training_cost", "mapping_cost", "ablations"):
        saved = []
        for res in (quick, slow):
            fig = _draw(name)(res)
            try:
                saved.append({p.suffix: p.read_bytes() for p in common.save_figure(fig, res, name)})
            finally:
                plt.close(fig)
        assert saved[0] == saved[1], name
    tables = [lambda r: accuracy_vs_sigma.operating_point_table(r, "lenet3"), training_cost.speedup_table,
              training_cost.training_runs_table, training_cost.selection_table, training_cost.tsb_lr_table,
              mapping_cost.mapping_table, ablations.ablation_table, accuracy_gap.claims_table]
    for table in tables:
        assert table(quick).equals(table(slow))
    for sentence in (accuracy_vs_sigma.accuracy_sentence, accuracy_gap.gap_sentence, training_cost.training_sentence,
                     training_cost.selection_sentence, mapping_cost.mapping_sentence, ablations.ablation_sentence):
        assert sentence(quick, "lenet3") == sentence(slow, "lenet3")


def test_table_html_keeps_numbers_on_one_line_with_inline_styles() -> None:
    table = pd.DataFrame({"method": ["NIT <noise>", "TSB & block"],
                          "acc on chips ± CI95": ["0.812 ± 0.017", "n/a"],
                          "gap ratio": ["2.60x [2.09, 3.31]", "unbounded [1.2, unbounded]"],
                          "claim": ["> 20x", "< 0.4 %"]})
    out = common.table_html(table)
    assert out == common.table_html(table)  # the same bytes every time
    assert "<style" not in out and " id=" not in out  # JupyterLab drops <style> in untrusted notebooks
    assert "NIT &lt;noise&gt;" in out and "TSB &amp; block" in out
    assert out.count("<tr>") == 3 and out.count("<th ") == 4 and out.count("<td ") == 8
    cells = re.findall(r'<td style="([^"]*)">([^<]*)</td>', out)
    style = {text: css for css, text in cells}
    assert "text-align: left" in style["NIT &lt;noise&gt;"] and "nowrap" not in style["NIT &lt;noise&gt;"]
    for text in ("0.812 ± 0.017", "n/a", "2.60x [2.09, 3.31]", "&gt; 20x", "&lt; 0.4 %"):
        assert "white-space: nowrap" in style[text] and "text-align: right" in style[text]
    text = common.table_text(table)
    assert text.splitlines()[0].split()[0] == "method" and "2.60x [2.09, 3.31]" in text
    assert common.table_text(table.iloc[0:0]) == "(no rows)"


def test_a_line_break_in_a_table_cell_is_a_break_in_html_and_a_space_in_text() -> None:
    table = pd.DataFrame({"condition": ["gaussian"], "TSB": ["0.812 ± 0.017\n(p5 0.790)"]})
    out = common.table_html(table)
    assert ">0.812 ± 0.017<br>(p5 0.790)</td>" in out
    assert "nowrap" in re.search(r'<td style="([^"]*)">0.812', out).group(1)  # still a number
    assert "0.812 ± 0.017 (p5 0.790)" in common.table_text(table)


def test_show_and_say_display_html_with_a_plain_text_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, raw=False: shown.append((obj, raw)))
    table = pd.DataFrame({"a": ["x"], "b": ["1.0"]})
    common.show(table)
    common.say("First < sentence.", "Second 1.23x.")
    (bundle, raw), (said, said_raw) = shown
    assert raw and said_raw
    assert bundle == {"text/html": common.table_html(table), "text/plain": common.table_text(table)}
    assert said["text/html"] == "<p>First &lt; sentence.</p>\n<p>Second 1.23x.</p>"
    assert said["text/plain"] == "First < sentence.\nSecond 1.23x."


def _papermill_output(cells: list, minor: int = 5) -> dict:
    """What papermill returns for an executed notebook: timings, paths and a random cell id."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=cells)
    nb.nbformat_minor = minor
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"},
                   "papermill": {"parameters": {"profile": "tiny"}, "start_time": "2026-01-01T00:00:00",
                                 "end_time": "2026-01-01T00:00:09", "duration": 9.0,
                                 "input_path": "/somewhere/notebooks/x.ipynb",
                                 "output_path": "/somewhere/.x.ipynb.tmp", "exception": None,
                                 "environment_variables": {}, "version": "2.7.0"}}
    for i, cell in enumerate(nb.cells):
        cell.metadata.update({"papermill": {"duration": 0.1, "start_time": "2026-01-01T00:00:01",
                                            "status": "completed"},
                              "execution": {"iopub.status.busy": "2026-01-01T00:00:01Z"},
                              "tags": cell.metadata.get("tags", [])})
        cell.id = f"random{i}"
    return json.loads(json.dumps(nb))


def test_normalise_notebook_drops_times_and_matches_the_kernel() -> None:
    import nbformat

    raw = _papermill_output([nbformat.v4.new_markdown_cell("# title"),
                             nbformat.v4.new_code_cell('profile = "x"', metadata={"tags": ["parameters"]}),
                             nbformat.v4.new_code_cell('profile = "tiny"',
                                                       metadata={"tags": ["injected-parameters"]}),
                             nbformat.v4.new_code_cell("1 + 1")])
    del raw["cells"][3]["id"]
    nb = notebook.normalise_notebook(raw)
    assert (nb.nbformat, nb.nbformat_minor) == (4, nbformat.v4.nbformat_minor)
    assert nb.metadata.papermill == {"parameters": {"profile": "tiny"}}
    assert nb.metadata.kernelspec == notebook.kernelspec_metadata()
    # one parameters cell, holding the value it ran with; papermill's injected cell folded in
    assert [c.id for c in nb.cells] == ["random0", "random1", "cell-2"]
    assert [dict(c.metadata) for c in nb.cells] == [{}, {"tags": ["parameters"]}, {}]
    assert nb.cells[1].source == 'profile = "tiny"'
    text = nbformat.writes(nb)
    for word in ("time", "duration", "/somewhere", "iopub"):
        assert word not in text
    assert nbformat.writes(notebook.normalise_notebook(json.loads(text))) == text  # idempotent
    assert raw["metadata"]["papermill"]["duration"] == 9.0  # the input is left alone


EXPECTED_LIBRARY = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cell, injected, expected", [
    ('profile = "embedded"\nresults_dir = None', '# Parameters\nprofile = "paper"\n',
     'profile = "paper"\nresults_dir = None'),
    ('# the profile\nprofile = "embedded"', '# Parameters\nprofile = "x"\nextra = 3\n',
     '# the profile\nprofile = "x"\nextra = 3'),
    ('profile = "embedded"', "# Parameters\n", 'profile = "embedded"'),
])
def test_injected_parameters_fold_into_the_parameters_cell(cell, injected, expected) -> None:
    assert notebook.fold_parameters(cell, injected) == expected


def test_execute_notebook_gives_the_same_bytes_twice(tmp_path: Path) -> None:
    import nbformat
    from papermill.exceptions import PapermillExecutionError

    source = tmp_path / "source.ipynb"
    meta = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}}
    nbformat.write(nbformat.v4.new_notebook(metadata=meta, cells=[
        nbformat.v4.new_code_cell("root = None", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import pathlib, tsblib\n"
                                  "print(pathlib.Path(tsblib.__file__).parents[1] == pathlib.Path(root))"),
    ]), source)
    target = tmp_path / "out" / "executed.ipynb"
    params = {"root": str(EXPECTED_LIBRARY)}
    notebook.execute_notebook(source, target, params, cwd=tmp_path, library_root=EXPECTED_LIBRARY)
    first = target.read_bytes()
    notebook.execute_notebook(source, target, params, cwd=tmp_path, library_root=EXPECTED_LIBRARY)
    assert target.read_bytes() == first
    nb = nbformat.reads(first.decode(), as_version=4)
    assert nbformat.writes(nb) + "\n" == first.decode()  # as Jupyter itself saves it
    assert len(nb.cells) == 2 and nb.cells[0].source == f'root = "{EXPECTED_LIBRARY}"'
    assert [c.execution_count for c in nb.cells] == [1, 2]
    assert nb.metadata.kernelspec == notebook.kernelspec_metadata()  # not the source's "Python 3"
    assert nb.cells[1].outputs[0]["text"] == "True\n"  # the kernel imported this tsblib
    assert b"start_time" not in first and b"iopub" not in first
    nbformat.write(nbformat.v4.new_notebook(metadata=meta, cells=[nbformat.v4.new_code_cell("1 / 0")]),
                   source)
    with pytest.raises(PapermillExecutionError):
        notebook.execute_notebook(source, target, {}, cwd=tmp_path)
    assert target.read_bytes() == first  # a failed run leaves the executed copy alone
    assert sorted(p.name for p in target.parent.iterdir()) == ["executed.ipynb"]


# ----------------------------------------------------------------------------- robustness figure

ROBUST_METHODS = ["nit", "nit_bnrecal", "swim", "full_wv", "tsb", "tsb_gaussian"]
ROBUST_ACC = {"nit": 0.70, "nit_bnrecal": 0.80, "swim": 0.75, "full_wv": 0.93, "tsb": 0.90,
              "tsb_gaussian": 0.85}


def _write_robustness(folder: Path, stuck_breaks: bool = True) -> None:
    rows = []
    conditions = [("gaussian", "gaussian", None, None), ("stuck", "gaussian+stuck_at", None, None)]
    conditions += [("drift", "slice+drift", t, c) for c in (False, True) for t in (20.0, 3600.0)]
    for scenario, dm, t, c in conditions:
        for m in ROBUST_METHODS:
            acc = ROBUST_ACC[m]
            if scenario == "stuck" and stuck_breaks and m.startswith("tsb"):
                acc = 0.6
            if t == 3600.0 and not c:
                acc -= 0.2
            rows.append({"model": "lenet3", "scenario": scenario, "device_model": dm, "time_s": t,
                         "compensation": c, "method": m, "sigma": OPERATING, "chips": 10,
                         "clean_acc": 0.95, "acc_mean": acc, "acc_std": 0.01, "acc_ci95": 0.01,
                         "gap_own": 0.95 - acc, "acc_p01": acc - 0.05, "acc_p05": acc - 0.04,
                         "acc_p50": acc, "yield_1pt": 0.1, "yield_2pt": 0.2, "wv_fraction": 0.0,
                         "mapping_time_s": 1e-4, "mapping_energy_j": 1e-6,
                         "convention": "device_range"})
    pd.DataFrame(rows).to_csv(folder / "robustness.csv", index=False)


def test_robustness_figure_labels_device_models_and_drift(results: loader.Results) -> None:
    _write_robustness(results.results_dir)
    loaded = loader.load_results("tiny", results.results_dir)
    fig = robustness.fig_robustness(loaded)
    try:
        texts = _texts(fig)
        assert "stuck: gaussian+stuck_at" in texts and "sigma relative to device range" in texts
        assert "time after programming" in texts and "TSB (b)" in texts
        assert "5th percentile" in texts and "not the paper's numbers" in texts
    finally:
        plt.close(fig)
    table = robustness.robustness_table(loaded, "lenet3")
    assert len(table) == 2 + 4 and all(isinstance(v, str) for v in table.iloc[0].values)
    assert list(table.columns)[0] == "LeNet-3: condition (device models)"
    assert "model" not in table.columns and "model" in robustness.robustness_table(loaded).columns
    assert table.iloc[1, 0] == "stuck\n(gaussian+stuck_at)"
    assert re.fullmatch(r"0\.\d{3} ± 0\.\d{3}\n\(p5 0\.\d{3}\)", table.iloc[0, 1])


def test_robustness_sentence_says_where_tsb_holds_and_breaks(results: loader.Results) -> None:
    _write_robustness(results.results_dir)
    text = robustness.robustness_sentence(loader.load_results("tiny", results.results_dir), "lenet3")
    assert ("gaussian: TSB (a) 0.900 ± 0.010 (5th percentile 0.860) vs NIT + BN recalibration "
            "0.800 ± 0.010 (0.760): advantage holds") in text
    assert "stuck: TSB (a) 0.600 ± 0.010" in text and "advantage breaks (TSB below)" in text
    assert "drift, 1 h, uncompensated" in text
    assert robustness.time_text(31536000) == "1 year" and robustness.time_text(2592000) == "30 days"
    assert robustness.time_text(20) == "20 s" and robustness.time_text(86400) == "1 day"


def test_robustness_results_may_be_absent(results: loader.Results) -> None:
    assert results.robustness.empty
    assert "has not been run" in robustness.robustness_sentence(results, "lenet3")
    fig = robustness.fig_robustness(results)
    plt.close(fig)


# ----------------------------------------------------------------------------- readability

@pytest.mark.parametrize("name", FIGURES)
def test_every_text_of_every_figure_is_readable_at_notebook_size(results: loader.Results,
                                                                name: str) -> None:
    """No text below MIN_FONT_PT: shown at NOTEBOOK_DPI and never scaled down (`show_figure`),
    that is at least 11 pixels at 100 % zoom."""
    if name == "robustness":
        _write_robustness(results.results_dir)
        results = loader.load_results("tiny", results.results_dir)
    fig = _draw(name)(results)
    try:
        fig.canvas.draw()  # tick labels exist once drawn
        small = sorted({(t.get_fontsize(), t.get_text()[:40]) for t in fig.findobj(
            matplotlib.text.Text) if t.get_visible() and t.get_text().strip()
            and t.get_fontsize() < common.MIN_FONT_PT})
        assert not small, small
    finally:
        plt.close(fig)
    assert common.MIN_FONT_PT / 72 * common.NOTEBOOK_DPI >= 11


def test_show_figure_displays_an_unconfined_png_at_notebook_dpi(monkeypatch: pytest.MonkeyPatch) -> None:
    import struct

    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    fig = plt.figure(figsize=(3, 2))
    fig.add_subplot().plot([0, 1], [0, 1])
    common.show_figure(fig)
    assert not plt.fignum_exists(fig.number)  # closed: the inline backend does not show it again
    (image,) = shown
    data, metadata = image._repr_png_()  # what the notebook receives (base64 in JSON)
    assert metadata == {"unconfined": True}
    width, height = struct.unpack(">II", image.data[16:24])
    assert 200 <= width <= 300 and 130 <= height <= 200  # about 3 x 2 inches at 100 dpi (tight box)
    again = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: again.append(obj))
    fig = plt.figure(figsize=(3, 2))
    fig.add_subplot().plot([0, 1], [0, 1])
    common.show_figure(fig)
    assert again[0].data == image.data  # no date or version in the PNG


def test_claims_table_in_the_gap_figure_stays_below_its_title(results: loader.Results) -> None:
    fig = accuracy_gap.fig_accuracy_gap(results)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        tables = [(ax, t) for ax in fig.axes for t in ax.tables]
        assert tables
        for ax, table in tables:
            box, frame = table.get_window_extent(renderer), ax.get_window_extent(renderer)
            title = ax.title.get_window_extent(renderer)
            assert box.y1 <= frame.y1 + 1 and box.y0 >= frame.y0 - 1, (box, frame)
            assert title.y0 >= box.y1 - 1, "the table's title overlaps its header row"
    finally:
        plt.close(fig)
