"""Clean training: plain cross-entropy, no noise; the ideal-gap reference (DESIGN section 6).
Its code: `tsblib.execution.clean`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tsblib.config import ConfigError, ExperimentConfig, Optimizer, TrainConfig
from tsblib.methods.registry import Implementation, MethodSpec, register

IMPL = Implementation("clean")


@dataclass(frozen=True)
class CleanParams:
    """Clean training's own recipe, where it differs from the profile's `train` (the recipe of
    the noise-trained methods): a noise-free network may train best with another optimiser
    (e.g. SGD, under which noise-injection training diverges). Unset fields are `train`'s."""

    optimizer: Optimizer | None = None
    """Optimiser of clean training (null = `train.optimizer`)."""
    lr: float | None = None
    """Peak learning rate of clean training (null = `train.lr`)."""
    weight_decay: float | None = None
    """Weight decay of clean training (null = `train.weight_decay`)."""
    epochs: int | None = None
    """Epochs of clean training (null = `train.epochs`): it runs beside NIT in the train stage,
    so a few more epochs can cost no wall time (the stage waits for NIT's runs anyway)."""

    def validate(self) -> None:
        if self.epochs is not None and (isinstance(self.epochs, bool)
                                        or not isinstance(self.epochs, int) or self.epochs < 1):
            raise ConfigError(f"methods.clean.epochs = {self.epochs!r} is not allowed: expected "
                              f"null (train.epochs) or an integer >= 1. Fix it in params.yaml.")
        for key, ok, allowed in (("lr", self.lr is None or self.lr > 0, "> 0"),
                                 ("weight_decay", self.weight_decay is None
                                  or self.weight_decay >= 0, ">= 0")):
            if not ok:
                raise ConfigError(f"methods.clean.{key} = {getattr(self, key)!r} is not allowed: "
                                  f"expected null (train.{key}) or a number {allowed}. Fix it in "
                                  f"params.yaml.")


def recipe(exp: ExperimentConfig) -> TrainConfig:
    """Clean training's recipe: `exp.train` with the fields `methods.clean` sets."""
    own = dataclasses.asdict(exp.methods.of("clean"))
    return dataclasses.replace(exp.train, **{k: v for k, v in own.items() if v is not None})


SPEC = register(MethodSpec(
    name="clean", label="clean training", color="#7f7f7f", marker="o", order=0,
    description="trained without noise, programmed once (reference of the ideal gap)",
    trained_from="clean", objective=IMPL.objective, evaluate=IMPL.evaluate,
    params=CleanParams, recipe=recipe, selects_epoch_on="clean"))
