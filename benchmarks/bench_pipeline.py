"""The embedded pipeline end to end: `dvc repro` cold (fresh copy, empty cache) and again with
nothing changed (everything cached), in a temporary clone of the working tree.

    python benchmarks/bench_pipeline.py
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="tsb-bench-")) / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(work)], check=True)
    shutil.rmtree(work / "results" / "embedded", ignore_errors=True)
    cold = _run(["dvc", "repro", "--force"], work)
    cached = _run(["dvc", "repro"], work)
    lines = [f"- cold `dvc repro` (all stages, figures included): {cold:.1f} s",
             f"- second `dvc repro`, nothing changed: {cached:.1f} s",
             f"- ratio cold / cached: {cold / cached:.0f}x"]
    record("Embedded pipeline end to end (bench_pipeline.py)", torch.device("cpu"), lines)
    shutil.rmtree(work.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
