"""Monte Carlo evaluation of LeNet-3 on 10,000 test images with 100 chips: seconds per chip,
chip-batched (tsblib.execution.chipbatch) vs one model copy per chip, and the fraction of the
matmul peak.

    python benchmarks/bench_monte_carlo.py [--device auto] [--chips 100] [--chip-batch 8]
"""
from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import device_from_args, peak_lines, sync  # noqa: E402

from tsblib.config import DeviceConfig, RuntimeConfig  # noqa: E402
from tsblib.execution.evaluate import monte_carlo  # noqa: E402
from tsblib.models import build_model  # noqa: E402
from tsblib.tsb import insert_tsb, tsb_overhead  # noqa: E402
from tsblib.config import TSBConfig  # noqa: E402
from tsblib.variation import chip_seed, mapped_weight_names, sample_chip  # noqa: E402


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--chips", type=int, default=100)
    parser.add_argument("--chip-batch", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    device = device_from_args(args.device)
    runtime = RuntimeConfig(device=str(device))
    peak, peak_report = peak_lines(device)
    model = build_model("lenet3").to(device).eval()
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(args.images, 1, 28, 28, generator=gen).to(device)
    labels = torch.randint(0, 10, (args.images,), generator=gen).to(device)
    batches = [(images[i:i + args.batch_size], labels[i:i + args.batch_size])
               for i in range(0, args.images, args.batch_size)]
    macs = tsb_overhead(insert_tsb(build_model("lenet3"), TSBConfig(width=8)), (1, 28, 28)).backbone_macs
    names = mapped_weight_names(model)
    flops_per_chip = 2 * macs * args.images

    sync(device)
    start = time.perf_counter()
    monte_carlo(model, names, 0.5, DeviceConfig(), batches, chips=args.chips, seed=1,
                chip_batch=args.chip_batch, runtime=runtime, progress=False)
    sync(device)
    batched = (time.perf_counter() - start) / args.chips

    # straightforward path: one model copy per chip, plain forward passes
    params = dict(model.named_parameters())
    start = time.perf_counter()
    for k in range(args.chips):
        chip = sample_chip(params, names, 0.5, DeviceConfig(), chip_seed(1, 0.5, k, ""))
        copy_ = copy.deepcopy(model)
        with torch.no_grad():
            for n, w in chip.items():
                copy_.get_parameter(n).copy_(w)
            for x, _ in batches:
                copy_(x).argmax(1)
    sync(device)
    straightforward = (time.perf_counter() - start) / args.chips

    lines = [f"- LeNet-3, {args.images} images, {args.chips} chips, sigma 0.5; chip batch {args.chip_batch}, image batch {args.batch_size}",
             *peak_report,
             f"- batched ({args.chip_batch} chips stacked in one pass): {batched:.4f} s/chip = {flops_per_chip / batched / 1e9:.1f} GFLOP/s = {flops_per_chip / batched / peak:.1%} of peak",
             f"- one model copy per chip: {straightforward:.4f} s/chip = {flops_per_chip / straightforward / 1e9:.1f} GFLOP/s = {flops_per_chip / straightforward / peak:.1%} of peak",
             f"- speed-up batched / straightforward: {straightforward / batched:.2f}x",
             f"- target on the CPU, batched >= 40 % of the matmul peak: "
             f"{'met' if flops_per_chip / batched / peak >= 0.4 else 'not met'}" if device.type == "cpu"
             else "- (the 40 % target is stated for the CPU)"]
    common.finish("Monte Carlo evaluation (bench_monte_carlo.py)", device, lines, args.no_record)


if __name__ == "__main__":
    main()
