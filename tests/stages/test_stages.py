"""The whole pipeline at tiny scale: every stage on LeNet-3 (embedded digits) and, through the
paper-profile code path, VGG-8 and ResNet-18 on a small image folder, all on the CPU."""
import csv
import json
import os
import re
from pathlib import Path

import pytest
import yaml

from tsblib import io
from tsblib.cli import main
from tsblib.profiles import load_profile
from tsblib.golden import synthetic_image_folder
from tsblib.paths import ProfilePaths
from tsblib.pipeline import run_stage, stage_names
from tsblib.report import HEADLINE_METRICS, PLOT_DATA, plot_methods
from tsblib.schema import SUMMARY
from tsblib.stages.evaluate import evaluate_stage
from tsblib.stages.train import train_stage

from conftest import ROOT

TINY = {
    "runtime": {"device": "cpu"},
    "train": {"epochs": 2, "batch_size": 50, "val_chips": 5},
    "selection": {"epochs": 1, "recipes": [{"optimizer": "adam", "lr": 1e-3},
                                           {"optimizer": "sgd", "lr": 0.05}],
                  "nft_betas": [0.01]},
    "methods": {"swim": {"p_percent": [1.0, 5.0], "default_p": 1.0, "sensitivity_batches": 1},
                "nit_bnrecal": {"images": 100}, "nft_ovf": {"beta": 0.01},
                "nft_irs": {"beta": 0.01}},
    "tsb": {"width": 8, "epochs": 1, "lr": [1e-3, 1e-2], "batch_size": 50, "chip_batch": 2,
            "select_width": True},
    "evaluation": {"sigmas": [0.0, 0.4], "operating_sigma": 0.4, "chips": 3, "tsb_chips": 2,
                   "chip_batch": 2, "batch_size": 100},
    "ablation": {"widths": [4], "placements": ["first"], "sharings": [], "modes": ["shared_noise"],
                 "sigma_reads": [0.05]},
    "robustness": {"chips": 2, "scenarios": [
        {"name": "gaussian", "device": {"model": "gaussian"}},
        {"name": "stuck", "device": {"model": ["level_dependent", "stuck_at"],
                                     "level_dependent": {"preset": "rram4"}}},
        {"name": "read", "device": {"model": ["gaussian", "read_noise"]}},
        {"name": "drift", "device": {"model": ["slice", "drift"]}}],
        "drift_times_s": [20, 86400], "drift_compensation": [False, True]},
}


def _write_params(tmp_path: Path, profiles: dict) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"profile": next(iter(profiles)), "profiles": profiles}))
    return path


def _run_all(params: Path, name: str) -> ProfilePaths:
    profile = load_profile(params, name)
    paths = ProfilePaths(name, params.parent)
    for stage in stage_names():  # each on its scoped profile: an undeclared parameter raises
        run_stage(stage, profile, paths, progress=False)
    return paths


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("embedded")
    params = _write_params(tmp, {"tiny": {**TINY, "data": {"dataset": "mnist-embedded",
                                                           "train_limit": 300, "test_limit": 100},
                                          "models": {"lenet3": {}}}})
    return params, _run_all(params, "tiny")


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_summary_has_every_method_and_the_documented_columns(embedded_run):
    _, paths = embedded_run
    rows = _rows(paths.result("summary.csv"))
    assert tuple(rows[0]) == SUMMARY.columns
    methods = {r["method"] for r in rows}
    assert {"clean", "nit", "nit_bnrecal", "swim", "full_wv", "nft_ovf", "nft_irs", "correctnet",
            "tsb"} <= methods
    assert {"tsb_width4", "tsb_placement_first", "tsb_mode_shared_noise", "tsb_read0.05",
            "tsb_backbone_only", "tsb_backbone_bnrecal"} <= methods
    for r in rows:
        assert r["dataset"] == "mnist-embedded" and r["convention"] == "device_range"
        assert 0 <= float(r["acc_mean"]) <= 1
        assert float(r["gap_own"]) == pytest.approx(float(r["clean_acc"]) - float(r["acc_mean"]))
    sigma0 = [r for r in rows if r["method"] in ("nit", "tsb") and float(r["sigma"]) == 0]
    assert len(sigma0) == 2
    assert all(float(r["acc_mean"]) == float(r["clean_acc"]) for r in sigma0)
    # TSB's own-gap reference is its own noise-free accuracy (backbone plus block), not the backbone's
    tsb_ref = {float(r["clean_acc"]) for r in rows if r["method"] == "tsb"}
    assert tsb_ref == {float(sigma0[1]["acc_mean"])}
    selected = {r["method"]: int(r["epoch"]) for r in _rows(paths.result("training.csv"))
                if r["selected"] == "True"}
    assert int([r for r in rows if r["method"] == "nit"][0]["train_epochs"]) == selected["nit"]
    tsb = [r for r in rows if r["method"] == "tsb"]
    assert all(0 < float(r["wv_fraction"]) < 0.004 for r in tsb)
    full = [r for r in rows if r["method"] == "full_wv" and float(r["sigma"]) == 0.4][0]
    assert float(full["mapping_time_s"]) > float(tsb[-1]["mapping_time_s"])


