"""Per-chip TSB fine-tuning of LeNet-3: chips per minute, chip-batched vs one chip at a time.

    python benchmarks/bench_finetune.py [--device auto] [--chips 20] [--chip-batch 10]
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import device_from_args, sync  # noqa: E402

from tsblib.config import DataConfig, DeviceConfig, RuntimeConfig, TSBConfig, WriteVerifyConfig  # noqa: E402
from tsblib.data import load_dataset  # noqa: E402
from tsblib.execution.tsb_finetune import finetune, programmed_backbones
from tsblib.models import build_model  # noqa: E402
from tsblib.tsb import insert_tsb  # noqa: E402
from tsblib.variation import chip_seed  # noqa: E402


def chips_per_minute(model, data, cfg, chips: int, device: torch.device) -> float:
    runtime = RuntimeConfig(device=str(device))
    start = time.perf_counter()
    for first in range(0, chips, cfg.chip_batch):
        seeds = [chip_seed(0, 0.5, k) for k in range(first, min(first + cfg.chip_batch, chips))]
        programmed = {n: w.to(device) for n, w in programmed_backbones(model, 0.5, DeviceConfig(), seeds).items()}
        finetune(model, data, cfg, 0.5, DeviceConfig(), WriteVerifyConfig(), chip_params=programmed,
                 seed=first, device=device, runtime=runtime, progress=False)
    sync(device)
    return chips / (time.perf_counter() - start) * 60


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--chips", type=int, default=20)
    parser.add_argument("--chip-batch", type=int, default=10)
    args = parser.parse_args()
    device = device_from_args(args.device)
    data = load_dataset(DataConfig(dataset="mnist-embedded"))
    model = insert_tsb(build_model("lenet3"), TSBConfig(width=8)).to(device).eval()
    cfg = TSBConfig(width=8, epochs=1, batch_size=64, chip_batch=args.chip_batch)
    batched = chips_per_minute(model, data, cfg, args.chips, device)
    sequential = chips_per_minute(model, data, dataclasses.replace(cfg, chip_batch=1), args.chips, device)
    lines = [f"- LeNet-3, 4,000 embedded digits, 1 fine-tuning epoch per chip, batch 64, {args.chips} chips",
             f"- batched ({args.chip_batch} chips per pass): {batched:.1f} chips/min",
             f"- sequential (1 chip per pass): {sequential:.1f} chips/min",
             f"- ratio batched / sequential: {batched / sequential:.2f}x"]
    common.finish("Per-chip TSB fine-tuning (bench_finetune.py)", device, lines, args.no_record)


if __name__ == "__main__":
    main()
