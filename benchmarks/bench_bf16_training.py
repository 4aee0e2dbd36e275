"""Does bf16 training move the science? NIT trained with the profile's recipe in fp32 and under
bf16 autocast (fp32 master weights and optimiser state either way), both deployed at their
validation-selected epoch and evaluated in fp32 on the same paired chips at the operating sigma (the
evaluate stage's chips: chip k is the draw every method of the profile sees).

    python benchmarks/bench_bf16_training.py --profile cifar-cpu --model vgg8
    python benchmarks/bench_bf16_training.py --profile embedded --model lenet3

One side is the pipeline's own NIT (the `train` stage's checkpoint, trained on the path the
profile's `runtime.cpu_bf16` names); the script trains the other side with the same recipe,
seed, data and device model. The verdict: bf16 training leaves the conclusions alone when the
difference of the mean chip accuracies lies within the 95 % interval of either mean; the paired
difference (same chips) and its interval are printed beside it.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from tsblib.bootstrap import paired_difference  # noqa: E402
from tsblib.profiles import load_profile  # noqa: E402
from tsblib.data import load_prepared  # noqa: E402
from tsblib.execution.evaluate import monte_carlo  # noqa: E402
from tsblib.execution.context import TrainContext, load_trained_model, split_batches  # noqa: E402
from tsblib.methods.registry import get_method  # noqa: E402
from tsblib.execution.training import train  # noqa: E402
from tsblib.models import experiment_model  # noqa: E402
from tsblib.paths import ProfilePaths  # noqa: E402
from tsblib.runtime import configure, cpu_bf16_supported, fast_path  # noqa: E402
from tsblib.variation import mapped_weight_names  # noqa: E402


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--profile", default="embedded")
    parser.add_argument("--model", default="lenet3")
    args = parser.parse_args()
    profile = load_profile(profile=args.profile)
    exp = profile.experiment(args.model)
    paths = ProfilePaths(profile.name)
    cpu = torch.device("cpu")
    configure(profile.runtime)
    if not cpu_bf16_supported():
        sys.exit("this CPU has no bf16 matrix units: bf16 training would be emulated; nothing to "
                 "compare (the fast path runs fp32 here)")
    data = load_prepared(paths.prepared_file(exp.model), with_test=True)
    saved_bf16 = profile.runtime.cpu_bf16 and profile.runtime.bf16
    runtimes = {"fp32": dataclasses.replace(profile.runtime, bf16=False, cpu_bf16=False),
                "bf16": dataclasses.replace(profile.runtime, bf16=True, cpu_bf16=True)}
    pipeline_side = "bf16" if saved_bf16 else "fp32"
    other = "fp32" if saved_bf16 else "bf16"
    models, seconds = {}, {}
    models[pipeline_side], _ = load_trained_model(paths, exp, "nit", cpu)
    spec = get_method("nit")
    model = experiment_model(exp, seed=exp.train.seed)
    objective = spec.objective(TrainContext(model, exp, profile.device, data.name))
    start = time.perf_counter()
    result = train(model, data, exp.train, objective, device=cpu, runtime=runtimes[other],
                   device_model=profile.device, select_on=spec.selects_epoch_on,
                   val_seed=exp.train.seed + 7, desc=f"{exp.model}/nit ({other})")
    seconds[other] = time.perf_counter() - start
    model.load_state_dict(result.state)
    models[other] = model.eval()
    ev = exp.evaluation
    test = split_batches(data, data.test, ev.batch_size, cpu, channels_last=False)
    fp32_eval = runtimes["fp32"]
    stats = {k: monte_carlo(m, mapped_weight_names(m), ev.operating_sigma, profile.device, test,
                            chips=ev.chips, seed=ev.seed, chip_batch=ev.chip_batch,
                            runtime=fp32_eval, progress=False, tag="chip")
             for k, m in models.items()}
    a, b = stats["fp32"], stats["bf16"]
    diff = paired_difference(b.accuracies, a.accuracies)
    gap = b.mean - a.mean
    within = abs(gap) <= max(a.ci95, b.ci95)
    lines = [
        f"- {profile.name} profile, {exp.model} NIT ({exp.train.recipe}, {exp.train.epochs} "
        f"epochs, sigma_train {exp.train.sigma_train}), sigma {ev.operating_sigma}, {ev.chips} "
        f"paired chips x {len(data.test):,} test images, every chip evaluated in fp32",
        f"- the pipeline's own NIT is the {pipeline_side} side (runtime.cpu_bf16 = {saved_bf16}); "
        f"the {other} side trained here in {seconds[other]:.0f} s "
        f"({fast_path(runtimes[other], cpu)}), deployed epoch {result.selected_epoch}",
        f"- fp32 training: mean accuracy {a.mean:.4f} +/- {a.ci95:.4f} (95 % CI)",
        f"- bf16 training: mean accuracy {b.mean:.4f} +/- {b.ci95:.4f}",
        f"- difference of the means (bf16 - fp32) {gap:+.4f}; paired difference on the same "
        f"chips {diff.mean:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}]",
        f"- verdict: {'within' if within else 'NOT within'} the 95 % interval of either mean "
        f"({max(a.ci95, b.ci95):.4f}): bf16 training "
        f"{'leaves the conclusions alone' if within else 'moves the conclusions; keep it off'}"]
    if not math.isfinite(gap):
        lines.append("- (a mean is not finite: check the runs)")
    common.finish(f"bf16 training and accuracy, {profile.name} {exp.model} (bench_bf16_training.py)",
                  cpu, lines, args.no_record)


if __name__ == "__main__":
    main()