def test_claims_metrics_and_ablations(embedded_run):
    _, paths = embedded_run
    claims = json.loads(paths.result("claims.json").read_text())["models"]["lenet3"]
    for key in ("gap_improvement_own", "gap_improvement_ideal", "gap_improvement_own_vs_strongest",
                "gap_improvement_ideal_vs_strongest", "training_speedup",
                "wv_fraction_percent", "mapping_cost_reduction"):
        assert {"measured", "paper_claim", "meets_claim", "definition"} <= set(claims[key])
    for key in ("gap_improvement_own", "gap_improvement_own_vs_strongest"):
        interval = claims[key]["interval95"]
        assert interval["resamples"] == 10_000
        if claims[key]["meets_claim"]:
            assert interval["low"] is not None and interval["low"] > 20
    assert claims["strongest_baseline"] in {"nit", "nit_bnrecal", "nft_ovf", "nft_irs", "correctnet"}
    assert set(claims["selection"]) == {"nit", "nft_ovf", "nft_irs", "tsb", "tsb_settings", "at_edge"}
    # the block width: every width of ablation.widths fine-tuned on validation at every lr
    tsb_rows = _rows(paths.result("tsb_lr.csv"))
    assert {(r["width"], r["lr"]) for r in tsb_rows} == {(w, lr) for w in ("4", "8")
                                                          for lr in ("0.001", "0.01")}
    assert [r["width"] for r in tsb_rows if r["selected"] == "True"] == ["8"]  # the stated one
    best = max(tsb_rows, key=lambda r: float(r["val_acc_mean"]))
    assert claims["selection"]["tsb"]["best_on_validation"] == f"width: {best['width']}"
    assert claims["selection"]["tsb"]["stated_is_best"] == (best["width"] == "8")
    assert claims["training_speedup"]["selected_epoch_ratio"] is not None
    assert "equal_accuracy" in claims["training_speedup"]  # the trajectory was measured
    # judged at the width chosen on validation (a c x c block: c * c weights)
    chosen = int(best["width"])
    assert claims["wv_fraction_percent"]["chosen_width"] == chosen
    assert claims["wv_fraction_percent"]["measured"] == pytest.approx(100 * chosen ** 2 / 18320)
    assert claims["wv_fraction_percent"]["meets_claim"] is (100 * chosen ** 2 / 18320 < 0.4)
    metrics = json.loads(paths.result("metrics/lenet3.json").read_text())  # the DVC metrics
    assert set(metrics) == set(HEADLINE_METRICS)
    assert metrics["tsb_acc"] == pytest.approx(claims["tsb"]["acc_mean"], abs=1e-4)
    assert metrics["wv_pct"] == pytest.approx(100 * chosen ** 2 / 18320, rel=1e-3)
    for plot, (x, _) in PLOT_DATA.items():  # the DVC plots: one column per method
        table = _rows(paths.result(f"plots/{plot}/lenet3.csv"))
        assert list(table[0]) == [x, *plot_methods(plot)]
        assert all(r["tsb"] for r in table) if plot != "training" else all(r["nit"] for r in table)
    ablations = {r["ablation"] for r in _rows(paths.result("ablations.csv"))}
    assert ablations == {"default", "width", "placement", "mode", "read_noise", "no_block"}


