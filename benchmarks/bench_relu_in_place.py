"""ReLUs computed in place in the chip-stacked pass (`tsblib.execution.chipbatch`): the Monte Carlo
evaluation with and without them, timed alternately in one run, on the runtime's fast path (bf16 autocast +
channels-last where the CPU has bf16 units, else fp32).

The chip-stacked activations are K times a model's own (up to 160 MB per VGG-8 layer at width
0.25, ten chips and 500 images, bf16), and an out-of-place ReLU writes each of them to freshly
allocated memory once more; `chipbatch` rewrites every ReLU whose input is a fresh tensor nothing
else reads into `torch.relu_` for passes without gradients. The script also checks that the
chips' accuracies are the same bits both ways. (Per-chip fine-tuning, with gradients, keeps the
model's own forward: with the rewrite it measured 0.94-0.95x on VGG-8 and ResNet-18, the first
record of this script in RESULTS.md.)

    python benchmarks/bench_relu_in_place.py [--models lenet3 vgg8 resnet18] [--width 0.25]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from bench_cpu_peak import CPU, DEVICE, chip_seconds, random_batches  # noqa: E402

from tsblib.execution import chipbatch  # noqa: E402
from tsblib.config import RuntimeConfig  # noqa: E402
from tsblib.execution.evaluate import monte_carlo  # noqa: E402
from tsblib.models import build_model  # noqa: E402
from tsblib.runtime import fast_path  # noqa: E402
from tsblib.variation import mapped_weight_names  # noqa: E402

IN_PLACE = chipbatch._relus_in_place
"""The rewrite as the library applies it."""


def out_of_place(work: torch.nn.Module, graph: torch.fx.Graph) -> torch.nn.Module:
    """The pass as it was before the rewrite: the model's own forward, its ReLUs out of place."""
    return work


def accuracies(name: str, width: float, runtime: RuntimeConfig, images: int,
               chips: int) -> tuple[float, ...]:
    """Every chip's accuracy of one Monte Carlo evaluation (seeded random weights and images)."""
    torch.manual_seed(0)  # the random images
    model = build_model(name, width=width, seed=0).eval()
    return monte_carlo(model, mapped_weight_names(model), 0.3, DEVICE,
                       random_batches(name, images, runtime), chips=chips, seed=0,
                       chip_batch=chips, runtime=runtime, progress=False).accuracies


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--models", nargs="+", default=["lenet3", "vgg8", "resnet18"])
    parser.add_argument("--width", type=float, default=0.25, help="VGG-8 / ResNet-18 width")
    parser.add_argument("--images", type=int, default=2000, help="Monte Carlo images")
    parser.add_argument("--chips", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="alternating timings per variant")
    args = parser.parse_args()
    runtime = common.CPU_FAST
    lines = [f"- path: {fast_path(runtime, CPU)}; "
             f"{args.chips} chips stacked; Monte Carlo on {args.images} random images (seconds "
             f"per chip per 10,000 images); best of {args.rounds} alternating runs each"]
    try:
        for name in args.models:
            width = 1.0 if name == "lenet3" else args.width
            label = name if name == "lenet3" else f"{name} {width:g}"
            same = []
            times: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for variant, rewrite in (("out of place", out_of_place), ("in place", IN_PLACE)):
                    chipbatch._relus_in_place = rewrite
                    same.append(accuracies(name, width, runtime, 500, args.chips))
                    mc = chip_seconds(name, width, runtime, args.images, args.chips)
                    times.setdefault(variant, []).append(mc * 10_000 / args.images)
            identical = all(a == same[0] for a in same)
            mc_off, mc_on = (min(times[v]) for v in ("out of place", "in place"))
            lines.append(f"- {label}: Monte Carlo {mc_off:.2f} -> {mc_on:.2f} s per chip "
                         f"({mc_off / mc_on:.2f}x); chip accuracies bit-identical: "
                         f"{'yes' if identical else 'NO'}")
            print(lines[-1], flush=True)
    finally:
        chipbatch._relus_in_place = IN_PLACE
    common.finish("ReLUs in place in the chip-stacked pass (bench_relu_in_place.py)", CPU, lines,
                  args.no_record)


if __name__ == "__main__":
    main()
