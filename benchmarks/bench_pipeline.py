"""The embedded pipeline end to end: `dvc repro` cold (fresh copy, empty cache) and again with
nothing changed (everything cached), in a temporary clone of the working tree; with
`--fast-path`, a second cold run with the CPU fast path switched on (`runtime.cpu_bf16: true`
in the clone's params.yaml), stage by stage against the committed setting.

    python benchmarks/bench_pipeline.py [--fast-path] [--keep]

Stage times are the stages' own timing files (`results/embedded/**/timing/*.json`); the figures'
time is the rest of the run.
"""
from __future__ import annotations

import argparse
import json
import re
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


def _clone(fast: bool) -> Path:
    """A fresh clone of the repository without the embedded results; `fast` switches the
    embedded profile's CPU fast path on."""
    work = Path(tempfile.mkdtemp(prefix="tsb-bench-")) / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(work)], check=True)
    shutil.rmtree(work / "results" / "embedded", ignore_errors=True)
    if fast:
        params = work / "params.yaml"
        text, n = re.subn(r"(\n  embedded:\n(?:    .*\n)*?    runtime:\n)", r"\1      cpu_bf16: true\n",
                          params.read_text(), count=1)
        if n != 1:
            raise SystemExit("bench_pipeline: embedded profile's runtime block not found in params.yaml")
        params.write_text(text)
    return work


def stage_seconds(work: Path) -> dict[str, float]:
    """Seconds per stage from the embedded results' timing files (summed over models)."""
    out: dict[str, float] = {}
    for path in sorted((work / "results" / "embedded").glob("**/timing/*.json")):
        data = json.loads(path.read_text())
        out[data["stage"]] = out.get(data["stage"], 0.0) + float(data["seconds"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fast-path", action="store_true",
                        help="also run cold with runtime.cpu_bf16: true and compare stage times")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary clones (their paths are printed)")
    args = parser.parse_args()
    work = _clone(fast=False)
    cold = _run(["dvc", "repro", "--force"], work)
    cached = _run(["dvc", "repro"], work)
    lines = [f"- cold `dvc repro` (all stages, figures included): {cold:.1f} s",
             f"- second `dvc repro`, nothing changed: {cached:.1f} s",
             f"- ratio cold / cached: {cold / cached:.0f}x"]
    if args.fast_path:
        stages = stage_seconds(work)
        fast_work = _clone(fast=True)
        fast = _run(["dvc", "repro", "--force"], fast_work)
        fast_stages = stage_seconds(fast_work)
        lines.append(f"- cold with the fast path (runtime.cpu_bf16: true): {fast:.1f} s "
                     f"(committed fp32 / fast {cold / fast:.2f}x); per stage, fp32 -> fast:")
        for stage, seconds in stages.items():
            after = fast_stages.get(stage, float("nan"))
            lines.append(f"  - {stage}: {seconds:.1f} s -> {after:.1f} s ({seconds / after:.2f}x)")
        rest, fast_rest = cold - sum(stages.values()), fast - sum(fast_stages.values())
        lines.append(f"  - the rest (DVC, validate, the figures): {rest:.1f} s -> {fast_rest:.1f} s")
        _remove(fast_work, args.keep)
    record("Embedded pipeline end to end (bench_pipeline.py)", torch.device("cpu"), lines)
    _remove(work, args.keep)


def _remove(work: Path, keep: bool) -> None:
    if keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
