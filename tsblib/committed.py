"""Does a rerun reproduce the committed results? Every results table (CSV) and JSON file of a
profile in the working tree is compared with the same file as committed (git HEAD), with
wall-clock columns and machine keys left out (`tsblib.schema`): the verdict `reproduce.sh`
prints at its end, per file, naming the columns that differ."""
from __future__ import annotations

import csv
import io as _io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsblib.schema import MACHINE_KEYS, TIMING_FOLDER, is_wall_clock

SKIPPED = (TIMING_FOLDER, "provenance.json")
"""Results entries that only describe the run (wall-clock time, machine, code): not compared."""


@dataclass(frozen=True)
class FileVerdict:
    """How one results file compares with its committed copy."""

    path: str
    """Path relative to the repository root."""
    status: str
    """'identical', 'differs', 'new' (not committed) or 'unreadable'."""
    columns: tuple[str, ...] = ()
    """For 'differs': the columns (CSV) or keys (JSON) whose values differ ('rows' when the
    number of rows differs)."""


def committed_text(root: Path, path: str) -> str | None:
    """`path` as committed at HEAD in the git repository at `root` (None when absent)."""
    done = subprocess.run(["git", "show", f"HEAD:{path}"], cwd=root, capture_output=True,
                          text=True)
    return done.stdout if done.returncode == 0 else None


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(_io.StringIO(text)))


def differing_columns(committed: str, fresh: str) -> tuple[str, ...]:
    """Columns of two CSV texts whose values differ, wall-clock columns left out ('rows' first
    when the row counts differ; a column present in one file only counts as differing)."""
    old, new = _csv_rows(committed), _csv_rows(fresh)
    out = ["rows"] if len(old) != len(new) else []
    names = list(dict.fromkeys([*(old[0] if old else {}), *(new[0] if new else {})]))
    for name in names:
        if is_wall_clock(name):
            continue
        if [r.get(name) for r in old] != [r.get(name) for r in new]:
            out.append(name)
    return tuple(out)


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items()
                if not is_wall_clock(str(k)) and k not in MACHINE_KEYS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def differing_keys(committed: str, fresh: str) -> tuple[str, ...]:
    """Top-level keys of two JSON texts whose values differ (wall-clock and machine keys left
    out at every depth)."""
    old, new = _strip(json.loads(committed)), _strip(json.loads(fresh))
    if not isinstance(old, dict) or not isinstance(new, dict):
        return () if old == new else ("(whole file)",)
    return tuple(k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k))


def compare_results(root: Path, results: Path) -> list[FileVerdict]:
    """A verdict for every CSV and JSON file under `results` (a profile's results folder)."""
    verdicts = []
    for path in sorted(p for p in results.rglob("*") if p.suffix in (".csv", ".json")):
        rel = path.relative_to(results)
        if rel.parts[0] in SKIPPED or any(part in SKIPPED for part in rel.parts):
            continue
        name = path.relative_to(root).as_posix()
        committed = committed_text(root, name)
        if committed is None:
            verdicts.append(FileVerdict(name, "new"))
            continue
        fresh = path.read_text()
        try:
            cols = (differing_columns if path.suffix == ".csv" else differing_keys)(committed,
                                                                                     fresh)
        except (ValueError, csv.Error):
            verdicts.append(FileVerdict(name, "unreadable"))
            continue
        verdicts.append(FileVerdict(name, "differs" if cols else "identical", cols))
    return verdicts


def report(verdicts: list[FileVerdict]) -> tuple[bool, str]:
    """(every file identical, the text: one line per file that is not, then the count)."""
    lines = []
    for v in verdicts:
        if v.status == "differs":
            lines.append(f"  differs   {v.path}: {', '.join(v.columns)}")
        elif v.status != "identical":
            lines.append(f"  {v.status:<9} {v.path}")
    same = sum(v.status == "identical" for v in verdicts)
    ok = same == len(verdicts) and bool(verdicts)
    head = ("Reproduction: every results file is identical to the committed one"
            if ok else f"Reproduction: {same} of {len(verdicts)} results files identical to the "
                       f"committed ones")
    return ok, "\n".join([head + " (wall-clock columns, timing files and provenance.json "
                                 "left out)"] + lines)