def test_per_model_stages_write_per_model_files_that_summarize_concatenates(embedded_run):
    _, paths = embedded_run
    lenet = paths.for_model("lenet3")
    for name in ("training.csv", "finetune.csv", "tsb_lr.csv", "evaluation.csv", "mapping.csv",
                 "robustness.csv", "recipes.csv"):
        assert _rows(lenet.result(name)) == _rows(paths.result(name)), name
    assert json.loads(paths.result("data.json").read_text()) == \
        json.loads(lenet.result("data.json").read_text())
    assert not paths.result("chips.csv").exists() and lenet.result("chips.csv").is_file()
    for stage in ("prepare", "train", "evaluate", "robustness"):
        assert json.loads(lenet.timing(stage).read_text())["model"] == "lenet3"
    for name in ("training.csv", "finetune.csv", "recipes.csv"):
        assert _rows(lenet.result(f"timing/{name}")) == _rows(paths.result(f"timing/{name}")), name
    stages = json.loads(paths.result("provenance.json").read_text())["stages"]
    assert set(stages["lenet3"]) >= {"prepare", "train", "evaluate"} and "summarize" not in stages.get("*", {})
    assert sorted(p.name for p in paths.train_checkpoint_dir("lenet3").glob("*.pt")) == \
        sorted(f"{r}.pt" for r in ("clean", "nit", "tsb_backbone", "nit_epochs",
                                   "tsb_backbone_annealed", "nft_ovf", "nft_irs", "correctnet"))


def test_wall_clock_seconds_are_only_in_timing_files(embedded_run):
    """A rerun on the same machine changes only timing files: no results table outside
    timing/ carries a wall-clock column or key, and each timed table's timing table beside it
    holds one row per results row, with the seconds."""
    from tsblib.schema import TIMED_TABLES, is_wall_clock

    _, paths = embedded_run
    timed = []
    for path in paths.results.rglob("*"):
        if not path.is_file() or "timing" in path.parts or path.name == "provenance.json":
            continue
        if path.suffix == ".csv":
            header = next(csv.reader(path.open()), [])
            assert not [c for c in header if is_wall_clock(c)], path
            if path.name in TIMED_TABLES:
                timed.append(path)
        elif path.suffix == ".json":
            assert not re.search(r'"[a-z_]*seconds[a-z_]*"', path.read_text()), path
    assert {p.name for p in timed} >= {"training.csv", "finetune.csv", "recipes.csv",
                                       "training_extra.csv"}
    for path in timed:
        timing = _rows(path.parent / "timing" / path.name)
        rows = _rows(path)
        keys = TIMED_TABLES[path.name]
        assert [[r[k] for k in keys] for r in timing] == [[r[k] for k in keys] for r in rows]
        assert all(float(r["seconds"]) > 0 for r in timing), path


def test_every_file_a_stage_writes_is_a_dvc_output(embedded_run):
    """Every results file the stages wrote is declared in dvc.yaml (an output DVC does not know
    would be left stale by `dvc repro` and missed by the lock)."""
    _, paths = embedded_run
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    patterns = []
    for entry in spec.values():
        body = entry.get("do") or entry
        for out in body.get("outs", []) + body.get("metrics", []) + body.get("plots", []):
            path = next(iter(out)) if isinstance(out, dict) else out
            regex = re.escape(path).replace(re.escape("${profile}"), "tiny") \
                .replace(re.escape("${item}"), "[a-z0-9]+")
            patterns.append(re.compile(regex + "(/.*)?$"))
    written = [p.relative_to(paths.root).as_posix() for p in paths.results.rglob("*")
               if p.is_file() and "figures" not in p.parts and "notebooks" not in p.parts]
    assert written
    undeclared = [w for w in written if not any(p.match(w) for p in patterns)]
    assert not undeclared, undeclared


