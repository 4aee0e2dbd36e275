"""Monte Carlo evaluation over chips: accuracy of M seeded chips, batched over chips.

Chips are evaluated together (`tsblib.chipbatch`: chips stacked along the channels), so one pass
over the test set serves a whole batch of chips; chip k is the same whatever the batch it is in.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

import numpy as np
import torch
from scipy import stats
from torch import nn
from tqdm.auto import tqdm

from tsblib.chipbatch import Read, chip_batched
from tsblib.config import DeviceConfig, RuntimeConfig, WriteVerifyConfig
from tsblib.devices.base import stack_of
from tsblib.runtime import autocast
from tsblib.variation import chip_seed, read_hook, sample_chips


@dataclass(frozen=True)
class ChipStats:
    """Accuracy over chips."""

    accuracies: tuple[float, ...]
    """Accuracy of every chip, in chip order."""
    mean: float
    """Mean accuracy."""
    std: float
    """Sample standard deviation across chips."""
    ci95: float
    """Half-width of the 95 % confidence interval of the mean (Student t)."""

    @property
    def chips(self) -> int:
        """Number of chips."""
        return len(self.accuracies)


def summarize(accuracies: Iterable[float]) -> ChipStats:
    """Mean, std and 95 % CI half-width (Student t with n-1 degrees of freedom)."""
    accs = tuple(float(a) for a in accuracies)
    n = len(accs)
    mean = statistics.mean(accs)  # exact (rational) arithmetic: equal chips give std 0 exactly
    std = statistics.stdev(accs) if n > 1 else 0.0
    ci = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n) if n > 1 else float("nan")
    return ChipStats(accuracies=accs, mean=mean, std=std, ci95=ci)


YIELD_PERCENTILES = (1, 5, 50)
"""Percentiles of chip accuracy reported beside the mean (a realistic worst case)."""

YIELD_POINTS = (1, 2)
"""Chip yield: fraction of chips within this many accuracy points of the noise-free accuracy."""


def chip_yield(accuracies: Iterable[float], reference: float) -> dict[str, float]:
    """The 1st, 5th and 50th percentile of chip accuracy (linear interpolation between chips,
    no bootstrap) and the fraction of chips within 1 and 2 points (0.01, 0.02) of `reference`,
    the deployed model's noise-free accuracy: {'acc_p01', 'acc_p05', 'acc_p50', 'yield_1pt',
    'yield_2pt'}."""
    accs = np.asarray(list(accuracies), dtype=np.float64)
    out = {f"acc_p{q:02d}": float(np.percentile(accs, q)) for q in YIELD_PERCENTILES}
    for points in YIELD_POINTS:
        # 1e-9: an accuracy exactly `points` below the reference counts as within it
        out[f"yield_{points}pt"] = float(np.mean(accs >= reference - points / 100 - 1e-9))
    return out


Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def accuracy(model: nn.Module, batches: Batches, runtime: RuntimeConfig | None = None) -> float:
    """Noise-free accuracy of `model` (eval mode) on `batches`."""
    runtime = runtime or RuntimeConfig()
    model.eval()
    correct = total = 0
    for x, y in batches:
        with autocast(runtime, x.device):
            pred = model(x).argmax(1)
        correct += int((pred == y).sum())
        total += y.numel()
    return correct / total


@torch.no_grad()
def chip_accuracies(model: nn.Module, chip_params: Mapping[str, torch.Tensor], batches: Batches,
                    chip_buffers: Mapping[str, torch.Tensor] | None = None,
                    runtime: RuntimeConfig | None = None, read: Read | None = None) -> torch.Tensor:
    """Accuracy of each chip in a batch: `chip_params` maps names to [K, *shape] weights
    (the other parameters and buffers are shared); `chip_buffers` optionally gives per-chip
    BatchNorm statistics; `read` draws one read of the weights per forward (read noise).
    Returns a CPU float64 tensor [K]."""
    runtime = runtime or RuntimeConfig()
    model.eval()
    batched = chip_batched(model, chip_params, chip_buffers, read)
    correct = None
    total = 0
    for x, y in batches:
        with autocast(runtime, x.device):
            logits = batched(x)
        hits = (logits.argmax(-1) == y.unsqueeze(0)).sum(1)
        correct = hits if correct is None else correct + hits
        total += y.numel()
    return correct.double().cpu() / total


def monte_carlo(model: nn.Module, names: list[str], sigma: float, device: DeviceConfig,
                batches: Batches, *, chips: int, seed: int, chip_batch: int,
                verify: Mapping[str, torch.Tensor | bool] | None = None,
                wv: WriteVerifyConfig | None = None, tag: str = "",
                per_chip: Callable[[list[int], dict[str, torch.Tensor]],
                                   tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] | None = None,
                runtime: RuntimeConfig | None = None, progress: bool = True,
                desc: str = "chips") -> ChipStats:
    """Accuracy of `chips` seeded chips of `model` at `sigma`.

    `names` are the weights mapped to devices; `verify` marks write-verified weights.
    `per_chip(chip_indices, chip_params)` may return (params, buffers) to use instead, e.g.
    TSB weights fine-tuned for those chips or re-estimated BatchNorm statistics. When the device
    models have read noise, every forward pass reads the chips afresh (`read_hook`).

    At sigma = 0 every chip is the ideal chip (no programming error, no read noise), so a group
    of chips whose weights and buffers equal the first group's exactly is given the first
    group's accuracies instead of being evaluated again: the same deterministic computation on
    the same tensors, so the result is unchanged and the test split is read once, not once per
    group (a per-chip hook that makes chips differ, e.g. TSB blocks per chip, is evaluated).
    """
    params = dict(model.named_parameters())
    scales = {n: params[n].detach().abs().max() for n in names} if stack_of(device).readers else {}
    accs: list[float] = []
    first: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[float]] | None = None
    starts = range(0, chips, chip_batch)
    for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
        index = list(range(start, min(start + chip_batch, chips)))
        seeds = [chip_seed(seed, sigma, k, tag) for k in index]
        stacked = sample_chips(params, names, sigma, device, seeds, verify, wv)
        buffers: dict[str, torch.Tensor] = {}
        if per_chip is not None:
            stacked, buffers = per_chip(index, stacked)
        read = read_hook(device, sigma, seeds, scales)
        ideal = sigma == 0 and read is None
        if ideal and first is not None \
                and same_tensors(first[0], stacked) and same_tensors(first[1], buffers):
            accs += first[2]
            continue
        group = chip_accuracies(model, stacked, batches, buffers, runtime, read).tolist()
        if ideal and first is None:
            first = (stacked, buffers, group)
        accs += group
    return summarize(accs)


def same_tensors(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> bool:
    """Whether two name -> tensor maps hold the same names and exactly the same tensors (shape,
    dtype and values; compared on the first one's device)."""
    return a.keys() == b.keys() and all(
        a[n].shape == b[n].shape and a[n].dtype == b[n].dtype
        and torch.equal(a[n], b[n].to(a[n].device)) for n in a)
