"""Monte Carlo evaluation over chips: accuracy of M seeded chips, batched over chips.

Chips are evaluated together (`tsblib.execution.chipbatch`: chips stacked along the channels),
so one pass over the test set serves a whole batch of chips; chip k is the same whatever the
batch it is in. Statistics over chips: `tsblib.chipstats`.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

import torch
from torch import nn
from tqdm.auto import tqdm

from tsblib.execution.chipbatch import Read, chip_batched
from tsblib.chipstats import ChipStats, summarize
from tsblib.config import DeviceConfig, RuntimeConfig, WriteVerifyConfig
from tsblib.devices.base import stack_of
from tsblib.runtime import autocast
from tsblib.variation import chip_seed, read_hook, sample_chips


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
