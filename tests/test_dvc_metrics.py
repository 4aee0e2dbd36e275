"""The DVC metrics are a few flat headline numbers per model that fit a terminal, and
`python -m tsblib claims` prints every claim of every model from the committed claims.json."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from tsblib.cli import main
from tsblib.headline import VERDICTS, claims_text
from tsblib.schema import CLAIM_BY_KEY, CLAIMS
from tsblib.report import HEADLINE_METRICS, headline_metrics

from conftest import ROOT

PROFILES = ("embedded", "paper", "cifar-cpu")
"""Profiles with committed results."""

TERMINAL = 120
"""Widest line `dvc metrics show` and the claims table may print (a terminal of 120 columns)."""


def _claims(profile: str) -> dict:
    return json.loads((ROOT / "results" / profile / "claims.json").read_text())


def _dvc_yaml() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())


def _dvc_available() -> bool:
    """dvc importable (a dependency) and a DVC project in a git checkout."""
    return (importlib.util.find_spec("dvc") is not None and (ROOT / ".dvc").is_dir()
            and (ROOT / ".git").exists())


@pytest.mark.parametrize("profile", PROFILES)
def test_metrics_files_are_flat_small_and_agree_with_claims(profile):
    folder = ROOT / "results" / profile / "metrics"
    claims = _claims(profile)
    assert sorted(p.stem for p in folder.glob("*.json")) == sorted(claims["models"])
    expected = headline_metrics(claims)
    for path in folder.glob("*.json"):
        metrics = json.loads(path.read_text())
        assert list(metrics) == list(HEADLINE_METRICS)
        assert len(metrics) <= 8
        for key, value in metrics.items():
            assert value is None or isinstance(value, (int, float)), (path, key, value)
            assert value is None or len(repr(value)) <= 8, (path, key, value)  # narrow columns
        assert metrics == expected[path.stem]


def test_headline_metrics_of_a_claims_entry():
    entry = json.loads(json.dumps(_claims("embedded")["models"]["lenet3"]))
    metrics = headline_metrics({"models": {"m": entry}})["m"]
    assert metrics["tsb_acc"] == pytest.approx(entry["tsb"]["acc_mean"], abs=1e-4)
    best = entry["per_baseline"][entry["strongest_baseline"]]["acc_mean"]
    assert metrics["best_acc"] == pytest.approx(best, abs=1e-4)
    assert metrics["gap_x_lo"] == pytest.approx(entry["gap_improvement_ideal"]["interval95"]["low"],
                                                rel=1e-3)
    assert metrics["gap_x_lo"] <= metrics["gap_x"]
    # an unbounded gap ratio (TSB gap <= 0) has no finite value: null, as in claims.json
    entry["gap_improvement_ideal"]["measured"] = None
    entry["gap_improvement_ideal"]["interval95"]["low"] = None
    metrics = headline_metrics({"models": {"m": entry}})["m"]
    assert metrics["gap_x"] is None and metrics["gap_x_lo"] is None


def test_only_the_headline_metrics_are_dvc_metrics():
    stages = _dvc_yaml()["stages"]
    declared = {name: [next(iter(m)) if isinstance(m, dict) else m for m in s.get("metrics", [])]
                for name, s in stages.items() if s.get("metrics")}
    assert declared == {"summarize": ["results/${profile}/metrics"]}
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in stages["summarize"]["outs"]]
    assert "results/${profile}/claims.json" in outs  # a plain output, still tracked
    for stage in stages.values():  # every declared output of the pipeline exists (committed)
        body = stage.get("do", stage)
        for out in body.get("outs", []) + body.get("metrics", []):
            path = next(iter(out)) if isinstance(out, dict) else out
            if path.startswith("results/") and "${item}" not in path:
                assert (ROOT / path.replace("${profile}", "embedded")).exists(), path


@pytest.mark.skipif(not _dvc_available(), reason="needs dvc and the git checkout")
def test_dvc_metrics_show_fits_a_terminal():
    out = subprocess.run([sys.executable, "-m", "dvc", "metrics", "show"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 + len(_claims("embedded")["models"])  # header + one row per model
    assert max(len(line) for line in lines) <= TERMINAL, out
    for key in HEADLINE_METRICS:
        assert key in lines[0]


@pytest.mark.parametrize("profile", PROFILES)
def test_claims_table_prints_every_claim_of_every_model(profile):
    claims = _claims(profile)
    text = claims_text(ROOT / "results" / profile)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 110
    for model, entry in claims["models"].items():
        start = next(i for i, line in enumerate(lines) if line.startswith(f"{model} on "))
        header = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("claim "))
        block = lines[header + 1:header + 1 + len(CLAIMS)]
        keys = [c.key for c in CLAIMS if c.key in entry]
        assert len(keys) == len(CLAIMS)
        for key, line in zip(keys, block):
            label = CLAIM_BY_KEY[key].terminal.format(nit="NIT",
                                                      strongest=entry["strongest_baseline"])
            assert line.strip().startswith(label)
            assert entry[key]["paper_claim"] in line
            verdict = line.rstrip()
            if entry[key]["meets_claim"] is None and entry[key].get("verdict_reason"):
                # undecided with a reason: a numbered footnote under the table gives it
                verdict, _, mark = verdict.rpartition(" (")
                assert f"  ({mark} {entry[key]['verdict_reason']}" in text
            assert verdict.endswith(VERDICTS[entry[key]["meets_claim"]])
    passed = sum(entry[k]["meets_claim"] is True for entry in claims["models"].values()
                 for k in CLAIM_BY_KEY)
    assert f"{passed} of {len(CLAIMS) * len(claims['models'])} claims pass" in text
    assert lines[-1].startswith("Figures: ") and f"results/{profile}/figures/" in lines[-1]


def test_claims_table_gap_values_carry_their_interval():
    entry = _claims("embedded")["models"]["lenet3"]
    text = claims_text(ROOT / "results" / "embedded")
    iv = entry["gap_improvement_ideal"]["interval95"]
    assert f"{iv['point']:#.3g}x [{iv['low']:#.3g}, {iv['high']:#.3g}]" in text


def test_verdict_words_are_the_figures_words():
    from tsblib.headline import verdict_text

    for meets, word in VERDICTS.items():
        assert verdict_text(meets) == word


def test_claims_command(capsys):
    assert main(["claims", "--params", str(ROOT / "params.yaml"), "--profile", "paper"]) == 0
    out = capsys.readouterr().out
    assert "Headline claims of profile 'paper'" in out
    configured = yaml.safe_load((ROOT / "params.yaml").read_text())["profiles"]["paper"]["models"]
    missing = [m for m in configured if m not in _claims("paper")["models"]]
    if missing:  # models configured but not yet run are named, not silently left out
        assert f"No results yet for {', '.join(missing)}" in out


def test_claims_command_without_results(tmp_path, capsys):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    assert main(["claims", "--params", str(tmp_path / "params.yaml")]) == 2
    err = capsys.readouterr().err
    assert "claims.json not found" in err and "dvc repro" in err


def test_reproduce_script_ends_with_the_claims_table_and_the_reproduction_verdict():
    script = (ROOT / "scripts" / "reproduce.sh").read_text()
    commands = [line.strip() for line in script.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1] == "python -m tsblib compare-committed || true"
    after_repro = commands[commands.index("python -m tsblib claims"):]
    assert all(c.startswith(("python -m tsblib", "[ -f", "||", '"from', "echo")) for c in after_repro)
    assert "dvc metrics show" not in script


def test_figure_kernels_use_encrypted_sockets_where_supported():
    import zmq
    from jupyter_client.manager import KernelManager

    from tsblib.figures.notebook import kernel_config

    config = kernel_config()
    if zmq.has("curve") and KernelManager.class_traits().get("transport_encryption"):
        assert config.KernelManager.transport_encryption == "auto"
    else:
        assert "KernelManager" not in config
