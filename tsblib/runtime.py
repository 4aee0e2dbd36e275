"""Where computation runs: device resolution, autocast, memory format and determinism.

One code path for CPU and GPU: nothing here assumes CUDA is present.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from tsblib.config import RuntimeConfig


def resolve_device(cfg: RuntimeConfig) -> torch.device:
    """The torch device `cfg.device` names; 'auto' picks CUDA when available, else the CPU."""
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"runtime.device = {cfg.device!r} but CUDA is not available on this "
                           f"machine; set runtime.device to 'auto' or 'cpu'")
    return torch.device(cfg.device)


def configure(cfg: RuntimeConfig) -> torch.device:
    """Apply threads and determinism settings once, and return the device to use."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg)
    if cfg.deterministic and device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


@contextlib.contextmanager
def autocast(cfg: RuntimeConfig, device: torch.device) -> Iterator[None]:
    """bf16 autocast for matrix work when `cfg.bf16`, on CUDA, and on the CPU with `cfg.cpu_bf16`;
    otherwise a no-op."""
    if cfg.bf16 and (device.type == "cuda" or (device.type == "cpu" and cfg.cpu_bf16)):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def use_channels_last(cfg: RuntimeConfig, device: torch.device) -> bool:
    """Whether to use channels_last tensors for training: on CUDA, and on the CPU with
    `cfg.cpu_bf16`."""
    return cfg.channels_last and (device.type == "cuda" or (device.type == "cpu" and cfg.cpu_bf16))
