"""malloc keeping freed memory (`tsblib.runtime.keep_freed_memory`, which every stage applies on
the CPU) against glibc's defaults: a NIT training step and the Monte Carlo evaluation per chip, for
LeNet-3 and VGG-8 / ResNet-18 at width 0.25, on the CPU fast path.

The setting cannot be undone inside a process, so each variant runs in its own child process,
the two alternating, `--rounds` times; the best of each is compared. glibc only (Linux); elsewhere
the script says the setting does not apply.

    python benchmarks/bench_allocator.py [--rounds 3] [--models lenet3 vgg8 resnet18]
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from bench_cpu_peak import CPU, chip_seconds, train_rate  # noqa: E402

from tsblib.runtime import fast_path, keep_freed_memory  # noqa: E402

FAST = common.CPU_FAST


def child(variant: str, models: list[str]) -> dict:
    """One variant's figures, measured in this process: {model: [images/s, s per chip]}."""
    applied = keep_freed_memory() if variant == "kept" else False
    out: dict = {"applied": applied}
    for name in models:
        width = 1.0 if name == "lenet3" else 0.25
        steps = 20 if name == "lenet3" else 5
        out[name] = [train_rate(name, width, FAST, 128, steps),
                     chip_seconds(name, width, FAST, 1000, 10) * 10]
    return out


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--models", nargs="+", default=["lenet3", "vgg8", "resnet18"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["default", "kept"],
                        help="internal: measure one variant in this process, print it as JSON")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.models)))
        return
    runs: dict[str, list[dict]] = {"default": [], "kept": []}
    for _ in range(args.rounds):
        for variant in runs:
            result = subprocess.run([sys.executable, __file__, "--child", variant, "--models",
                                     *args.models], capture_output=True, text=True, check=True)
            runs[variant].append(json.loads(result.stdout.strip().splitlines()[-1]))
    applied = all(r["applied"] for r in runs["kept"])
    lines = [f"- path: {fast_path(FAST, CPU)}; NIT step at batch 128 (images/s), Monte Carlo with "
             f"10 chips stacked on 1,000 random images (s per chip per 10,000 images); best of "
             f"{args.rounds} alternating child processes each; malloc settings applied: "
             f"{'yes' if applied else 'no (not glibc on Linux: both columns are the defaults)'}"]
    for name in args.models:
        step = [max(r[name][0] for r in runs[v]) for v in runs]
        chip = [min(r[name][1] for r in runs[v]) for v in runs]
        label = name if name == "lenet3" else f"{name} 0.25"
        lines.append(f"- {label}: step {step[0]:,.0f} -> {step[1]:,.0f} img/s "
                     f"({step[1] / step[0]:.2f}x); Monte Carlo {chip[0]:.2f} -> {chip[1]:.2f} s "
                     f"per chip ({chip[0] / chip[1]:.2f}x)")
    common.finish("malloc keeping freed memory (bench_allocator.py)", CPU, lines, args.no_record)


if __name__ == "__main__":
    main()
