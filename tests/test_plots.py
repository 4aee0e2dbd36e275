"""Tests of tsblib.plots on a tiny synthetic results folder: figures, captions, tables, errors and
byte-identical saving."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tsblib import plots

MODELS = {"lenet3": "mnist-embedded", "vgg8": "cifar10"}
SIGMAS = [0.0, 0.25, 0.5]
OPERATING = 0.5
BASELINES = ["clean", "nit", "nit_bnrecal", "swim", "full_wv", "nft_ovf", "correctnet"]
VARIANTS = [("tsb_width4", "width", "4"), ("tsb_width16", "width", "16"),
            ("tsb_mode_shared_noise", "mode", "shared_noise")]


def _claim(measured: float, claim: str, **extra) -> dict:
    return {"measured": measured, "unbounded": False, "paper_claim": claim,
            "paper_wording": "wording", "meets_claim": None, "definition": "definition", **extra}


def _summary_row(model: str, method: str, sigma: float, p: float | None = None) -> dict:
    drop = {"clean": 0.6, "nit": 0.3, "tsb": 0.05}.get(method, 0.2) * sigma
    tsb = method.startswith("tsb")
    return {"profile": "tiny", "dataset": MODELS[model], "model": model, "method": method,
            "swim_p_percent": p, "sigma": sigma, "chips": 5 if tsb else 8, "clean_acc": 0.95,
            "acc_mean": 0.95 - drop, "acc_std": 0.02, "acc_ci95": 0.01, "gap_own": drop,
            "gap_ideal": drop + 0.01, "wv_fraction": 1.0 if method == "full_wv" else 0.003 if tsb else 0.0,
            "train_epochs": 2 if tsb else 10, "train_seconds": 2.0 if tsb else 10.0,
            "finetune_seconds_per_chip": 0.5 if tsb and "backbone" not in method else None,
            "mapping_time_s": 1e-3 if method == "full_wv" else 1e-4, "mapping_energy_j": 1e-6,
            "convention": "device_range"}


def write_results(folder: Path, gap_own: float = 25.0) -> Path:
    """A complete, tiny results folder for two models; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    summary, ablations, training, mapping, overhead = [], [], [], [], []
    claims: dict = {"profile": "tiny", "convention": "device_range", "note": "synthetic", "models": {}}
    for model in MODELS:
        for sigma in SIGMAS:
            for method in BASELINES + ["tsb"]:
                summary.append(_summary_row(model, method, sigma, 1.0 if method == "swim" else None))
        summary.append(_summary_row(model, "swim", OPERATING, 5.0))
        for method in ["tsb_backbone_only", "tsb_backbone_bnrecal"]:
            summary.append(_summary_row(model, method, OPERATING))
        for method, _, _ in VARIANTS:
            summary.append(_summary_row(model, method, OPERATING))
        for r in summary:
            if r["model"] != model or not r["method"].startswith("tsb") or r["sigma"] != OPERATING:
                continue
            fixed = {"tsb": ("default", "default"),
                     "tsb_backbone_only": ("no_block", "backbone only"),
                     "tsb_backbone_bnrecal": ("no_block", "BN recalibration alone")}
            variants = {m: (a, s) for m, a, s in VARIANTS}
            ablation, setting = fixed.get(r["method"]) or variants[r["method"]]
            ablations.append({"model": model, "ablation": ablation, "setting": setting,
                              **{k: r[k] for k in ("method", "sigma", "chips", "acc_mean", "acc_std",
                                                   "acc_ci95", "wv_fraction",
                                                   "finetune_seconds_per_chip")}})
        for method in ["clean", "nit", "nft_ovf", "correctnet"]:
            for epoch in range(1, 11):
                training.append({"model": model, "method": method, "epoch": epoch,
                                 "seconds": float(epoch), "loss": 1.0 / epoch, "clean_acc": 0.9,
                                 "var_acc_mean": 0.5 + 0.02 * epoch, "var_acc_ci95": 0.03})
        for plan, p, verified in [("no_verify", None, 0), ("full_wv", None, 1000), ("tsb", None, 3),
                                  ("swim", 1.0, 10), ("swim", 5.0, 50)]:
            for sigma in SIGMAS:
                mapping.append({"model": model, "plan": plan, "swim_p_percent": p, "sigma": sigma,
                                "weights": 1000, "verified_weights": verified, "devices": 4000,
                                "verified_devices": 4 * verified, "write_pulses": 4000.0 + 40 * verified,
                                "reads": 40.0 * verified, "time_s": 1e-4 * (1 + verified / 100),
                                "energy_j": 1e-6 * (1 + verified / 100)})
        overhead.append({"model": model, "tsb_width": 8, "block_weights": 64,
                         "backbone_weights": 18320, "fraction": 0.0035, "added_macs": 1,
                         "backbone_macs": 100, "insertion_points": 2})
        claims["models"][model] = {
            "dataset": MODELS[model], "operating_sigma": OPERATING, "chips_tsb": 5, "chips_baseline": 8,
            "gap_improvement_own": _claim(gap_own, "> 20", baseline="nit"),
            "gap_improvement_ideal": _claim(3.0, "> 20", baseline="nit"),
            "training_speedup": _claim(6.0, "> 5", epochs_ratio=5.0, amortised=1.0, amortised_chips=100,
                                       amortised_definition="amortised"),
            "wv_fraction_percent": _claim(0.35, "< 0.4"),
            "mapping_cost_reduction": _claim(7.0, "> 1", energy_ratio=7.0),
        }
    pd.DataFrame(summary).to_csv(folder / "summary.csv", index=False)
    pd.DataFrame(ablations).to_csv(folder / "ablations.csv", index=False)
    pd.DataFrame(training).to_csv(folder / "training.csv", index=False)
    pd.DataFrame(mapping).to_csv(folder / "mapping.csv", index=False)
    pd.DataFrame(overhead).to_csv(folder / "overhead.csv", index=False)
    (folder / "claims.json").write_text(json.dumps(claims))
    config = {"name": "tiny",
              "device": {"weight_bits": 8, "device_bits": 2, "convention": "device_range"},
              "mapping": {"pulse_time_s": 1e-7, "read_time_s": 1e-8, "pulse_energy_j": 1e-11,
                          "read_energy_j": 1e-12, "parallel_devices": 128},
              "experiments": [{"model": m, "train": {"epochs": 10, "sigma_train": OPERATING},
                               "methods": {"tsb_early_fraction": 0.2, "swim_default_p": 1.0},
                               "tsb": {"width": 8, "mode": "per_chip"},
                               "evaluation": {"operating_sigma": OPERATING}} for m in MODELS]}
    (folder / "provenance.json").write_text(json.dumps(
        {"config": config, "data": {m: {"name": d, "source": "synthetic"} for m, d in MODELS.items()}}))
    return folder


