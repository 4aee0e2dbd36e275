"""NIT training throughput (images/s) of each model, and its fraction of the measured matmul peak;
on a GPU also the time of one CIFAR-10 epoch (50,000 images) of VGG-8.

    python benchmarks/bench_training.py [--device auto] [--models lenet3 vgg8 resnet18]
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import device_from_args, measured_peak_flops, timed  # noqa: E402

from tsblib.config import DeviceConfig, MethodsConfig, RuntimeConfig, TrainConfig, TSBConfig  # noqa: E402
from tsblib.methods.training import make_objective  # noqa: E402
from tsblib.models import INPUT_SHAPES, build_model  # noqa: E402
from tsblib.runtime import autocast, use_channels_last  # noqa: E402
from tsblib.tsb import insert_tsb, tsb_overhead  # noqa: E402


def throughput(name: str, device: torch.device, batch: int, steps: int) -> tuple[float, int]:
    """Images/s of NIT training steps on random data, and forward MACs per image."""
    runtime = RuntimeConfig(device=str(device))
    model = build_model(name).to(device).train()
    cl = use_channels_last(runtime, device)
    if cl:
        model = model.to(memory_format=torch.channels_last)
    obj = make_objective("nit", model, TrainConfig(sigma_train=0.3), MethodsConfig(), DeviceConfig())
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    params = dict(model.named_parameters())
    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, *INPUT_SHAPES[name], device=device)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)

    def run() -> None:
        for _ in range(steps):
            with autocast(runtime, device):
                loss = obj(model, params, x, y, gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    seconds = timed(run, device, repeats=3)
    macs = tsb_overhead(insert_tsb(build_model(name), TSBConfig(width=8 if name == "lenet3" else 64)),
                        INPUT_SHAPES[name]).backbone_macs
    return batch * steps / seconds, macs


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--models", nargs="+", default=["lenet3", "vgg8", "resnet18"])
    args = parser.parse_args()
    device = device_from_args(args.device)
    peak = measured_peak_flops(device)
    lines = [f"- measured peak ({'bf16' if device.type == 'cuda' else 'fp32'} matmul): {peak / 1e9:.1f} GFLOP/s",
             "- FLOPs of a training step counted as 3 x 2 x forward MACs (forward + two backward products)"]
    for name in args.models:
        batch = 256 if device.type == "cuda" else (128 if name == "lenet3" else 32)
        steps = 20 if device.type == "cuda" else (10 if name == "lenet3" else 2)
        ips, macs = throughput(name, device, batch, steps)
        flops = 6 * macs * ips
        extra = f"; one 50,000-image epoch would take {50_000 / ips:.2f} s" if name != "lenet3" else \
            f"; one 60,000-image epoch would take {60_000 / ips:.2f} s"
        lines.append(f"- {name}: {ips:,.0f} images/s (batch {batch}) = {flops / 1e9:.1f} GFLOP/s = "
                     f"{flops / peak:.1%} of peak{extra}")
    common.finish("NIT training throughput (bench_training.py)", device, lines, args.no_record)


if __name__ == "__main__":
    main()
