"""Names the results writers and readers share (the start of one results schema): which
columns and keys hold wall-clock time or describe the machine rather than a result, and where
the wall-clock columns of a results table go instead (its timing table)."""
from __future__ import annotations

WALL_CLOCK_COLUMNS = ("seconds", "seconds_per_chip", "train_seconds", "finetune_seconds_per_chip")
"""CSV columns holding wall-clock seconds (they differ between any two runs)."""

MACHINE_KEYS = ("provenance", "machine", "date_utc")
"""JSON and checkpoint keys that describe the machine and the time of a run."""


def is_wall_clock(name: str) -> bool:
    """Whether a column or key holds wall-clock time (every name with 'seconds' in it)."""
    return "seconds" in name


TIMING_FOLDER = "timing"
"""The folder, beside a results table (results/<profile>/ and each model's folder), that holds
the timing files: each stage's seconds (<stage>.json) and the timing tables."""

TIMED_TABLES: dict[str, tuple[str, ...]] = {
    "training.csv": ("model", "method", "recipe", "epoch"),
    "training_extra.csv": ("model", "method", "recipe", "epoch"),
    "recipes.csv": ("model", "method", "candidate", "recipe", "epoch"),
    "finetune.csv": ("model", "method", "sigma"),
}
"""Results tables whose rows carry wall-clock seconds -> the columns that identify a row. The
results table keeps every other column (`result_columns`); its timing table, the file of the
same name under `timing/` beside it, holds the identifying columns and the wall-clock ones
(`timing_columns`). So a rerun on the same machine changes only the timing files."""


def result_columns(columns: list[str]) -> list[str]:
    """The columns a results table keeps: every one that is not wall-clock time."""
    return [c for c in columns if not is_wall_clock(c)]


def timing_columns(name: str, columns: list[str]) -> list[str]:
    """The columns of results table `name`'s timing table: its identifying columns
    (`TIMED_TABLES`) and its wall-clock ones, in the table's order."""
    keys = TIMED_TABLES[name]
    return [c for c in columns if c in keys or is_wall_clock(c)]