def test_only_the_evaluate_stage_reads_the_test_split(embedded_run, monkeypatch):
    import tsblib.stages.common as stages

    params, paths = embedded_run
    profile = load_profile(params, "tiny")
    real = stages.load_prepared
    for stage in stage_names():
        calls = []
        monkeypatch.setattr(stages, "load_prepared",
                            lambda path, with_test=False: calls.append(with_test) or real(path, with_test=with_test))
        run_stage(stage, profile, paths, progress=False)
        # the final evaluations: the sigma sweep and the device models beyond the Gaussian
        assert any(calls) == (stage in ("evaluate", "robustness")), stage
    # and a stage that tried anyway would fail loudly
    from tsblib.data import TestSplitLocked

    locked = real(paths.prepared_file("lenet3"))
    with pytest.raises(TestSplitLocked, match="read only by the final evaluation"):
        locked.test.images


def test_stages_are_deterministic(embedded_run, tmp_path):
    """Re-running evaluate and summarize gives identical accuracies (CPU, fixed seeds)."""
    params, paths = embedded_run
    lenet = paths.for_model("lenet3")
    before = lenet.result("chips.csv").read_text()
    profile = load_profile(params, "tiny")
    evaluate_stage(profile, lenet, progress=False)
    assert lenet.result("chips.csv").read_text() == before


