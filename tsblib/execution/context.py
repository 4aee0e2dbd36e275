"""What a method's training objective and deployment steps are handed by the pipeline:
`TrainContext`, `EvalContext` (trained models, test batches, Monte Carlo) and `Point`,
`FinetuneContext` (block fine-tuning), `RobustContext` and `Deployed` (robustness)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch
from torch import nn

from tsblib import io
from tsblib.config import DeviceConfig, ExperimentConfig, ProfileConfig
from tsblib.data import Batches, PreparedData, Split
from tsblib.chipstats import ChipStats
from tsblib.execution.evaluate import accuracy, monte_carlo
from tsblib.models import experiment_model
from tsblib.paths import ProfilePaths
from tsblib.runtime import use_channels_last
from tsblib.variation import mapped_weight_names

BatchList = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass
class TrainContext:
    """Inputs of a training-objective factory."""

    model: nn.Module
    """The freshly built model to be trained."""
    exp: ExperimentConfig
    """The experiment (recipe in `exp.train`, method parameters in `exp.methods`)."""
    device_model: DeviceConfig
    """Device-variation model of the profile."""
    dataset: str
    """Data set name ('mnist', 'cifar10', ...), for parameters that depend on it."""

    @property
    def names(self) -> list[str]:
        """Weights mapped to devices (the ones noise is injected into)."""
        return mapped_weight_names(self.model)


@dataclass(frozen=True)
class Point:
    """One evaluated point of a method: its chips' accuracies at one sigma."""

    method: str
    """Results name (a method, a TSB variant such as 'tsb_width16', or 'tsb_backbone_only')."""
    sigma: float
    """Device-variation sigma."""
    clean_acc: float
    """Noise-free accuracy of the deployed model (the own-gap reference)."""
    stats: ChipStats
    """Accuracy of every chip."""
    swim_p: float | None = None
    """SWIM: percentage of weights write-verified."""


def load_trained_model(paths: ProfilePaths, exp: ExperimentConfig, run: str,
                       device: torch.device) -> tuple[nn.Module, dict]:
    """The model of training run `run` ('clean', 'nit', 'tsb_backbone', ...) from the 'train'
    stage (eval mode, on `device`) and its checkpoint."""
    path = paths.train_checkpoint(exp.model, run)
    ckpt = io.load_checkpoint(path, "train")
    if ckpt.get("model") != exp.model:
        raise io.StageInputError(f"{path} holds model {ckpt.get('model')!r}, not {exp.model!r}; "
                                 f"rerun the 'train' stage")
    model = experiment_model(exp)
    model.load_state_dict(ckpt["state"])
    return model.to(device).eval(), ckpt


def calibration_batches(data: PreparedData, images: int, device: torch.device,
                        channels_last: bool) -> BatchList:
    """The first `images` training images after a fixed shuffle (BN recalibration, SWIM
    sensitivity): training data only, never validation or test."""
    gen = torch.Generator().manual_seed(12345)
    batches = Batches(data.train, 250, mean=data.mean, std=data.std, device=device, shuffle=True,
                      generator=gen, channels_last=channels_last)
    out, seen = [], 0
    for x, y in batches:
        if seen >= images:
            break
        out.append((x, y))
        seen += y.numel()
    return out


def split_batches(data: PreparedData, split: Split, batch_size: int, device: torch.device,
                  channels_last: bool) -> BatchList:
    """`split` as normalised evaluation batches on `device`."""
    return list(Batches(split, batch_size, mean=data.mean, std=data.std, device=device,
                        channels_last=channels_last))


@dataclass
class EvalContext:
    """Inputs of a method's deployment step in the 'evaluate' stage."""

    profile: ProfileConfig
    """The profile (device model, write-verify, runtime)."""
    exp: ExperimentConfig
    """The experiment being evaluated."""
    paths: ProfilePaths
    """Where the trained and fine-tuned checkpoints are."""
    device: torch.device
    """Where tensors are computed."""
    data: PreparedData
    """The prepared data, test split included (only this stage may read it)."""
    test: BatchList
    """The test split as evaluation batches."""
    progress: bool = True
    """Show progress bars."""
    points: dict[tuple[str, float], ChipStats] = field(default_factory=dict)
    """Chip statistics of the points this stage has evaluated so far, by (method, sigma)
    (SWIM's non-default p left out): the training-cost trajectory reuses the ones it would
    otherwise compute again on the same chips (`tsblib.methods.tsb_trajectory`)."""
    _models: dict[str, tuple[nn.Module, float]] = field(default_factory=dict)

    @property
    def channels_last(self) -> bool:
        """Whether batches are channels-last."""
        return use_channels_last(self.profile.runtime, self.device)

    def trained(self, run: str) -> tuple[nn.Module, float]:
        """The deployed model of training run `run` and its noise-free test accuracy (cached)."""
        if run not in self._models:
            model, _ = load_trained_model(self.paths, self.exp, run, self.device)
            self._models[run] = (model, accuracy(model, self.test, self.profile.runtime))
        return self._models[run]

    def monte_carlo(self, model: nn.Module, sigma: float, *, chips: int | None = None,
                    desc: str = "chips", names: list[str] | None = None, **kw: Any) -> ChipStats:
        """Accuracy of `chips` seeded chips of `model` (default `evaluation.chips`) at `sigma`
        on the test split; `kw` goes to `tsblib.execution.evaluate.monte_carlo` (verify,
        per_chip)."""
        ev = self.exp.evaluation
        return monte_carlo(model, names or mapped_weight_names(model), sigma, self.profile.device,
                           self.test, chips=chips or ev.chips, seed=ev.seed,
                           chip_batch=ev.chip_batch, wv=self.profile.write_verify,
                           runtime=self.profile.runtime, progress=self.progress, tag="chip",
                           desc=desc, **kw)

    def calibration(self, images: int) -> BatchList:
        """`images` training images (see `calibration_batches`)."""
        return calibration_batches(self.data, images, self.device, self.channels_last)


