"""The shared training loop and the objectives of clean, NIT, NFT and CorrectNet training.

An objective maps (model, parameters, batch) to a loss; noise-injection objectives draw a fresh
weight error on every forward. Every run reports the epochs and seconds it spent.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from tsblib.config import DeviceConfig, MethodsConfig, RuntimeConfig, TrainConfig
from tsblib.data import Batches, PreparedData
from tsblib.evaluate import accuracy, monte_carlo
from tsblib.runtime import autocast, use_channels_last
from tsblib.variation import error_std_factor, mapped_weight_names, training_noise

CE = nn.functional.cross_entropy


class Objective(Protocol):
    """Loss of one mini-batch; may draw noise from `generator`."""

    def __call__(self, model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...


def clean_objective() -> Objective:
    """Plain cross-entropy, no noise."""

    def loss(model, params, x, y, generator):
        return CE(functional_call(model, params, (x,)), y)

    return loss


def nit_objective(names: list[str], sigma: float, device: DeviceConfig) -> Objective:
    """Noise-injection training: a fresh chip-like weight error on every forward."""

    def loss(model, params, x, y, generator):
        noisy = training_noise(params, names, sigma, device, generator)
        return CE(functional_call(model, {**params, **noisy}, (x,)), y)

    return loss


def nft_ovf_objective(names: list[str], sigma: float, device: DeviceConfig, scale: float,
                      weight: float) -> Objective:
    """NFT-style oriented variational forward (our reading of Qin et al.'s negative feedback
    training): the noisy loss, plus the loss under a second, larger weight error whose sign is
    oriented along the loss gradient (the worst-case direction), added as negative feedback."""

    def loss(model, params, x, y, generator):
        noisy = training_noise(params, names, sigma, device, generator)
        base = CE(functional_call(model, {**params, **noisy}, (x,)), y)
        grads = torch.autograd.grad(base, [noisy[n] for n in names], retain_graph=True)
        oriented = {}
        for n, g in zip(names, grads):
            w = params[n]
            std = error_std_factor(device) * sigma * scale * w.detach().abs().max()
            mag = torch.randn(w.shape, generator=generator, device=generator.device).abs()
            oriented[n] = w + (std * mag.to(w.device) * torch.sign(g)).detach()
        feedback = CE(functional_call(model, {**params, **oriented}, (x,)), y)
        return base + weight * feedback

    return loss


def orthogonality_penalty(params: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    """sum over layers of ||W W^T - I||_F^2 / numel, W reshaped to [out, in] (smaller side)."""
    total = 0.0
    for n in names:
        w = params[n].reshape(params[n].shape[0], -1)
        if w.shape[0] > w.shape[1]:
            w = w.t()
        gram = w @ w.t()
        eye = torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype)
        total = total + ((gram - eye) ** 2).sum() / gram.numel()
    return total


def correctnet_objective(names: list[str], sigma: float, device: DeviceConfig,
                         weight: float) -> Objective:
    """CorrectNet-style training: noise injection plus an orthogonality (Lipschitz) regulariser
    that keeps each layer's gain near 1, so weight errors are not amplified layer to layer."""
    nit = nit_objective(names, sigma, device)

    def loss(model, params, x, y, generator):
        return nit(model, params, x, y, generator) + weight * orthogonality_penalty(params, names)

    return loss


def make_objective(method: str, model: nn.Module, train: TrainConfig, methods: MethodsConfig,
                   device: DeviceConfig) -> Objective:
    """The training objective of `method` ('clean', 'nit', 'nft_ovf', 'correctnet')."""
    names = mapped_weight_names(model)
    if method == "clean":
        return clean_objective()
    if method == "nit":
        return nit_objective(names, train.sigma_train, device)
    if method == "nft_ovf":
        return nft_ovf_objective(names, train.sigma_train, device, methods.nft_ovf_scale,
                                 methods.nft_ovf_weight)
    if method == "correctnet":
        return correctnet_objective(names, train.sigma_train, device, methods.correctnet_weight)
    raise ValueError(f"method = {method!r} has no training objective; "
                     f"expected one of ['clean', 'nit', 'nft_ovf', 'correctnet']")


@dataclass
class TrainResult:
    """What a training run produced and what it cost."""

    state: dict[str, torch.Tensor]
    """Final state_dict (on the CPU)."""
    epochs: int
    """Epochs trained."""
    seconds: float
    """Wall-clock seconds of training (excluding the per-epoch curve evaluation)."""
    curve: list[dict] = field(default_factory=list)
    """Per epoch: epoch, seconds, loss, clean_acc, var_acc_mean, var_acc_ci95."""
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    """state_dicts saved after the requested epochs (e.g. the early TSB backbone)."""


def train(model: nn.Module, data: PreparedData, cfg: TrainConfig, objective: Objective, *,
          device: torch.device, runtime: RuntimeConfig, device_model: DeviceConfig,
          snapshot_epochs: tuple[int, ...] = (), curve_sigma: float | None = None,
          curve_seed: int = 7, eval_batch_size: int = 100, desc: str = "train",
          progress: bool = True) -> TrainResult:
    """Train `model` with SGD + momentum and a cosine schedule for `cfg.epochs` epochs.

    After every epoch the clean test accuracy and, when `curve_sigma` is given and
    `cfg.curve_chips` > 0, the mean accuracy of `cfg.curve_chips` chips are recorded.
    """
    model.to(device)
    if use_channels_last(runtime, device):
        model.to(memory_format=torch.channels_last)
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    order = torch.Generator().manual_seed(cfg.seed)
    train_batches = Batches(data.train, cfg.batch_size, mean=data.mean, std=data.std,
                            device=device, shuffle=True, generator=order, augment=cfg.augment,
                            drop_last=True, channels_last=use_channels_last(runtime, device))
    test_batches = list(Batches(data.test, eval_batch_size, mean=data.mean, std=data.std, device=device,
                                channels_last=use_channels_last(runtime, device)))
    params = dict(model.named_parameters())
    decay = [p for n, p in params.items() if p.dim() > 1]
    no_decay = [p for n, p in params.items() if p.dim() <= 1]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": cfg.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    steps = cfg.epochs * len(train_batches)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    names = mapped_weight_names(model)
    result = TrainResult(state={}, epochs=cfg.epochs, seconds=0.0)
    bar = tqdm(range(1, cfg.epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
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
        result.seconds += time.perf_counter() - start
        row = {"epoch": epoch, "seconds": result.seconds, "loss": total / len(train_batches),
               "clean_acc": accuracy(model, test_batches, runtime)}
        if curve_sigma is not None and cfg.curve_chips > 0:
            stats = monte_carlo(model, names, curve_sigma, device_model, test_batches,
                                chips=cfg.curve_chips, seed=curve_seed,
                                chip_batch=cfg.curve_chips, runtime=runtime, progress=False,
                                tag="chip")
            row.update(var_acc_mean=stats.mean, var_acc_ci95=stats.ci95)
        result.curve.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['clean_acc']:.3f}")
        if epoch in snapshot_epochs:
            result.snapshots[epoch] = _cpu_state(model)
    result.state = _cpu_state(model)
    return result


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def early_epoch(epochs: int, fraction: float) -> int:
    """The epoch at which the TSB backbone stops: ceil(fraction * epochs), at least 1."""
    return max(1, math.ceil(fraction * epochs - 1e-9))
