"""NIT training throughput (images/s) of each model, and its fraction of the measured matmul peak:
the fast path (tsblib's default runtime: bf16 autocast and channels_last on a GPU) against the
straightforward one (fp32, NCHW); on a GPU also the time of one CIFAR-10 epoch of VGG-8.

    python benchmarks/bench_training.py [--device auto] [--models lenet3 vgg8 resnet18]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import device_from_args, peak_lines  # noqa: E402

from tsblib.config import DeviceConfig, RuntimeConfig, TSBConfig  # noqa: E402
from tsblib.models import INPUT_SHAPES, build_model  # noqa: E402
from tsblib.tsb import insert_tsb, tsb_overhead  # noqa: E402


def throughput(name: str, device: torch.device, batch: int, steps: int,
               fast: bool = True) -> tuple[float, int]:
    """Images/s of NIT training steps on random data, and forward MACs per image; `fast=False`
    turns bf16 autocast and channels_last off."""
    runtime = RuntimeConfig(device=str(device), bf16=fast, channels_last=fast)
    rate = common.nit_step_rate(build_model(name), name, runtime, device, batch, steps,
                                DeviceConfig(),
                                lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9))
    macs = tsb_overhead(insert_tsb(build_model(name), TSBConfig(width=8 if name == "lenet3" else 64)),
                        INPUT_SHAPES[name]).backbone_macs
    return rate, macs


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--models", nargs="+", default=["lenet3", "vgg8", "resnet18"])
    args = parser.parse_args()
    device = device_from_args(args.device)
    peak, lines = peak_lines(device)
    lines += ["- FLOPs of a training step counted as 3 x 2 x forward MACs (forward + two backward products)"]
    for name in args.models:
        batch = 256 if device.type == "cuda" else (128 if name == "lenet3" else 32)
        steps = 20 if device.type == "cuda" else (10 if name == "lenet3" else 2)
        ips, macs = throughput(name, device, batch, steps)
        plain, _ = throughput(name, device, batch, steps, fast=False)
        flops = 6 * macs * ips
        epoch = 60_000 if name == "lenet3" else 50_000
        lines.append(f"- {name}: {ips:,.0f} images/s (batch {batch}) = {flops / 1e9:.1f} GFLOP/s = "
                     f"{flops / peak:.1%} of peak; one {epoch:,}-image epoch would take "
                     f"{epoch / ips:.2f} s; straightforward fp32 NCHW: {plain:,.0f} images/s, "
                     f"ratio fast / straightforward {ips / plain:.2f}x")
        if name == "vgg8" and device.type == "cuda":
            lines.append(f"  - target on one H100/H200, a CIFAR-10 epoch under 0.5 s: "
                         f"{'met' if epoch / ips < 0.5 else 'not met'} ({epoch / ips:.2f} s)")
    common.finish("NIT training throughput (bench_training.py)", device, lines, args.no_record)


if __name__ == "__main__":
    main()
