"""Does a rerun reproduce the committed results (tsblib/committed.py)?"""
import json
import shutil
import subprocess

import pytest

from tsblib.cli import main
from tsblib.committed import compare_results, differing_columns, differing_keys, report

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _repo(tmp_path):
    results = tmp_path / "results" / "p"
    (results / "timing").mkdir(parents=True)
    (results / "summary.csv").write_text("method,acc_mean,train_seconds\nnit,0.5,12.5\n")
    (results / "chips.csv").write_text("method,chip,acc\nnit,0,0.5\nnit,1,0.6\n")
    (results / "claims.json").write_text(json.dumps({"nit": {"acc": 0.5, "seconds": 3.0},
                                                     "machine": "x"}))
    (results / "timing" / "train.json").write_text(json.dumps({"seconds": 1.0}))
    for cmd in (["init", "-q"], ["add", "-A"],
                ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "r"]):
        subprocess.run(["git", *cmd], cwd=tmp_path, check=True)
    return results


def test_a_rerun_that_differs_only_in_wall_clock_time_is_identical(tmp_path):
    results = _repo(tmp_path)
    (results / "summary.csv").write_text("method,acc_mean,train_seconds\nnit,0.5,99.0\n")
    (results / "claims.json").write_text(json.dumps({"nit": {"acc": 0.5, "seconds": 7.0},
                                                     "machine": "y"}))
    (results / "timing" / "train.json").write_text(json.dumps({"seconds": 2.0}))
    verdicts = compare_results(tmp_path, results)
    assert {v.path: v.status for v in verdicts} == {
        "results/p/chips.csv": "identical", "results/p/claims.json": "identical",
        "results/p/summary.csv": "identical"}  # timing/ is not compared
    ok, text = report(verdicts)
    assert ok and text.startswith("Reproduction: every results file is identical")


def test_a_moved_accuracy_is_named_with_its_column(tmp_path, capsys):
    results = _repo(tmp_path)
    (results / "chips.csv").write_text("method,chip,acc\nnit,0,0.5\nnit,1,0.7\n")
    (results / "extra.csv").write_text("a\n1\n")
    ok, text = report(compare_results(tmp_path, results))
    assert not ok
    assert "Reproduction: 2 of 4 results files identical" in text
    assert "differs   results/p/chips.csv: acc" in text and "new       results/p/extra.csv" in text
    (tmp_path / "params.yaml").write_text("profile: p\nmodels: [lenet3]\nprofiles:\n  p:\n"
                                          "    models: {lenet3: {}}\n")
    assert main(["compare-committed", "--params", str(tmp_path / "params.yaml")]) == 1
    assert "chips.csv: acc" in capsys.readouterr().out


def test_rows_and_keys_that_differ():
    assert differing_columns("a,b\n1,2\n", "a,b\n1,2\n1,3\n") == ("rows", "a", "b")
    assert differing_columns("a,b\n1,2\n", "a,c\n1,2\n") == ("b", "c")
    assert differing_keys('{"x": 1, "y": {"seconds": 1, "z": 2}}',
                          '{"x": 1, "y": {"seconds": 5, "z": 3}}') == ("y",)
