"""One training run of one method under a given recipe, with the pipeline's own code: the
per-epoch validation curve (clean accuracy and mean accuracy of the validation chips at
sigma_train) and the deployed epoch's noise-free test accuracy. The evidence behind a recipe
stated in params.yaml when the `recipes` stage's short sweeps cannot decide it (e.g. SGD against
Adam over a whole schedule). Needs the profile's `prepare` stage to have run.

    python benchmarks/train_recipe.py --profile cifar-cpu --model vgg8 --method clean \
        --optimizer sgd --lr 0.05 --weight-decay 5e-4
"""
from __future__ import annotations

import argparse
import dataclasses
import time

from tsblib.config import Optimizer

from tsblib.profiles import load_profile
from tsblib.execution.evaluate import accuracy
from tsblib.methods.registry import get_method
from tsblib.paths import ProfilePaths
from tsblib.provenance import machine_info
from tsblib.runtime import configure, use_channels_last
from tsblib.stages.common import prepared_data
from tsblib.stages.evaluate import evaluation_batches
from tsblib.stages.train import _train_one
from tsblib.models import experiment_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--method", default="clean", help="a method with its own training run")
    parser.add_argument("--optimizer", choices=[o.value for o in Optimizer], default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--weight-decay", type=float, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()

    profile = load_profile(args.params, args.profile)
    exp = profile.experiment(args.model)
    spec = get_method(args.method)
    cfg = spec.train_config(exp)
    changes = {"optimizer": Optimizer(args.optimizer) if args.optimizer else None, "lr": args.lr,
               "weight_decay": args.weight_decay, "epochs": args.epochs}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})
    device = configure(profile.runtime)
    data = prepared_data(ProfilePaths(profile.name), exp, with_test=True)
    start = time.perf_counter()
    result = _train_one(spec, exp, cfg, data, profile, device, f"{args.model}/{args.method}",
                        progress=True)
    seconds = time.perf_counter() - start
    model = experiment_model(exp)
    model.load_state_dict(result.state)
    model = model.to(device).eval()
    test = evaluation_batches(data, exp, device, use_channels_last(profile.runtime, device))
    print(f"{args.profile} {args.model} {args.method}: {cfg.recipe}, {cfg.epochs} epochs, "
          f"sigma_train {cfg.sigma_train:g} ({seconds:.0f} s on {machine_info()['cpu']})")
    print("epoch  val_clean_acc  val_chip_acc_mean")
    for row in result.curve:
        print(f"{row['epoch']:5d}  {row['val_clean_acc']:13.4f}  {row['val_chip_acc_mean']:17.4f}")
    print(f"deployed epoch {result.selected_epoch}: noise-free test accuracy "
          f"{accuracy(model, test, profile.runtime):.4f} on {sum(len(y) for _, y in test)} images")


if __name__ == "__main__":
    main()
