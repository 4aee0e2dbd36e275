"""Whether a rerun must not reuse saved training runs.

The train stage reuses a saved run whose fingerprint (code, parameters, data) matches, so that
an interrupted stage resumes; by default that is also what a rerun does. A user who asks for
`dvc repro --force` (or `-f`) means "retrain": DVC passes no flag to a stage's command, so the
command lines of this process's ancestors are read (Linux /proc; elsewhere only the variable
below counts). `TSB_RETRAIN=1` asks the same outside DVC (`python -m tsblib train`).
"""
from __future__ import annotations

import os
from pathlib import Path

RETRAIN_ENV = "TSB_RETRAIN"
"""Environment variable: set to 1 to retrain every run instead of reusing saved ones."""


def forces_rerun(argv: list[str]) -> bool:
    """Whether command line `argv` is a `dvc repro` with `--force` / `-f` (also in a cluster of
    short flags, e.g. `-sf`)."""
    names = [Path(a).name for a in argv]
    if "repro" not in argv or not any(n == "dvc" or n.startswith("dvc") for n in names):
        return False
    after = argv[argv.index("repro") + 1:]
    return any(a == "--force" or (a.startswith("-") and not a.startswith("--") and "f" in a[1:])
               for a in after)


def _ancestors(limit: int = 8) -> list[list[str]]:
    """Command lines of this process's ancestors, nearest first (empty where /proc is absent)."""
    out, pid = [], os.getppid()
    for _ in range(limit):
        if pid <= 1:
            break
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        out.append([a.decode(errors="replace") for a in argv if a])
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's pid (4th field)
    return out


def retrain_requested() -> bool:
    """True under `TSB_RETRAIN=1` or `dvc repro --force`: saved training runs are not reused."""
    if os.environ.get(RETRAIN_ENV, "").strip() not in ("", "0"):
        return True
    return any(forces_rerun(argv) for argv in _ancestors())