@pytest.fixture()
def results(tmp_path: Path) -> plots.Results:
    return plots.load_results("tiny", write_results(tmp_path / "results" / "tiny"))


def _visible_axes(fig: Figure) -> int:
    return sum(1 for ax in fig.axes if ax.get_visible())


@pytest.mark.parametrize("name, expected_axes", [
    ("accuracy_vs_sigma", 2),   # one panel per model
    ("accuracy_gap", 4),        # own and ideal gap per model
    ("training_cost", 4),       # vs epochs and vs seconds per model
    ("mapping_cost", 4),        # vs time and vs energy per model
    ("ablations", 6),           # width, mode, no_block per model
])
def test_figures_have_expected_panels_and_caption(results: plots.Results, name: str,
                                                  expected_axes: int) -> None:
    fig = getattr(plots, f"fig_{name}")(results)
    try:
        assert isinstance(fig, Figure)
        assert _visible_axes(fig) == expected_axes
        texts = " ".join(t.get_text().replace("\n", " ") for t in fig.texts)
        assert "sigma relative to device range" in texts
        assert "95 % CI" in texts and "not the paper's numbers" in texts
    finally:
        plt.close(fig)


def test_caption_states_convention_data_and_chips(results: plots.Results) -> None:
    text = plots.caption(results, "lenet3")
    assert "\n" not in text
    assert "sigma relative to device range" in text and "mnist-embedded" in text
    assert "8 chips" in text and "5" in text and "shaded: 95 % CI" in text


def test_claims_table_pass_and_falls_short(tmp_path: Path) -> None:
    table = plots.claims_table(plots.load_results("tiny", write_results(tmp_path / "a", gap_own=25.0)))
    own = table[table["claim"].str.contains("own gap")]
    ideal = table[table["claim"].str.contains("ideal gap")]
    assert set(own["meets?"]) == {"pass"} and set(own["our measured value"]) == {"25.00x"}
    assert set(ideal["meets?"]) == {"falls short"}        # 3 vs > 20
    assert set(table[table["claim"].str.contains("write-verified")]["meets?"]) == {"pass"}  # 0.35 < 0.4
    short = plots.claims_table(plots.load_results("tiny", write_results(tmp_path / "b", gap_own=3.0)))
    assert set(short[short["claim"].str.contains("own gap")]["meets?"]) == {"falls short"}


def test_tables_are_strings(results: plots.Results) -> None:
    for table in [plots.operating_point_table(results, "lenet3"), plots.speedup_table(results),
                  plots.mapping_table(results), plots.ablation_table(results),
                  plots.claims_definitions(results)]:
        assert len(table) > 0
        assert all(table[c].map(lambda v: isinstance(v, str)).all() for c in table.columns)
    assert "TSB 0.925 ± 0.010 (5 chips)" in plots.accuracy_sentence(results, "lenet3")


def test_missing_results_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="dvc repro") as info:
        plots.load_results("nothing", tmp_path / "does-not-exist")
    assert "summary.csv" in str(info.value)


def test_save_figure_is_byte_identical(results: plots.Results) -> None:
    fig = plots.fig_accuracy_vs_sigma(results)
    try:
        first = {p.suffix: p.read_bytes() for p in plots.save_figure(fig, results, "repeat")}
        second = {p.suffix: p.read_bytes() for p in plots.save_figure(fig, results, "repeat")}
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
    assert plots.repo_root() == tmp_path.resolve()