PerChip = Callable[[list[int], dict[str, torch.Tensor]],
                   tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]
"""A `monte_carlo` hook: (chip indices, stacked chip weights) -> (weights, BN buffers)."""


def programmed_once(run: str) -> Callable[[EvalContext], Any]:
    """The deployment step of a method whose trained model `run` is programmed once, without
    write-verify: every chip of the sigma sweep, noise-free accuracy as the own-gap reference."""

    def evaluate(ctx: EvalContext):
        model, clean = ctx.trained(run)
        for sigma in ctx.exp.evaluation.sigmas_for(run):
            yield Point(run, sigma, clean, ctx.monte_carlo(model, sigma, desc=f"{run} s={sigma}"))

    return evaluate


@dataclass
class Deployed:
    """A robustness deployment made ready (`RobustSpec.deploy`): its chips under any device
    model, the noise-free accuracy its own gap is read against, and an optional step run once
    per scenario before its chips are evaluated (per-chip TSB fine-tunes its blocks there)."""

    chips: Callable[[DeviceConfig], ChipStats]
    """Accuracy of the robustness chips programmed under a device model."""
    clean_acc: float
    """Noise-free accuracy of the deployed model (the yield reference)."""
    on_scenario: Callable[[Any], None] | None = None
    """Called with each scenario (`tsblib.config.Scenario`) before its conditions; None = none."""


@dataclass
class RobustContext:
    """What a robustness deployment is handed: the evaluation context, the stage's chips and
    sigma, and set-up shared between deployments (e.g. the fine-tuned TSB model)."""

    eval: EvalContext
    """The evaluation context of the model (trained models, data, test batches)."""
    chips: int
    """Chips per (scenario, deployment) point (`robustness.chips`)."""
    sigma: float
    """The operating sigma every point is evaluated at."""
    _shared: dict[str, Any] = field(default_factory=dict)

    def shared(self, key: str, make: Callable[[], Any]) -> Any:
        """`make()` the first time `key` is asked for, the same object afterwards."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    def monte_carlo(self, model: nn.Module, device: DeviceConfig, desc: str, *,
                    names: list[str] | None = None, **kw: Any) -> ChipStats:
        """Accuracy of the stage's chips of `model` at its sigma under device model `device`
        (`kw`: verify, per_chip, as for `tsblib.execution.evaluate.monte_carlo`)."""
        ctx, ev = self.eval, self.eval.exp.evaluation
        return monte_carlo(model, names or mapped_weight_names(model), self.sigma, device,
                           ctx.test, chips=self.chips, seed=ev.seed, chip_batch=ev.chip_batch,
                           wv=ctx.profile.write_verify, runtime=ctx.profile.runtime,
                           progress=False, tag="chip", desc=desc, **kw)


@dataclass
class FinetuneContext:
    """What a method's block fine-tuning is handed by the finetune stage (`MethodSpec.finetune`):
    the model's data and TSB backbone, and the block's learning rate and epochs, chosen once per
    model on validation (`tsb.lr` x `tsb.select_epochs`) and shared by every method."""

    profile: ProfileConfig
    """The profile (device model, write-verify, runtime)."""
    exp: ExperimentConfig
    """The experiment being fine-tuned."""
    paths: ProfilePaths
    """Where the trained models are and the fine-tuned blocks go."""
    device: torch.device
    """Where tensors are computed."""
    data: PreparedData
    """The prepared data (training and validation splits only)."""
    backbone: nn.Module
    """The stated TSB backbone (training run 'tsb_backbone')."""
    lr: float
    """The block's learning rate, chosen on validation."""
    epochs: int
    """The block's fine-tuning epochs, chosen on validation."""
    progress: bool = True
    """Show progress bars."""
    reuse: dict[str, tuple[dict, dict | None]] = field(default_factory=dict)
    """Blocks (and BatchNorm statistics) fine-tuned on the stated backbone at the operating
    sigma, by method: the training-cost trajectory takes them instead of fine-tuning them again
    (`tsblib.execution.tsb_trajectory.finetune_ages`)."""

    @property
    def chosen_exp(self) -> ExperimentConfig:
        """The experiment with the block's fine-tuning epochs chosen on validation."""
        return replace(self.exp, tsb=replace(self.exp.tsb, epochs=self.epochs))
