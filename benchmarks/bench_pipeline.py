"""The embedded pipeline end to end: `dvc repro` cold (fresh copy, empty cache) and again with
nothing changed (everything cached), in a temporary clone of the working tree, stage by stage;
with `--fast-path`, a second cold run with the CPU fast path switched the other way
(`runtime.cpu_bf16` in the clone's params.yaml: off, as the embedded profile commits it on),
stage by stage against the committed setting.

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


_EMBEDDED_RUNTIME = r"(\n  embedded:\n(?:    .*\n)*?    runtime:\n(?:      .*\n)*?)"
"""The embedded profile's params.yaml text up to a line of its runtime block."""


def committed_fast_path() -> bool:
    """Whether the committed params.yaml turns the embedded profile's CPU fast path on."""
    found = re.search(_EMBEDDED_RUNTIME + r"      cpu_bf16: (true|false)\n",
                      (ROOT / "params.yaml").read_text())
    return bool(found) and found.group(2) == "true"


def _clone(cpu_bf16: bool | None = None) -> Path:
    """A fresh clone of the repository without the embedded results; `cpu_bf16`, when given,
    sets the embedded profile's `runtime.cpu_bf16` in it."""
    work = Path(tempfile.mkdtemp(prefix="tsb-bench-")) / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(work)], check=True)
    shutil.rmtree(work / "results" / "embedded", ignore_errors=True)
    if cpu_bf16 is not None:
        params = work / "params.yaml"
        value, old = ("true" if cpu_bf16 else "false"), params.read_text()
        text, n = re.subn(_EMBEDDED_RUNTIME + r"      cpu_bf16: (true|false)\n",
                          rf"\1      cpu_bf16: {value}\n", old, count=1)
        if n != 1:  # no cpu_bf16 key yet: add one at the top of the runtime block
            text, n = re.subn(r"(\n  embedded:\n(?:    .*\n)*?    runtime:\n)",
                              rf"\1      cpu_bf16: {value}\n", old, count=1)
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
                        help="also run cold with runtime.cpu_bf16 the other way and compare "
                             "stage times")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary clones (their paths are printed)")
    args = parser.parse_args()
    fast = committed_fast_path()
    setting = f"runtime.cpu_bf16: {'true' if fast else 'false'}, as committed"
    work = _clone()
    cold = _run(["dvc", "repro", "--force"], work)
    cached = _run(["dvc", "repro"], work)
    stages = stage_seconds(work)
    lines = [f"- cold `dvc repro` (all stages, figures included; {setting}): {cold:.1f} s; per "
             f"stage: " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in stages.items())
             + f", the rest (DVC, validate, the figures) {cold - sum(stages.values()):.1f} s",
             f"- second `dvc repro`, nothing changed: {cached:.1f} s",
             f"- ratio cold / cached: {cold / cached:.0f}x"]
    if args.fast_path:
        other_work = _clone(cpu_bf16=not fast)
        other = _run(["dvc", "repro", "--force"], other_work)
        other_stages = stage_seconds(other_work)
        timings = {fast: (cold, stages), not fast: (other, other_stages)}
        (fp32, fp32_stages), (bf16, bf16_stages) = timings[False], timings[True]
        lines.append(f"- cold with runtime.cpu_bf16: {'false' if fast else 'true'}: {other:.1f} s; "
                     f"fp32 {fp32:.1f} s / fast path {bf16:.1f} s = {fp32 / bf16:.2f}x; per "
                     f"stage, fp32 -> fast:")
        for stage, seconds in fp32_stages.items():
            after = bf16_stages.get(stage, float("nan"))
            lines.append(f"  - {stage}: {seconds:.1f} s -> {after:.1f} s ({seconds / after:.2f}x)")
        rest, fast_rest = fp32 - sum(fp32_stages.values()), bf16 - sum(bf16_stages.values())
        lines.append(f"  - the rest (DVC, validate, the figures): {rest:.1f} s -> {fast_rest:.1f} s")
        _remove(other_work, args.keep)
    record("Embedded pipeline end to end (bench_pipeline.py)", torch.device("cpu"), lines)
    _remove(work, args.keep)


def _remove(work: Path, keep: bool) -> None:
    if keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
