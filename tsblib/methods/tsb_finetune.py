"""Per-chip fine-tuning of the Tiny Shared Block: the backbone frozen at a chip's programmed
(read-back) weights and BatchNorm frozen; only the block is trained, under write-verify noise.
Chips are fine-tuned together, stacked along the channels (`tsblib.chipbatch`)."""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from tsblib import writeverify
from tsblib.chipbatch import chip_batched
from tsblib.config import (DeviceConfig, NoiseModel, RuntimeConfig, TSBConfig,
                           WriteVerifyConfig)
from tsblib.data import Batches, PreparedData
from tsblib.runtime import autocast, use_channels_last
from tsblib.tsb import tsb_weight_names
from tsblib.variation import chip_seed, error_std_factor, mapped_weight_names, sample_chips, training_noise


@dataclass
class FinetuneResult:
    """Fine-tuned block weights of a batch of chips and the cost."""

    blocks: dict[str, torch.Tensor]
    """Block weights per chip, stacked: {name: [K, c, c]} (K = 1 in shared-noise mode)."""
    seconds: float
    """Wall-clock seconds spent fine-tuning these chips."""
    epochs: int
    """Fine-tuning epochs."""


def backbone_names(model: nn.Module) -> list[str]:
    """Mapped weights of the backbone (everything on devices except the block)."""
    block = set(tsb_weight_names(model))
    return [n for n in mapped_weight_names(model) if n not in block]


def read_back(stacked: dict[str, torch.Tensor], sigma_read: float, seeds: list[int]) -> dict[str, torch.Tensor]:
    """What the fine-tuning sees of the programmed weights: one read with Gaussian read noise
    of std `error_std_factor * sigma_read * max|W|` (device-range convention), per chip."""
    if sigma_read == 0:
        return stacked
    read_device = DeviceConfig(noise_model=NoiseModel.GAUSSIAN)
    out = {}
    for name, weights in stacked.items():
        noisy = []
        for k, seed in enumerate(seeds):
            g = torch.Generator().manual_seed(chip_seed(seed, sigma_read, 0, f"read/{name}"))
            w = weights[k]
            std = error_std_factor(read_device) * sigma_read * w.abs().max().cpu()
            noisy.append(w + (std * torch.randn(w.shape, generator=g)).to(w.device, w.dtype))
        out[name] = torch.stack(noisy)
    return out


def _residual_noise(blocks: dict[str, torch.Tensor], sigma: float, device: DeviceConfig,
                    wv: WriteVerifyConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Blocks with a fresh write-verify residual error (Gaussian with the residual std)."""
    if sigma == 0:
        return blocks
    res = writeverify.residual_std(sigma, writeverify.delta_for(sigma, wv))
    out = {}
    for n, w in blocks.items():
        scale = w.detach().abs().amax(dim=tuple(range(1, w.dim())), keepdim=True)
        z = torch.randn(w.shape, generator=generator, device=generator.device).to(w.device)
        out[n] = w + error_std_factor(device) * res * scale * z
    return out


def finetune(model: nn.Module, data: PreparedData, cfg: TSBConfig, sigma: float,
             device_model: DeviceConfig, wv: WriteVerifyConfig, *, chip_params: dict[str, torch.Tensor] | None,
             seed: int, device: torch.device, runtime: RuntimeConfig,
             progress: bool = True) -> FinetuneResult:
    """Fine-tune the block of `model` (which carries an inserted, zero-initialised TSB).

    per-chip mode: `chip_params` holds K chips' read-back backbone weights [K, ...]; one block
    per chip is trained against its chip. shared-noise mode: `chip_params` is None; one block is
    trained against a fresh backbone error at `sigma` every step.
    """
    model.eval()  # BatchNorm statistics frozen
    names = tsb_weight_names(model)
    params = {n: p.detach() for n, p in model.named_parameters()}
    k = 1 if chip_params is None else next(iter(chip_params.values())).shape[0]
    blocks = {n: torch.zeros(k, *params[n].shape, device=device, requires_grad=True) for n in names}
    opt = torch.optim.Adam(list(blocks.values()), lr=cfg.lr)
    order = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=device).manual_seed(seed)
    cl = use_channels_last(runtime, device)
    batches = Batches(data.train, cfg.batch_size, mean=data.mean, std=data.std, device=device,
                      shuffle=True, generator=order, drop_last=True, channels_last=cl)
    backbone = backbone_names(model)
    batched = None if chip_params is None else chip_batched(model, chip_params)
    start = time.perf_counter()
    for _ in tqdm(range(cfg.epochs), desc=f"tsb fine-tune ({k} chips)", disable=not progress, leave=False):
        for x, y in batches:
            noisy_blocks = _residual_noise(blocks, sigma, device_model, wv, noise)
            with autocast(runtime, device):
                if batched is None:  # shared noise: one block against a fresh backbone error
                    fresh = training_noise(params, backbone, sigma, device_model, noise)
                    single = {n: w[0] for n, w in noisy_blocks.items()}
                    logits = functional_call(model, {**params, **fresh, **single}, (x,)).unsqueeze(0)
                else:
                    batched.set_blocks(noisy_blocks)
                    logits = batched(x)
            loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), y.repeat(k)) * k
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return FinetuneResult(blocks={n: w.detach() for n, w in blocks.items()}, seconds=seconds,
                          epochs=cfg.epochs)


def programmed_backbones(model: nn.Module, sigma: float, device_model: DeviceConfig,
                         seeds: list[int]) -> dict[str, torch.Tensor]:
    """The programmed backbone weights of chips `seeds` (stacked), as deployment sees them."""
    return sample_chips(dict(model.named_parameters()), backbone_names(model), sigma,
                        device_model, seeds)
