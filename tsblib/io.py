"""Atomic, checked reading and writing of results, tables and checkpoints.

Every output is written to a temporary file in its folder and renamed into place, so an
interrupted stage never leaves a half-written file; unreadable inputs get an error naming the fix.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io as io_module
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, Sequence

import torch

from tsblib import schema


class StageInputError(FileNotFoundError):
    """An input of a pipeline stage is missing or unreadable; the message names the stage to rerun."""


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path (ending in `suffix`) next to `path`; on success it replaces
    `path` atomically, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | Path, stage: str) -> Any:
    """Read JSON written by `stage`, with a clear error when missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise StageInputError(f"{path} not found; run the '{stage}' stage first "
                              f"(dvc repro {stage}, or python -m tsblib {stage})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StageInputError(f"{path} is corrupt ({exc}); delete it and rerun the '{stage}' stage") from exc


def _fmt(value: Any, exact: bool = False) -> Any:
    """A cell as written: floats to 10 decimals (`exact`: every digit), NaN and None empty."""
    if isinstance(value, float):
        return (repr(value) if exact else repr(round(value, 10))) if value == value else ""
    return "" if value is None else value


def cell_float(value: str | None) -> float | None:
    """A CSV cell as written by `write_csv` read back as a float; an empty cell is None."""
    return float(value) if value not in ("", None) else None


def write_csv(path: str | Path, rows: Iterable[dict[str, Any]], columns: Sequence[str],
              exact: bool = False) -> None:
    """Write dict rows with exactly `columns` (missing values empty), atomically; floats to 10
    decimals, or with every digit when `exact`."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="raise")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _fmt(row.get(c), exact) for c in columns})


class ResultsFolder(Protocol):
    """Where results tables go: `tsblib.paths.ProfilePaths` (a profile or one of its models)."""

    def result(self, name: str) -> Path:
        """The path of results file `name`."""


def write_table(folder: ResultsFolder, table: schema.Table, rows: Iterable[dict[str, Any]]) -> None:
    """Write results table `table` (`tsblib.schema`: its name and columns) into `folder`; a timed
    table's wall-clock columns go to the timing table beside it (`write_timed_csv`)."""
    path = folder.result(table.name)
    if table.keys:
        write_timed_csv(path, rows, list(table.columns))
    else:
        write_csv(path, rows, table.columns, exact=table.exact)


def write_timed_csv(path: Path, rows: Iterable[dict[str, Any]], columns: list[str]) -> None:
    """Write a results table (`schema.TIMED_TABLES`) as two files: `path` without the wall-clock
    columns, and `timing/<name>` beside it with the columns that identify a row and the
    wall-clock ones, so that a rerun changes only the timing file."""
    rows = list(rows)
    write_csv(path, rows, schema.result_columns(columns))
    write_csv(path.parent / schema.TIMING_FOLDER / path.name, rows,
              schema.timing_columns(path.name, columns))


def read_csv(path: str | Path, stage: str) -> list[dict[str, str]]:
    """Read a CSV written by `stage` as dict rows of strings."""
    path = Path(path)
    if not path.is_file():
        raise StageInputError(f"{path} not found; run the '{stage}' stage first "
                              f"(dvc repro {stage}, or python -m tsblib {stage})")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def table_digest(path: str | Path) -> str:
    """sha256 of a results CSV's rows with the wall-clock columns left out
    (`schema.is_wall_clock`): equal for two runs that computed the same values."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    kept = [{k: v for k, v in r.items() if not schema.is_wall_clock(k)} for r in rows]
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()


def checkpoint_bytes(payload: dict[str, Any]) -> bytes:
    """`payload` serialised by torch.save into memory.

    Saving to a buffer rather than to the temporary file keeps the bytes independent of the
    file's name (torch names the archive's top folder after the file it writes), so identical
    payloads give byte-identical checkpoints and DVC sees an unchanged output.
    """
    buffer = io_module.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """torch.save `payload` (tensors and plain data) atomically and byte-reproducibly."""
    data = checkpoint_bytes(payload)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def load_checkpoint(path: str | Path, stage: str) -> dict[str, Any]:
    """Load a checkpoint written by `stage`; a missing or corrupt file names the stage to rerun."""
    path = Path(path)
    if not path.is_file():
        raise StageInputError(f"checkpoint {path} not found; run the '{stage}' stage first "
                              f"(dvc repro {stage}, or python -m tsblib {stage})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise StageInputError(f"checkpoint {path} is corrupt or not a tsblib checkpoint "
                              f"({one_line(exc)}); delete it and rerun the '{stage}' "
                              f"stage") from exc


def one_line(exc: BaseException, limit: int = 160) -> str:
    """The cause of `exc` in one line: its first sentence, shortened at a word (not mid-word)
    when longer than `limit` characters."""
    text = (str(exc).strip().splitlines() or [""])[0].strip() or type(exc).__name__
    text = text.split(". ")[0].rstrip(".")
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    return text


def check_checkpoints(folders: list[Path], stage: str) -> None:
    """Load every checkpoint in `folders` (written by `stage`) once, so that a corrupt one is
    named before any work starts rather than when it is first needed."""
    for folder in folders:
        for path in sorted(Path(folder).glob("*.pt")):
            load_checkpoint(path, stage)
