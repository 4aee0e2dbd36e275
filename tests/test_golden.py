"""Golden fingerprints (tsblib/golden.py): a tiny run per model family whose hashes show at once
whether a change to shared code moves any result."""
import json

import pytest

from tsblib import golden
from tsblib.cli import main


def test_compare_names_every_file_that_moved_appeared_or_went():
    expected = {"vgg8/fp32": {"chips.csv": "a", "training.csv": "b", "old.csv": "c"}}
    found = {"vgg8/fp32": {"chips.csv": "a", "training.csv": "B", "new.csv": "d"}}
    assert golden.compare(found, expected) == ["vgg8/fp32: new.csv new", "vgg8/fp32: old.csv gone",
                                               "vgg8/fp32: training.csv moved"]
    assert golden.compare(expected, expected) == []


def test_record_keeps_the_other_machines_fingerprints(tmp_path, monkeypatch):
    path = tmp_path / "golden.json"
    path.write_text(json.dumps({"another cpu": {"lenet3/fp32": {"x.csv": "0"}}}))
    monkeypatch.setattr(golden, "machine_key", lambda: "this cpu")
    golden.record({"lenet3/fp32": {"x.csv": "1"}}, path)
    assert golden.load(path) == {"another cpu": {"lenet3/fp32": {"x.csv": "0"}},
                                 "this cpu": {"lenet3/fp32": {"x.csv": "1"}}}


@pytest.fixture(scope="module")
def lenet_case(tmp_path_factory):
    return golden.run_case(golden.Case("lenet3", False), tmp_path_factory.mktemp("golden"))


def test_a_case_hashes_every_results_table_and_checkpoint(lenet_case):
    assert {"chips.csv", "evaluation.csv", "training.csv", "trajectory.csv", "summary.csv",
            "finetune.csv", "robustness.csv"} <= {n.rsplit("/", 1)[-1] for n in lenet_case}
    assert any(n.startswith("checkpoints/") and n.endswith("nit.pt") for n in lenet_case)
    assert all(len(h) == 64 for h in lenet_case.values())


def test_committed_fingerprints_hold_on_this_machine(lenet_case, tmp_path):
    """The LeNet-3 case reproduces its committed hashes bit for bit (the other cases:
    `python -m tsblib golden`, run by .ci/run). Machines without committed fingerprints skip."""
    expected = golden.load().get(golden.machine_key())
    if expected is None:
        pytest.skip(f"no golden fingerprints for {golden.machine_key()!r}")
    assert golden.compare({"lenet3/fp32": lenet_case},
                          {"lenet3/fp32": expected["lenet3/fp32"]}) == []


def test_cli_without_fingerprints_for_this_machine_says_how_to_record_them(monkeypatch, capsys):
    monkeypatch.setattr(golden, "fingerprints", lambda progress=True: {})
    monkeypatch.setattr(golden, "load", lambda path=golden.FINGERPRINTS: {})
    assert main(["golden", "--quiet"]) == 2
    assert "golden --write" in capsys.readouterr().err
