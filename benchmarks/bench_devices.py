"""The Gaussian path before and after the device registry (tsblib/devices): seconds of drawing
chips (LeNet-3 and ResNet-18 weights), of one noise-injection draw (ResNet-18), and of a LeNet-3
Monte Carlo run, for the library at `--before-rev` (extracted with `git archive`) and at the
working tree, interleaved in one run (child processes, alternating), medians over `--rounds`.
Also the cost of the new models on the same chips, for scale.

    python benchmarks/bench_devices.py [--before-rev 1e10247] [--rounds 5]
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]

CHILD = r'''
import json, sys, time, torch
from tsblib.config import DeviceConfig
from tsblib.execution.evaluate import monte_carlo
from tsblib.models import build_model
from tsblib.variation import chip_seed, mapped_weight_names, sample_chips, training_noise

def best(fn, repeats=3):
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times)

out = {}
dev = DeviceConfig()
for name in ("lenet3", "resnet18"):
    model = build_model(name).eval()
    params = dict(model.named_parameters()); names = mapped_weight_names(model)
    chips = 20 if name == "lenet3" else 2
    seeds = [chip_seed(1, 0.5, k, "") for k in range(chips)]
    out[f"chips_{name}"] = best(lambda: sample_chips(params, names, 0.5, dev, seeds)) / chips
out["train_noise_resnet18"] = best(lambda: training_noise(params, names, 0.5, dev, torch.Generator().manual_seed(0)))
model = build_model("lenet3").eval(); names = mapped_weight_names(model)
g = torch.Generator().manual_seed(0)
x = torch.randn(2000, 1, 28, 28, generator=g); y = torch.randint(0, 10, (2000,), generator=g)
batches = [(x[i:i + 100], y[i:i + 100]) for i in range(0, 2000, 100)]
out["monte_carlo_lenet3"] = best(lambda: monte_carlo(model, names, 0.5, dev, batches, chips=16, seed=1,
                                                     chip_batch=8, progress=False), 2) / 16
if len(sys.argv) > 1:  # the new models, on the working tree only
    from tsblib.profiles import build_device
    for label, spec in (("slice", {"model": "slice"}),
                        ("level_dependent", {"model": "level_dependent", "level_dependent": {"preset": "rram4"}}),
                        ("gaussian+stuck_at", {"model": ["gaussian", "stuck_at"]}),
                        ("slice+drift", {"model": ["slice", "drift"], "drift": {"t_seconds": 86400}}),
                        ("gaussian+read_noise", {"model": ["gaussian", "read_noise"]})):
        d = build_device(spec)
        out[f"monte_carlo_lenet3 {label}"] = best(lambda: monte_carlo(
            model, names, 0.5, d, batches, chips=16, seed=1, chip_batch=8, progress=False), 2) / 16
print(json.dumps(out))
'''


def run(tree: Path, extra: bool) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = [sys.executable, "-c", CHILD] + (["new-models"] if extra else [])
    done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=tree, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common

    parser = common.parser(__doc__)
    parser.add_argument("--before-rev", default="1e10247",
                        help="git revision of the library before the device registry")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.before_rev, "tsblib"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        before, after = [], []
        start = time.perf_counter()
        for r in range(args.rounds):  # alternate, so that load changes hit both alike
            before.append(run(Path(tmp), False))
            after.append(run(ROOT, r == args.rounds - 1))
        wall = time.perf_counter() - start
    lines = [f"- library before ({args.before_rev}) vs the working tree, Gaussian device model, "
             f"{args.rounds} alternating rounds in child processes ({wall:.0f} s); per round the "
             f"best of 3 (2 for Monte Carlo), then the median over rounds; "
             f"{os.environ.get('OMP_NUM_THREADS', 'default')} torch threads; the machine is "
             f"shared with other jobs, so the figures are noisy"]
    for key in before[0]:
        b, a = median(r[key] for r in before), median(r[key] for r in after)
        lines.append(f"- {key}: before {b * 1e3:.2f} ms, after {a * 1e3:.2f} ms, "
                     f"after / before {a / b:.3f}")
    for key, value in after[-1].items():
        if key not in before[0]:
            base = after[-1]["monte_carlo_lenet3"]
            lines.append(f"- {key}: {value * 1e3:.2f} ms per chip ({value / base:.2f}x the Gaussian)")
    import torch

    common.finish("Device models: the Gaussian path before and after the registry "
                  "(bench_devices.py)", torch.device("cpu"), lines, args.no_record)


if __name__ == "__main__":
    main()
