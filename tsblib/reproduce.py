"""Reproduction check: regenerate a profile from scratch in a temporary folder and compare its
summary.csv with the committed one, column by column, within stated tolerances."""
from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

from tsblib.profiles import load_profile
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
which hang on one or two chips). A column absent from either file is not compared."""

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


def check_reproduction(params: Path, profile_name: str | None = None,
                       workdir: Path | None = None) -> tuple[bool, str]:
    """Rerun prepare ... summarize for the profile in a temporary copy; compare summary.csv."""
    params = Path(params).resolve()
    profile = load_profile(params, profile_name)
    committed = ProfilePaths(profile.name, params.parent).result("summary.csv")
    if not committed.is_file():
        return False, f"no committed {committed} to compare with; run `dvc repro` first"
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="tsb-repro-"))
    work.mkdir(parents=True, exist_ok=True)
    shutil.copy(params, work / "params.yaml")
    paths = ProfilePaths(profile.name, work)
    for stage in stage_names():
        run_stage(stage, profile, paths, progress=False)
    ok, lines, n = compare(committed, paths.result("summary.csv"))
    head = (f"reproduction check of profile {profile.name!r}: {n} rows compared in {work}: "
            + ("PASS" if ok else "FAIL"))
    return ok, "\n".join([head, *lines])
