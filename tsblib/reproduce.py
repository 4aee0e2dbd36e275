"""Reproduction check: regenerate a profile from scratch in a temporary folder and compare its
summary.csv with the committed one, column by column, within stated tolerances.

The floating-point kernels, and so the last digits of every trained weight, depend on the
machine (CPU model, ISA flags, torch, threads). On the machine that produced the committed
results a rerun is bit-identical, so a difference beyond the tolerances there is a regression.
On another machine it may be the kernels: there the fresh summary is also compared, bit for bit,
with that machine's record of what the committed code produces on it
(`tests/repro_fingerprints.json`, written by `check-repro --record`), which separates a
regression from a cross-machine difference. The verdict (`Verdict`) says which it is.
"""
from __future__ import annotations

import csv
import enum
import json
import shutil
import tempfile
from pathlib import Path

from tsblib import io
from tsblib.profiles import load_profile
from tsblib.provenance import kernel_key
from tsblib.paths import ProfilePaths
from tsblib.pipeline import run_stage, stage_names

KEY = ("model", "method", "swim_p_percent", "sigma")
"""Columns identifying a summary row."""

EXACT = ("profile", "dataset", "chips", "wv_fraction", "mapping_time_s", "mapping_energy_j",
         "convention")
"""Columns that follow from the configuration alone: must match exactly."""

TOLERANCE = {"clean_acc": 0.02, "acc_mean": 0.02, "acc_std": 0.02, "acc_ci95": 0.02,
             "gap_own": 0.03, "gap_ideal": 0.03, "acc_p01": 0.05, "acc_p05": 0.04,
             "acc_p50": 0.03, "yield_1pt": 0.15, "yield_2pt": 0.15}
"""Absolute tolerances of the columns computed by training and Monte Carlo. On the machine and
torch build that produced the committed results the CPU pipeline is bit-reproducible (all of
these differ by 0); another CPU may pick other floating-point kernels, and training amplifies
rounding differences, hence the tolerance (wider for the low percentiles and yield fractions,
which hang on one or two chips). They do not always suffice: on an AMD EPYC (bf16 without AMX)
the embedded profile's rerun of the committed code lies beyond them in 4 of its 87 rows (see the
guide, "Reproducibility"), which is why another machine's verdict also reads its record. A
column absent from either file is not compared."""

IGNORED = ("train_epochs", "train_flops")
"""Never compared (only `EXACT` and `TOLERANCE` columns are): the deployed epoch and the FLOPs
that follow from it (chosen on validation accuracy, so a rounding difference on another CPU may
move it by an epoch; the accuracies it leads to are compared). Wall-clock seconds are not in
summary.csv at all (timing tables, `tsblib.schema.TIMED_TABLES`). `KEY`, `EXACT`, `TOLERANCE` and
this name every summary.csv column once (tests/test_reproduce.py), so a new column cannot go
unchecked unnoticed."""


def _read(path: Path) -> dict[tuple, dict[str, str]]:
    with open(path) as fh:
        return {tuple(r[k] for k in KEY): r for r in csv.DictReader(fh)}


def compare(committed: Path, fresh: Path) -> tuple[bool, list[str], int]:
    """Compare two summary.csv files; return (ok, report lines, number of rows compared)."""
    old, new = _read(committed), _read(fresh)
    lines: list[str] = []
    ok = True
    if set(old) != set(new):
        ok = False
        lines.append(f"rows differ: only committed {sorted(set(old) - set(new))[:5]}, "
                     f"only fresh {sorted(set(new) - set(old))[:5]}")
    worst = {c: 0.0 for c in TOLERANCE}
    identical = True
    for key in sorted(set(old) & set(new)):
        a, b = old[key], new[key]
        for col in EXACT:
            if a[col] != b[col]:
                ok = False
                lines.append(f"{key}: {col} committed {a[col]} fresh {b[col]} (must be exact)")
        for col, tol in TOLERANCE.items():
            if col not in a or col not in b:  # a summary written before the column existed
                continue
            if a[col] == b[col]:  # also both empty (one chip: no interval)
                continue
            if "" in (a[col], b[col]):
                ok = False
                lines.append(f"{key}: {col} committed {a[col]!r} fresh {b[col]!r}")
                continue
            diff = abs(float(a[col]) - float(b[col]))
            identical &= a[col] == b[col]
            worst[col] = max(worst[col], diff)
            if diff > tol:
                ok = False
                lines.append(f"{key}: {col} committed {a[col]} fresh {b[col]} (|diff| {diff:.4f} > {tol})")
    lines.append("largest differences: " + ", ".join(f"{c} {d:.4f} (tol {TOLERANCE[c]})"
                                                      for c, d in worst.items()))
    lines.append("accuracy columns bit-identical: " + ("yes" if identical else "no"))
    return ok, lines, len(set(old) & set(new))


MACHINE_FIELDS = ("cpu", "cpu_isa", "torch", "cpu_threads", "gpu")
"""The provenance fields that decide the floating-point kernels and the order of their sums."""

