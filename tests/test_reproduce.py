import csv

import pytest

from tsblib.reproduce import compare
from tsblib.schema import SUMMARY

SUMMARY_COLUMNS = list(SUMMARY.columns)


def _write(path, **over):
    row = {c: "0" for c in SUMMARY_COLUMNS}
    row.update(model="lenet3", method="nit", swim_p_percent="", sigma="0.5", acc_mean="0.8",
               clean_acc="0.9", dataset="mnist-embedded", convention="device_range", train_flops="3")
    row.update(over)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, SUMMARY_COLUMNS)
        w.writeheader()
        w.writerow(row)
    return path


def test_identical_summaries_pass_and_say_so(tmp_path):
    ok, lines, n = compare(_write(tmp_path / "a.csv"), _write(tmp_path / "b.csv", train_flops="9"))
    assert ok and n == 1 and lines[-1].endswith("yes")


def test_accuracy_within_tolerance_passes_outside_fails(tmp_path):
    a = _write(tmp_path / "a.csv")
    assert compare(a, _write(tmp_path / "b.csv", acc_mean="0.81"))[0]
    ok, lines, _ = compare(a, _write(tmp_path / "c.csv", acc_mean="0.7"))
    assert not ok and any("acc_mean" in line for line in lines)


def test_configuration_columns_must_match_exactly(tmp_path):
    ok, lines, _ = compare(_write(tmp_path / "a.csv"), _write(tmp_path / "b.csv", wv_fraction="0.1"))
    assert not ok and any("must be exact" in line for line in lines)
    ok, _, _ = compare(_write(tmp_path / "a.csv"), _write(tmp_path / "c.csv", method="tsb"))
    assert not ok


def test_a_summary_without_the_yield_columns_still_compares(tmp_path):
    old_columns = SUMMARY_COLUMNS[:SUMMARY_COLUMNS.index("convention") + 1]
    row = {c: "0" for c in old_columns}
    row.update(model="lenet3", method="nit", swim_p_percent="", sigma="0.5", acc_mean="0.8",
               clean_acc="0.9", dataset="mnist-embedded", convention="device_range")
    with open(tmp_path / "old.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, old_columns)
        w.writeheader()
        w.writerow(row)
    ok, _, n = compare(tmp_path / "old.csv", _write(tmp_path / "new.csv", acc_p01="0.5"))
    assert ok and n == 1
    ok, lines, _ = compare(_write(tmp_path / "a.csv"), _write(tmp_path / "b.csv", yield_1pt="0.5"))
    assert not ok and any("yield_1pt" in line for line in lines)


def test_every_summary_column_is_keyed_compared_or_knowingly_ignored():
    # a new summary.csv column must say how check-repro treats it, or it would go unchecked
    from tsblib.reproduce import EXACT, IGNORED, KEY, TOLERANCE

    groups = [set(KEY), set(EXACT), set(TOLERANCE), set(IGNORED)]
    assert sum(len(g) for g in groups) == len(set().union(*groups)), "a column is in two groups"
    assert set().union(*groups) == set(SUMMARY_COLUMNS)


def test_the_verdict_separates_a_regression_from_another_machine():
    from tsblib.reproduce import Verdict, verdict

    # on the committed results' machine: beyond the tolerances is a regression
    assert verdict(True, True, None, "d") is Verdict.PASS
    assert verdict(False, True, None, "d") is Verdict.FAIL
    # elsewhere: this machine's record of the committed code decides
    assert verdict(False, False, "d", "d") is Verdict.OTHER_MACHINE
    assert verdict(False, False, "r", "d") is Verdict.FAIL
    assert verdict(True, False, "r", "d") is Verdict.FAIL  # within, yet not what the code made
    assert verdict(True, False, "d", "d") is Verdict.PASS
    assert verdict(False, False, None, "d") is Verdict.OTHER_MACHINE  # undecided: no record
    assert [v.value for v in Verdict] == [0, 1, 3]  # check-repro's exit status


def test_machines_are_read_from_provenance(tmp_path):
    import json

    from tsblib.reproduce import MACHINE_FIELDS, machine_key, result_machines

    intel = {"cpu": "Xeon", "cpu_isa": "amx_bf16", "torch": "2.14.1", "cpu_threads": 2,
             "gpu": "none", "date_utc": "2026-12-06T00:00:00Z", "platform": "Linux"}
    amd = {**intel, "cpu": "EPYC", "cpu_isa": "avx512_bf16", "date_utc": "2026-12-07T00:00:00Z"}
    prov = {"stages": {"lenet3": {"train": {"machine": intel}, "evaluate": {"machine": intel}},
                       "*": {"summarize": {"machine": {**intel, "date_utc": "later"}}}}}
    (tmp_path / "p.json").write_text(json.dumps(prov))
    assert result_machines(tmp_path / "p.json") == [{k: intel[k] for k in MACHINE_FIELDS}]
    prov["stages"]["lenet3"]["evaluate"]["machine"] = amd
    (tmp_path / "p.json").write_text(json.dumps(prov))
    assert len(result_machines(tmp_path / "p.json")) == 2  # dates differ, machines too
    assert machine_key(intel) == "Xeon | amx_bf16 | torch 2.14.1 | 2 threads | gpu none"


def test_the_records_name_the_committed_results_on_their_own_machine():
    # the record of the machine that made the committed embedded results is their digest
    from pathlib import Path

    from tsblib.io import table_digest
    from tsblib.reproduce import load_records, machine_key, result_machines

    root = Path(__file__).resolve().parents[1] / "results" / "embedded"
    machines = result_machines(root / "provenance.json")
    assert len(machines) == 1
    records = load_records()["embedded"]
    if machine_key(machines[0]) not in records:  # regenerated on a machine without a record
        pytest.skip(f"no record for {machine_key(machines[0])}")
    assert records[machine_key(machines[0])] == table_digest(root / "summary.csv")
