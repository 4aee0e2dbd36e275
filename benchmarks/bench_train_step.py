"""Where a noise-injection training step's time goes on the CPU fast path, and what the
candidate speed-ups give, each against the step as tsblib runs it, in one run.

For LeNet-3 and VGG-8 / ResNet-18 at width 0.25 (cifar-cpu's models), on the runtime's fast path
(`tsblib.runtime.fast_path`: bf16 autocast + channels-last where the CPU has bf16 units):

1. the step as the train stage runs it (`nit_objective`, Adam, batch 128), split by the torch
   profiler into the matrix kernels (convolutions and matmuls, forward and backward) and the
   rest (BatchNorm, pooling, activations, the noise draw, the optimiser, everything else);
2. candidates, each timed alternately with that step (median of rounds) and stated as the ratio
   candidate / as-is images per second:
   - `fused Adam`: `torch.optim.Adam(fused=True)` (one kernel over all parameters);
   - `torch.compile`: the forward and its backward compiled by inductor (fused elementwise
     kernels around oneDNN's convolutions; the noise is drawn outside, as tsblib draws it);
   - `batch 256`: twice the batch, which amortises per-call costs (changes the recipe).

    python benchmarks/bench_train_step.py [--models lenet3 vgg8 resnet18] [--rounds 3]

FLOPs are counted as 6 x forward MACs per image; fractions are of the model's own peak as
`bench_cpu_peak.py` measures it (best of its layers alone, forward, fp32 and bf16).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from bench_cpu_peak import CPU, DEVICE, forward_macs, layer_shapes, layers_rate  # noqa: E402

from tsblib.models import INPUT_SHAPES, build_model  # noqa: E402
from tsblib.runtime import cpu_isa, fast_path  # noqa: E402

FAST = common.CPU_FAST
MATRIX_OPS = ("convolution", "mm", "addmm", "bmm", "linear", "matmul")
"""Profiler op names (substrings) counted as matrix kernels."""
GROUPS = {"BatchNorm": ("batch_norm",), "pooling": ("pool",),
          "activations": ("threshold", "relu", "clamp"), "noise draw": ("normal",),
          "optimiser": ("Optimizer.step",)}
"""The rest of a step, by profiler op name (substrings); what matches none is 'other'."""


def nit_step(name: str, width: float, *, batch: int = 128, fused: bool = False,
             compiled: bool = False) -> common.NITStep:
    """A NIT step of model `name` at `width` on the fast path, in a variant (Adam, lr 1e-3)."""
    return common.NITStep(build_model(name, width=width, seed=0), name, FAST, CPU, batch, DEVICE,
                          lambda p: torch.optim.Adam(p, lr=1e-3, fused=fused or None),
                          compiled=compiled)


def breakdown(step: common.NITStep, steps: int) -> dict[str, float]:
    """Share of the step's profiled CPU time: 'matrix kernels', the `GROUPS` and 'other'.

    Ops are attributed by their own (self) time. The optimiser's elementwise ops (lerp, addcdiv,
    sqrt, ...) match no group, so the time spent under `Optimizer.step` beyond its own is moved
    from 'other' to 'optimiser'."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(steps)
    shares: dict[str, float] = {"matrix kernels": 0.0, **{g: 0.0 for g in GROUPS}, "other": 0.0}
    for event in prof.key_averages():
        name = event.key
        if any(op in name for op in MATRIX_OPS):
            shares["matrix kernels"] += event.self_cpu_time_total
            continue
        group = next((g for g, ops in GROUPS.items() if any(op in name for op in ops)), "other")
        shares[group] += event.self_cpu_time_total
        if group == "optimiser":
            children = event.cpu_time_total - event.self_cpu_time_total
            shares["optimiser"] += children
            shares["other"] -= children
    total = sum(shares.values())
    return {k: v / total for k, v in shares.items()}


def compare(base: common.NITStep, other: common.NITStep, steps: int,
            rounds: int) -> tuple[float, float]:
    """Median images/s of `base` and `other`, timed alternately over `rounds` rounds."""
    base(2)
    other(3)  # warm-up (and compilation)
    a, b = [], []
    for _ in range(rounds):
        a.append(base.rate(steps))
        b.append(other.rate(steps))
    return sorted(a)[rounds // 2], sorted(b)[rounds // 2]


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--models", nargs="+", default=["lenet3", "vgg8", "resnet18"])
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    lines = [f"- CPU ISA flags: {' '.join(cpu_isa()) or 'none found'}; fast path on this CPU: "
             f"{fast_path(FAST, CPU)}; NIT step at sigma 0.3, Adam, batch 128 unless stated; "
             f"{args.rounds} alternating rounds, median; ratio = candidate / as-is img/s"]
    started = time.perf_counter()
    for name in args.models:
        width = 1.0 if name == "lenet3" else args.width
        model = build_model(name, width=width, seed=0)
        layers = layer_shapes(model, 128, INPUT_SHAPES[name])
        macs = forward_macs(layers)
        peak = max(layers_rate(layers, dt) for dt in (torch.float32, torch.bfloat16))
        steps = 20 if name == "lenet3" else 4
        base = nit_step(name, width)
        base(2)
        shares = breakdown(base, steps)
        label = name if name == "lenet3" else f"{name} width {width:g}"
        first = len(lines)
        lines.append(f"- **{label}** (peak {peak / 1e9:.0f} GFLOP/s, its layers alone): where "
                     f"the as-is step's CPU time goes: "
                     + ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
        for title, candidate in (("fused Adam", nit_step(name, width, fused=True)),
                                 ("torch.compile", nit_step(name, width, compiled=True)),
                                 ("batch 256", nit_step(name, width, batch=256))):
            before, after = compare(base, candidate, steps, args.rounds)
            lines.append(f"  - {title}: as-is {before:,.0f} img/s ({6 * macs * before / peak:.0%}"
                         f" of peak), candidate {after:,.0f} img/s ({6 * macs * after / peak:.0%}"
                         f"), ratio {after / before:.2f}x")
        print(*lines[first:], sep="\n", flush=True)
    lines.append(f"- the whole benchmark took {time.perf_counter() - started:.0f} s")
    common.finish("Where a training step's time goes, and the candidate speed-ups "
                  "(bench_train_step.py)", CPU, lines, args.no_record)


if __name__ == "__main__":
    main()