RECORDS = Path(__file__).resolve().parents[1] / "tests" / "repro_fingerprints.json"
"""Per profile and machine: the sha256 of the summary.csv the committed code produces there."""


class Verdict(enum.Enum):
    """What a reproduction check found, and the exit status of `check-repro`."""

    PASS = 0
    """Within the tolerances of the committed results (and identical to this machine's record,
    where there is one)."""
    FAIL = 1
    """A regression: beyond the tolerances on the machine of the committed results, or not this
    machine's record of the committed code (or no committed results to compare with)."""
    OTHER_MACHINE = 3
    """Beyond the tolerances on another machine than the committed results': identical to this
    machine's record of the committed code (a cross-machine difference, not a regression), or
    no record for this machine (undecided; `golden` then checks the code)."""


def machine(info: dict) -> dict:
    """The `MACHINE_FIELDS` of a provenance `machine` entry."""
    return {k: info.get(k) for k in MACHINE_FIELDS}


def machine_key(info: dict) -> str:
    """One line naming a machine's `MACHINE_FIELDS`, the key of its record: its kernels
    (`provenance.kernel_key`), threads and GPU."""
    return f"{kernel_key(info)} | {info.get('cpu_threads')} threads | gpu {info.get('gpu')}"


def result_machines(provenance: Path) -> list[dict]:
    """The distinct machines (`machine`) the stages of a profile's provenance.json ran on."""
    stages = io.read_json(provenance, "summarize").get("stages", {})
    found: list[dict] = []
    for entries in stages.values():
        for entry in (entries.values() if isinstance(entries, dict) else []):
            if isinstance(entry, dict) and isinstance(entry.get("machine"), dict):
                m = machine(entry["machine"])
                if m not in found:
                    found.append(m)
    return found


def load_records(path: Path = RECORDS) -> dict[str, dict[str, str]]:
    """{profile: {machine key: summary digest}} (empty when the file is absent)."""
    return json.loads(path.read_text()) if path.is_file() else {}


def verdict(within: bool, same_machine: bool, recorded: str | None, fresh: str) -> Verdict:
    """The verdict from the comparison with the committed results (`within` the tolerances),
    whether this is their machine, and this machine's record (None: no record)."""
    if recorded is not None and recorded != fresh:
        return Verdict.FAIL
    if within:
        return Verdict.PASS
    return Verdict.FAIL if same_machine else Verdict.OTHER_MACHINE


def check_reproduction(params: Path, profile_name: str | None = None,
                       workdir: Path | None = None, record: bool = False,
                       records: Path = RECORDS) -> tuple[Verdict, str]:
    """Rerun prepare ... summarize for the profile in a temporary copy; compare summary.csv with
    the committed one and with this machine's record; with `record`, write the fresh digest as
    this machine's record instead (on the commit of the committed results)."""
    params = Path(params).resolve()
    profile = load_profile(params, profile_name)
    committed_paths = ProfilePaths(profile.name, params.parent)
    committed = committed_paths.result("summary.csv")
    if not committed.is_file():
        return Verdict.FAIL, f"no committed {committed} to compare with; run `dvc repro` first"
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="tsb-repro-"))
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(params, work / "params.yaml")
    paths = ProfilePaths(profile.name, work)
    for stage in stage_names():
        run_stage(stage, profile, paths, progress=False)
    within, lines, n = compare(committed, paths.result("summary.csv"))
    theirs = result_machines(committed_paths.result("provenance.json"))
    ours = result_machines(paths.result("provenance.json"))
    key = machine_key(ours[0]) if len(ours) == 1 else "mixed"
    fresh = io.table_digest(paths.result("summary.csv"))
    all_records = load_records(records)
    if record:
        all_records.setdefault(profile.name, {})[key] = fresh
        io.write_json(records, all_records)
        lines.append(f"recorded this machine's summary digest ({key}) in {records}")
    recorded = all_records.get(profile.name, {}).get(key)
    found = verdict(within, theirs == ours, recorded, fresh)
    lines.append("committed results made on: " + "; ".join(machine_key(m) for m in theirs))
    lines.append(f"this run: {key}; its record: " + (
        "none (`check-repro --record` on the commit of the committed results writes it)"
        if recorded is None else "identical" if recorded == fresh else "DIFFERENT"))
    what = {Verdict.PASS: "PASS",
            Verdict.FAIL: "FAIL",
            Verdict.OTHER_MACHINE: ("beyond the tolerances on another machine than the committed "
                                    "results' (" + ("identical to this machine's record of the "
                                    "committed code: a cross-machine difference, not a regression"
                                    if recorded is not None else "no record for this machine: "
                                    "undecided; `python -m tsblib golden` checks the code") + ")")}
    head = f"reproduction check of profile {profile.name!r}: {n} rows compared in {work}: "
    return found, "\n".join([head + what[found], *lines])
