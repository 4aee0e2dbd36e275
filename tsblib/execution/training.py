"""The shared training loop of every trained method: the recipe (optimiser, schedule), the
per-epoch validation on chips, and the deployed epoch chosen on the validation split.

An objective (one per method, in the method's module) maps (model, parameters, batch) to a loss;
noise-injection objectives draw a fresh weight error on every forward.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch
from torch import nn
from tqdm.auto import tqdm

from tsblib.config import DeviceConfig, Optimizer, RuntimeConfig, Schedule, TrainConfig
from tsblib.data import Batches, PreparedData
from tsblib.execution.evaluate import accuracy, monte_carlo
from tsblib.runtime import autocast, use_channels_last
from tsblib.variation import mapped_weight_names

CE = nn.functional.cross_entropy


class Objective(Protocol):
    """Loss of one mini-batch; may draw noise from `generator`.

    `extra` holds trainable modules that are not part of the deployed model (NFT-IRS's auxiliary
    heads), or None; the training loop optimises them and drops them afterwards.
    """

    extra: nn.Module | None

    def __call__(self, model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...


def make_optimizer(params: dict[str, torch.Tensor], cfg: TrainConfig,
                   extra: list[torch.Tensor] = ()) -> torch.optim.Optimizer:
    """The optimiser of the recipe in `cfg`; weight decay on conv/linear weights only (and on
    `extra`, e.g. the auxiliary heads of NFT-IRS, treated like the model's own parameters)."""
    extra = list(extra)
    decay = [p for p in params.values() if p.dim() > 1] + [p for p in extra if p.dim() > 1]
    no_decay = [p for p in params.values() if p.dim() <= 1] + [p for p in extra if p.dim() <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer is Optimizer.SGD:
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                               nesterov=cfg.momentum > 0)
    if cfg.optimizer is Optimizer.ADAM:
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def make_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig,
                  steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Per-step learning-rate schedule of the recipe over `steps` steps."""
    if cfg.schedule is Schedule.CONSTANT:
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


@dataclass
class TrainResult:
    """What a training run produced and what it cost."""

    state: dict[str, torch.Tensor]
    """state_dict of the deployed (validation-selected) epoch, on the CPU."""
    epochs: int
    """Epochs trained (the whole schedule)."""
    selected_epoch: int
    """The deployed epoch: best validation score (see `train`)."""
    seconds: float
    """Wall-clock seconds of training up to the selected epoch (validation excluded)."""
    curve: list[dict] = field(default_factory=list)
    """Per epoch: epoch, seconds, loss, val_clean_acc, val_chip_acc_mean, val_chip_acc_ci95."""
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    """state_dicts saved after the requested epochs (e.g. the early TSB backbone)."""


def train(model: nn.Module, data: PreparedData, cfg: TrainConfig, objective: Objective, *,
          device: torch.device, runtime: RuntimeConfig, device_model: DeviceConfig,
          select_on: str = "chips", snapshot_epochs: tuple[int, ...] = (),
          val_seed: int = 7, eval_batch_size: int = 500, desc: str = "train",
          progress: bool = True,
          on_epoch: Callable[[dict[str, Any]], None] | None = None) -> TrainResult:
    """Train `model` with the recipe in `cfg` for `cfg.epochs` epochs and keep the best epoch.

    After every epoch the model is scored on the validation split: its noise-free accuracy and
    the mean accuracy of `cfg.val_chips` seeded chips at `cfg.sigma_train` (the same chips every
    epoch). The deployed state is the epoch with the best score, `select_on` = 'chips' (mean
    chip accuracy) or 'clean' (noise-free accuracy); ties go to the earlier epoch. The test
    split is never read. `on_epoch`, when given, receives each epoch's curve row as soon as the
    epoch is scored (how a training worker process reports its progress).
    """
    if select_on not in ("chips", "clean"):
        raise ValueError(f"select_on = {select_on!r} is not allowed: expected 'chips' or 'clean'")
    model.to(device)
    cl = use_channels_last(runtime, device)
    if cl:
        model.to(memory_format=torch.channels_last)
    extra = getattr(objective, "extra", None)
    if extra is not None:
        extra.to(device)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    order = torch.Generator().manual_seed(cfg.seed)
    train_batches = Batches(data.train, cfg.batch_size, mean=data.mean, std=data.std,
                            device=device, shuffle=True, generator=order, augment=cfg.augment,
                            drop_last=True, channels_last=cl)
    val_batches = list(Batches(data.val, eval_batch_size, mean=data.mean, std=data.std,
                               device=device, channels_last=cl))
    params = dict(model.named_parameters())
    opt = make_optimizer(params, cfg, list(extra.parameters()) if extra is not None else [])
    steps = cfg.epochs * len(train_batches)
    sched = make_schedule(opt, cfg, steps)
    names = mapped_weight_names(model)
    best_score, best_state, best_epoch, seconds = -math.inf, None, 0, 0.0
    result = TrainResult(state={}, epochs=cfg.epochs, selected_epoch=0, seconds=0.0)
    bar = tqdm(range(1, cfg.epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        if extra is not None:
            extra.train()
        start = time.perf_counter()
        total = 0.0
        for x, y in train_batches:
            with autocast(runtime, device):
                loss = objective(model, params, x, y, generator)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - start
        row = {"epoch": epoch, "seconds": seconds, "loss": total / len(train_batches),
               "val_clean_acc": accuracy(model, val_batches, runtime)}
        if cfg.sigma_train > 0:
            stats = monte_carlo(model, names, cfg.sigma_train, device_model, val_batches,
                                chips=cfg.val_chips, seed=val_seed, chip_batch=cfg.val_chips,
                                runtime=runtime, progress=False, tag="val")
            row.update(val_chip_acc_mean=stats.mean, val_chip_acc_ci95=stats.ci95)
        else:
            row.update(val_chip_acc_mean=row["val_clean_acc"], val_chip_acc_ci95=0.0)
        result.curve.append(row)
        score = row["val_chip_acc_mean"] if select_on == "chips" else row["val_clean_acc"]
        if score > best_score:
            best_score, best_epoch, best_state = score, epoch, _cpu_state(model)
            result.seconds = seconds
        bar.set_postfix(loss=f"{row['loss']:.3f}", val=f"{score:.3f}")
        if on_epoch is not None:
            on_epoch(row)
        if epoch in snapshot_epochs:
            result.snapshots[epoch] = _cpu_state(model)
    result.state, result.selected_epoch = best_state, best_epoch
    for row in result.curve:
        row["selected"] = row["epoch"] == best_epoch
    return result


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


