"""Names the results writers and readers share (the start of one results schema): which
columns and keys hold wall-clock time or describe the machine rather than a result."""
from __future__ import annotations

WALL_CLOCK_COLUMNS = ("seconds", "seconds_per_chip", "train_seconds", "finetune_seconds_per_chip")
"""CSV columns holding wall-clock seconds (they differ between any two runs)."""

MACHINE_KEYS = ("provenance", "machine", "date_utc")
"""JSON and checkpoint keys that describe the machine and the time of a run."""


def is_wall_clock(name: str) -> bool:
    """Whether a column or key holds wall-clock time (every name with 'seconds' in it)."""
    return "seconds" in name