def test_interrupted_train_says_what_finished_and_resumes_from_it(embedded_run, tmp_path,
                                                                  monkeypatch, capsys):
    """Ctrl-C during the third training run: one line on stderr; the rerun trains only the
    runs that had not finished, and every checkpoint and training.csv accuracy equals the
    uninterrupted run's, byte for byte."""
    import shutil

    import tsblib.stages.train as stages

    params, done = embedded_run
    shutil.copy(params, tmp_path / "params.yaml")
    shutil.copytree(done.prepared, ProfilePaths("tiny", tmp_path).prepared)
    real, calls = stages._train_one, []

    def interrupt_third(spec, *args, **kwargs):
        calls.append(spec.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(stages, "_train_one", interrupt_third)
    argv = ["train", "--params", str(tmp_path / "params.yaml"), "--quiet"]
    assert main(argv) == 130
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"reused on a rerun: lenet3/{calls[0]}, lenet3/{calls[1]}" in err and "rerun" in err
    first = list(calls)
    calls.clear()
    monkeypatch.setattr(stages, "_train_one", lambda spec, *a, **k: calls.append(spec.name)
                        or real(spec, *a, **k))
    assert main(argv) == 0
    # every training job (the annealed TSB backbone run trains NIT's objective too)
    assert calls == first[2:] + [j.spec.name for j in stages.training_jobs(
        load_profile(params, "tiny").experiment("lenet3"))][len(first):]
    resumed = ProfilePaths("tiny", tmp_path)
    saved = sorted(done.train_checkpoints.rglob("*.pt"))
    assert saved
    for ckpt in saved:
        again = resumed.train_checkpoints / ckpt.relative_to(done.train_checkpoints)
        assert again.read_bytes() == ckpt.read_bytes(), ckpt.name
    assert _rows(resumed.for_model("lenet3").result("training.csv")) == \
        _rows(done.result("training.csv"))


def test_missing_or_corrupt_inputs_name_the_stage_to_rerun(embedded_run, tmp_path):
    params, paths = embedded_run
    profile = load_profile(params, "tiny")
    other = ProfilePaths("tiny", tmp_path)
    with pytest.raises(FileNotFoundError, match="prepare"):
        train_stage(profile, other, progress=False)
    ckpt = other.train_checkpoint("lenet3", "nit")
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(io.StageInputError, match="corrupt.*rerun the 'train' stage"):
        io.load_checkpoint(ckpt, "train")


def test_a_corrupt_checkpoint_stops_the_stage_before_any_work(embedded_run, tmp_path,
                                                              monkeypatch):
    """evaluate loads every input checkpoint first: a corrupt fine-tuning checkpoint is named
    (file, one-line cause, stage to rerun) before any Monte Carlo runs."""
    import shutil

    import tsblib.stages.evaluate as stages

    params, paths = embedded_run
    profile = load_profile(params, "tiny")
    other = ProfilePaths("tiny", tmp_path)
    shutil.copytree(paths.root / "data", tmp_path / "data")
    bad = other.finetune_checkpoint("lenet3", "tsb")
    bad.write_bytes(bad.read_bytes()[:200])
    monkeypatch.setattr(stages, "prepared_data", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(io.StageInputError) as err:
        evaluate_stage(profile, other, progress=False)
    text = str(err.value)
    assert f"checkpoint {bad} is corrupt" in text and "rerun the 'finetune' stage" in text
    assert "\n" not in text and len(text) < 400


@pytest.mark.skipif(not os.environ.get("TSB_SLOW"),
                    reason="the paper-scale code path (VGG-8 and ResNet-18 at full width, about "
                           "2 min on 2 cores); CI's script runs it (.ci/run); set TSB_SLOW=1")
def test_paper_profile_code_path_on_vgg8_and_resnet18(tmp_path):
    folder = synthetic_image_folder(tmp_path / "pets")
    profile = {**TINY, "data": {"dataset": "image-folder", "root": str(folder)},
               "tsb": {**TINY["tsb"], "width": 64},
               "train": {**TINY["train"], "epochs": 1, "augment": True, "batch_size": 8},
               "ablation": {"widths": [], "placements": [], "sharings": [], "modes": [],
                            "sigma_reads": []},
               "methods": {**TINY["methods"], "methods": ["clean", "nit", "swim", "full_wv", "tsb"]},
               # the robustness code path on both models, at its smallest: read noise keeps the
               # closed form (per-device models cost seconds per ResNet-18 chip on one thread)
               # and exercises the per-forward read in the chip-parallel pass
               "robustness": {"chips": 2, "methods": ["nit", "full_wv", "tsb"], "scenarios": [
                   {"name": "read", "device": {"model": ["gaussian", "read_noise"]}}]},
               "models": {"vgg8": {"num_classes": 2}, "resnet18": {"num_classes": 2}}}
    params = _write_params(tmp_path, {"tinypaper": profile})
    paths = _run_all(params, "tinypaper")
    rows = _rows(paths.result("summary.csv"))
    assert {r["model"] for r in rows} == {"vgg8", "resnet18"}
    assert {r["dataset"] for r in rows} == {"pets"}
    claims = json.loads(paths.result("claims.json").read_text())["models"]
    assert claims["vgg8"]["wv_fraction_percent"]["measured"] < 0.4
    assert claims["resnet18"]["wv_fraction_percent"]["measured"] < 0.4
    robust = _rows(paths.result("robustness.csv"))
    assert {(r["model"], r["method"]) for r in robust} == {
        (m, k) for m in ("vgg8", "resnet18") for k in ("nit", "full_wv", "tsb")}
    # `all --models vgg8` reruns VGG-8 alone: ResNet-18's results stay as they were, byte for
    # byte, and the summary still holds both models
    resnet = paths.for_model("resnet18").model_results("resnet18")
    before = {p: p.read_bytes() for p in resnet.rglob("*") if p.is_file()}
    vgg_eval = paths.for_model("vgg8").result("evaluation.csv")
    vgg_eval.unlink()
    assert main(["all", "--models", "vgg8", "--no-figures", "--quiet", "--params", str(params)]) == 0
    assert {p: p.read_bytes() for p in resnet.rglob("*") if p.is_file()} == before
    assert vgg_eval.is_file()
    assert {r["model"] for r in _rows(paths.result("summary.csv"))} == {"vgg8", "resnet18"}


def test_reduced_width_models_on_an_image_folder_fallback(tmp_path):
    """The cifar-cpu code path at tiny scale: dataset cifar10 read from its image-folder
    fallback (named after the folder), VGG-8 at width 0.25 with channels rounded to the block
    widths in use, and secondary baselines evaluated at the operating sigma only."""
    folder = synthetic_image_folder(tmp_path / "cifar10-jpg")
    profile = {**TINY, "data": {"dataset": "cifar10", "root": str(tmp_path / "none"),
                                "image_folder": str(folder)},
               "runtime": {"device": "cpu", "cpu_bf16": True},
               "train": {**TINY["train"], "epochs": 1, "batch_size": 8},
               "tsb": {**TINY["tsb"], "width": 8, "images": 10},
               "ablation": {"widths": [4, 16], "placements": [], "sharings": [], "modes": [],
                            "sigma_reads": []},
               "evaluation": {**TINY["evaluation"], "sigmas": [0.0, 0.2, 0.4],
                              "secondary_methods": ["clean", "correctnet"],
                              "secondary_sigmas": [0.4]},
               "methods": {**TINY["methods"], "methods": ["clean", "nit", "correctnet", "tsb"]},
               "robustness": {"chips": 2, "methods": ["nit", "tsb"], "scenarios": [
                   {"name": "read", "device": {"model": ["gaussian", "read_noise"]}}]},
               "models": {"vgg8": {"num_classes": 2, "width": 0.25}}}
    paths = _run_all(_write_params(tmp_path, {"small": profile}), "small")
    rows = _rows(paths.result("summary.csv"))
    assert {r["dataset"] for r in rows} == {"cifar10-jpg"}
    sigmas = lambda m: sorted({float(r["sigma"]) for r in rows if r["method"] == m})  # noqa: E731
    assert sigmas("nit") == [0.0, 0.2, 0.4] and sigmas("tsb") == [0.0, 0.2, 0.4]
    assert sigmas("clean") == [0.4] and sigmas("correctnet") == [0.4]
    state = io.load_checkpoint(paths.train_checkpoint("vgg8", "nit"), "train")["state"]
    assert state["features.0.weight"].shape[0] == 16  # 64 x 0.25, a multiple of lcm(8, 4, 16)
    overhead = _rows(paths.result("overhead.csv"))[0]
    assert overhead["tsb_width"] == "8"


SHARED = Path(os.environ.get("TSB_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))


@pytest.mark.skipif(not (SHARED / "MNIST" / "raw").is_dir(), reason="no local MNIST copy")
def test_full_mnist_through_torchvision_at_tiny_scale(tmp_path):
    profile = {**TINY, "data": {"dataset": "mnist", "root": str(SHARED), "train_limit": 300,
                                "test_limit": 100},
               "methods": {**TINY["methods"], "methods": ["clean", "nit", "tsb"]},
               "ablation": {"widths": [], "placements": [], "sharings": [], "modes": [],
                            "sigma_reads": []},
               "models": {"lenet3": {}}}
    paths = _run_all(_write_params(tmp_path, {"tinymnist": profile}), "tinymnist")
    assert {r["dataset"] for r in _rows(paths.result("summary.csv"))} == {"mnist"}


def test_cli_reports_a_bad_parameter_and_writes_nothing(tmp_path, capsys):
    params = _write_params(tmp_path, {"bad": {**TINY, "evaluation": {**TINY["evaluation"],
                                                                      "chips": -1},
                                              "models": {"lenet3": {}}}})
    assert main(["prepare", "--params", str(params)]) == 2
    err = capsys.readouterr().err
    assert "evaluation.chips = -1 is not allowed" in err
    assert not (tmp_path / "data").exists() and not (tmp_path / "results").exists()


@pytest.mark.parametrize("bad,match", [
    ({"tsb": {**TINY["tsb"], "width": 7}}, "tsb.width = 7"),
    ({"data": {"dataset": "mnist", "root": "nowhere"}}, "data.dataset = 'mnist' but .*does not exist"),
    ({"tsb": {**TINY["tsb"], "images": 4000}}, r"models.lenet3.tsb.images = 4000 is not allowed: "
                                               r"the training split .* at most 3600"),
    ({"evaluation": {**TINY["evaluation"], "tsb_chips": 50, "chips": 40}},
     r"evaluation.tsb_chips = 50 is not allowed: expected at most evaluation.chips = 40"),
])
def test_validate_stops_bad_input_before_any_result_is_touched(tmp_path, capsys, bad, match):
    """What `dvc repro` runs first: a bad width or absent data stop it, and the committed results
    of the profile (here: a stand-in data.json) are left as they were."""
    params = _write_params(tmp_path, {"bad": {**TINY, **bad, "models": {"lenet3": {}}}})
    committed = tmp_path / "results" / "bad" / "data.json"
    committed.parent.mkdir(parents=True)
    committed.write_text("{}")
    assert main(["validate", "--record", "--params", str(params)]) == 2
    assert re.search(match, capsys.readouterr().err)
    assert committed.read_text() == "{}" and not (tmp_path / "data").exists()
    assert sorted(p.name for p in (tmp_path / "results" / "bad").iterdir()) == ["data.json"]


@pytest.mark.parametrize("text,match", [
    ("", r"params.yaml is empty: it needs `profile:`, `models:` and `profiles:`"),
    ("- a\n- b\n", r"params.yaml must be a mapping .* not a list"),
])
def test_validate_names_an_empty_or_non_mapping_parameter_file(tmp_path, capsys, text, match):
    """What reproduce.sh runs before DVC parses the stages: DVC's own parser would only say
    "failed to parse 'stages.prepare.foreach'"."""
    params = tmp_path / "params.yaml"
    params.write_text(text)
    assert main(["validate", "--params", str(params)]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_cli_help_lists_every_stage(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for stage in ("prepare", "recipes", "train", "finetune", "evaluate", "mapping", "summarize", "figure",
                  "demo", "check-repro"):
        assert stage in out


def test_robustness_stage_covers_every_condition_and_reuses_the_evaluation_chips(embedded_run):
    params, paths = embedded_run
    rows = _rows(paths.result("robustness.csv"))
    from tsblib.methods.registry import robust_deployments

    conditions = {(r["scenario"], r["time_s"], r["compensation"]) for r in rows}
    assert len(conditions) == 3 + 4 and len(rows) == 7 * len(robust_deployments())
    assert {r["device_model"] for r in rows} == {"gaussian", "level_dependent+stuck_at",
                                                 "gaussian+read_noise", "slice+drift"}
    for r in rows:
        assert 0 <= float(r["acc_p01"]) <= float(r["acc_p50"]) <= 1
        assert 0 <= float(r["yield_1pt"]) <= float(r["yield_2pt"]) <= 1
    # the Gaussian scenario's NIT chips are the evaluate stage's first chips
    gaussian = next(r for r in rows if r["scenario"] == "gaussian" and r["method"] == "nit")
    chips = [float(r["acc"]) for r in _rows(paths.for_model("lenet3").result("chips.csv"))
             if r["method"] == "nit" and float(r["sigma"]) == 0.4][:2]
    assert float(gaussian["acc_mean"]) == pytest.approx(sum(chips) / 2, abs=1e-12)
    # stuck devices make verify give up at the cap: full write-verify costs more than Gaussian
    cost = {r["scenario"]: float(r["mapping_time_s"]) for r in rows if r["method"] == "full_wv"}
    assert cost["stuck"] > cost["gaussian"]


def test_summarize_names_the_model_and_stage_whose_results_are_missing(embedded_run, tmp_path):
    import shutil

    from tsblib.report import summarize_stage

    params, done = embedded_run
    shutil.copytree(done.results, tmp_path / "results" / "tiny")
    paths = ProfilePaths("tiny", tmp_path)
    paths.for_model("lenet3").result("evaluation.csv").unlink()
    with pytest.raises(io.StageInputError, match=r"'lenet3' has not been through the 'evaluate' "
                                                 r"stage; run `dvc repro evaluate@lenet3`"):
        summarize_stage(load_profile(params, "tiny"), paths, progress=False)
