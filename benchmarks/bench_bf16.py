"""Does bf16 autocast change accuracy? Monte Carlo accuracy of a trained NIT model at the
operating sigma, every chip evaluated in fp32 and under bf16 autocast, on the same chips; plus the
time of each. Needs the profile's `train` stage to have run (its checkpoint and prepared data).

    python benchmarks/bench_bf16.py [--device auto] [--profile embedded] [--model lenet3] [--chips 20]

On a GPU this is the path tsblib takes (runtime.bf16); on a CPU with bf16 support it shows what
the same number format does to the same chips (torch.autocast on the CPU).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import device_from_args, sync  # noqa: E402

from tsblib.config import RuntimeConfig

from tsblib.profiles import load_profile  # noqa: E402
from tsblib.data import load_prepared  # noqa: E402
from tsblib.chipstats import ChipStats  # noqa: E402
from tsblib.execution.evaluate import monte_carlo  # noqa: E402
from tsblib.paths import ProfilePaths  # noqa: E402
from tsblib.runtime import use_channels_last  # noqa: E402
from tsblib.execution.context import load_trained_model  # noqa: E402
from tsblib.stages.evaluate import evaluation_batches  # noqa: E402
from tsblib.variation import mapped_weight_names  # noqa: E402


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--profile", default="embedded")
    parser.add_argument("--model", default="lenet3")
    parser.add_argument("--chips", type=int, default=20)
    args = parser.parse_args()
    device = device_from_args(args.device)
    profile = load_profile(profile=args.profile)
    exp = profile.experiment(args.model)
    paths = ProfilePaths(profile.name)
    model, _ = load_trained_model(paths, exp, "nit", device)
    data = load_prepared(paths.prepared_file(exp.model))
    fp32 = RuntimeConfig(device=str(device), bf16=False)
    test = evaluation_batches(data, exp, device, use_channels_last(fp32, device))
    sigma = exp.evaluation.operating_sigma

    def run(bf16: bool) -> tuple[ChipStats, float]:
        sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            stats = monte_carlo(model, mapped_weight_names(model), sigma, profile.device, test,
                                chips=args.chips, seed=exp.evaluation.seed,
                                chip_batch=exp.evaluation.chip_batch, runtime=fp32, progress=False)
        sync(device)
        return stats, time.perf_counter() - start

    full, t_full = run(False)
    half, t_half = run(True)
    diffs = [b - a for a, b in zip(full.accuracies, half.accuracies)]
    images = len(data.test)
    largest = max(abs(d) for d in diffs)
    lines = [f"- {args.profile} profile, {exp.model} NIT, sigma {sigma}, {args.chips} chips x {images:,} test images",
             f"- fp32: mean accuracy {full.mean:.4f} ± {full.ci95:.4f} (95 % CI) in {t_full:.2f} s",
             f"- bf16 autocast: mean accuracy {half.mean:.4f} ± {half.ci95:.4f} in {t_half:.2f} s "
             f"(time ratio fp32 / bf16 {t_full / t_half:.2f}x)",
             f"- per chip, bf16 - fp32: mean {sum(diffs) / len(diffs):+.5f}, largest |difference| "
             f"{largest:.5f} ({round(largest * images)} images); "
             f"difference of the means {half.mean - full.mean:+.5f} against a CI half-width of {full.ci95:.4f}"]
    common.finish("bf16 autocast and accuracy (bench_bf16.py)", device, lines, args.no_record)


if __name__ == "__main__":
    main()
