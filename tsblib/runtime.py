"""Where computation runs: device resolution, autocast, memory format and determinism.

One code path for CPU and GPU: nothing here assumes CUDA is present.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import sys
from typing import Iterator

import torch

from tsblib.config import RuntimeConfig

logger = logging.getLogger(__name__)

CPU_ISA_FLAGS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")
"""The /proc/cpuinfo flags that decide the CPU's fast path, as recorded with every timing."""


@functools.lru_cache(maxsize=1)
def cpu_isa() -> tuple[str, ...]:
    """Which of `CPU_ISA_FLAGS` this CPU has (empty where /proc/cpuinfo is not readable)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return tuple(f for f in CPU_ISA_FLAGS if f in flags)
    except OSError:
        pass
    return ()


@functools.lru_cache(maxsize=1)
def cpu_bf16_supported() -> bool:
    """Whether oneDNN has bf16 kernels on this CPU (AMX or AVX-512 BF16, or what oneDNN itself
    reports): where it has none, bf16 autocast would be emulated and slower than fp32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return bool({"amx_bf16", "avx512_bf16"} & set(cpu_isa()))


_warned: set[str] = set()


def _cpu_fast(cfg: RuntimeConfig) -> bool:
    """`cfg.cpu_bf16` where the CPU supports it; asked for on a CPU without bf16 units, a warning
    (once per process) and fp32."""
    if not (cfg.bf16 and cfg.cpu_bf16):
        return False
    if cpu_bf16_supported():
        return True
    if "cpu_bf16" not in _warned:
        _warned.add("cpu_bf16")
        logger.warning("runtime.cpu_bf16 is set but this CPU has no bf16 matrix units (no AMX or "
                       "AVX-512 BF16; flags found: %s): running fp32 and NCHW instead, which is "
                       "what such a CPU runs fastest", ", ".join(cpu_isa()) or "none")
    return False


def fast_path(cfg: RuntimeConfig, device: torch.device) -> str:
    """The number format and memory layout this runtime uses on `device`, in words, for the
    timing files and benchmarks: e.g. 'bf16 autocast + channels_last' or 'fp32 + NCHW'."""
    bf16 = cfg.bf16 and (device.type == "cuda" or (device.type == "cpu" and _cpu_fast(cfg)))
    layout = "channels_last" if use_channels_last(cfg, device) else "NCHW"
    return f"{'bf16 autocast' if bf16 else 'fp32'} + {layout}"


def resolve_device(cfg: RuntimeConfig) -> torch.device:
    """The torch device `cfg.device` names; 'auto' picks CUDA when available, else the CPU."""
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"runtime.device = {cfg.device!r} but CUDA is not available on this "
                           f"machine; set runtime.device to 'auto' or 'cpu'")
    return torch.device(cfg.device)


MALLOC_SETTINGS = {-3: 32 * 2 ** 20, -1: 2 ** 31 - 1, -2: 64 * 2 ** 20}
"""glibc `mallopt` settings of `keep_freed_memory`: M_MMAP_THRESHOLD (-3) at 32 MiB, the largest
glibc allows (bigger blocks are still mapped afresh each time), M_TRIM_THRESHOLD (-1) at 2 GiB
(freed heap memory stays with the process) and M_TOP_PAD (-2) at 64 MiB (the heap grows in large
steps)."""


@functools.lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Have malloc keep freed memory for reuse: apply `MALLOC_SETTINGS` once per process, where
    the C library is glibc on Linux, so that activations reuse pages instead of faulting in fresh
    zeroed ones (faster memory-bound work, benchmarks/bench_allocator.py; the process keeps its
    peak memory until it ends). Returns whether it did. It does nothing elsewhere (musl, macOS,
    Windows) and where the user tunes malloc already (`GLIBC_TUNABLES` or a `MALLOC_*`
    variable in the environment: set e.g. `MALLOC_TRIM_THRESHOLD_=131072`, glibc's default, to
    keep glibc's behaviour). Allocation only: no computed value changes (torch aligns every CPU
    tensor to 64 bytes either way)."""
    if not sys.platform.startswith("linux") or "GLIBC_TUNABLES" in os.environ or any(
            k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    applied = all(mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS.items())
    logger.debug("malloc keeps freed memory: %s", applied)
    return applied


def configure(cfg: RuntimeConfig) -> torch.device:
    """Apply threads, determinism and (on the CPU, `keep_freed_memory`) malloc settings once, and
    return the device to use."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg)
    if device.type == "cpu":
        keep_freed_memory()
    if cfg.deterministic and device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device


@contextlib.contextmanager
def autocast(cfg: RuntimeConfig, device: torch.device) -> Iterator[None]:
    """bf16 autocast for matrix work when `cfg.bf16`, on CUDA, and on the CPU with `cfg.cpu_bf16`
    where the CPU has bf16 units (`cpu_bf16_supported`; else a warning once and fp32);
    otherwise a no-op. Training, per-chip fine-tuning, BN recalibration and the Monte Carlo
    evaluation all run under it."""
    if cfg.bf16 and (device.type == "cuda" or (device.type == "cpu" and _cpu_fast(cfg))):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def use_channels_last(cfg: RuntimeConfig, device: torch.device) -> bool:
    """Whether to use channels_last tensors for training: on CUDA, and on the CPU on the bf16 fast
    path (`cfg.cpu_bf16` on a CPU with bf16 units)."""
    return cfg.channels_last and (device.type == "cuda" or (device.type == "cpu" and _cpu_fast(cfg)))
