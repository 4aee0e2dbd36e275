"""Shared helpers of the benchmarks: the machine's measured matmul peak, timing, and the
RESULTS.md log (newest run first, earlier rows kept)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import torch
from torch.func import functional_call

from tsblib.config import DeviceConfig, RuntimeConfig
from tsblib.execution.nit import nit_objective
from tsblib.models import INPUT_SHAPES
from tsblib.provenance import machine_info
from tsblib.runtime import autocast, use_channels_last
from tsblib.variation import mapped_weight_names, training_noise

RESULTS = Path(__file__).with_name("RESULTS.md")

CPU_FAST = RuntimeConfig(device="cpu", bf16=True, channels_last=True, cpu_bf16=True)
"""The runtime of the CPU fast path (bf16 autocast + channels-last where the CPU has bf16 units,
else fp32 with one warning), as the embedded and cifar-cpu profiles set it."""


def measured_peak_flops(device: torch.device, size: int = 4096, repeats: int = 10) -> float:
    """FLOP/s of a large matmul: fp32 on the CPU, bf16 on a GPU (the script's own peak)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if device.type == "cpu":
        repeats = 3
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    seconds = timed(lambda: a @ b, device, repeats=repeats)
    return 2 * size ** 3 / seconds


def measured_conv_peak_flops(device: torch.device) -> float | None:
    """FLOP/s of a large fp32 1x1 convolution on the CPU (a matmul run by oneDNN), or None on a GPU.

    A second reference next to `measured_peak_flops`: on AMD CPUs torch's matmul goes through MKL,
    whose AVX2 path reaches about half of what oneDNN's AVX-512 kernels do, so convolution layers
    can show above 100 % of the matmul peak.
    """
    if device.type != "cpu":
        return None
    x = torch.randn(64, 1024, 16, 16).contiguous(memory_format=torch.channels_last)
    w = torch.randn(1024, 1024, 1, 1).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        seconds = timed(lambda: torch.nn.functional.conv2d(x, w), device, repeats=3)
    return 2 * 64 * 16 * 16 * 1024 * 1024 / seconds


def peak_lines(device: torch.device) -> tuple[float, list[str]]:
    """The matmul peak (the reference of every fraction printed) and the lines that report it."""
    peak = measured_peak_flops(device)
    lines = [f"- measured peak ({'bf16' if device.type == 'cuda' else 'fp32'} matmul): {peak / 1e9:.1f} GFLOP/s"]
    conv = measured_conv_peak_flops(device)
    if conv is not None:
        lines.append(f"- for comparison, fp32 1x1 convolution (oneDNN): {conv / 1e9:.1f} GFLOP/s "
                     f"= {conv / peak:.0%} of the matmul peak")
    return peak, lines


def sync(device: torch.device) -> None:
    """Wait for queued GPU work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: torch.device, repeats: int = 3, warmup: int = 1) -> float:
    """Median seconds of `fn` over `repeats` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


class NITStep:
    """Noise-injection training steps (`nit_objective` at sigma 0.3: forward with a fresh weight
    error, backward, `optimizer` step) of `model` (model `name`'s input shape) on random data,
    on `runtime`'s path (channels-last and autocast as it says). With `compiled`, the forward
    and its backward are compiled by `torch.compile`; the noise is drawn outside it, as tsblib
    draws it."""

    def __init__(self, model: torch.nn.Module, name: str, runtime: RuntimeConfig,
                 device: torch.device, batch: int, device_model: DeviceConfig,
                 optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
                 compiled: bool = False) -> None:
        self.runtime, self.device = runtime, device
        self.batch, self.device_model = batch, device_model
        cl = use_channels_last(runtime, device)
        model = model.to(device).train()
        self.model = model.to(memory_format=torch.channels_last) if cl else model
        self.names = mapped_weight_names(self.model)
        self.objective = nit_objective(self.names, 0.3, device_model)
        self.params = dict(self.model.named_parameters())
        self.opt = optimizer(list(self.params.values()))
        self.gen = torch.Generator(device=device).manual_seed(0)
        x = torch.randn(batch, *INPUT_SHAPES[name], device=device)
        self.x = x.contiguous(memory_format=torch.channels_last) if cl else x
        self.y = torch.randint(0, 10, (batch,), device=device)
        self.loss = self._compiled() if compiled else self._eager

    def _eager(self) -> torch.Tensor:
        with autocast(self.runtime, self.device):
            return self.objective(self.model, self.params, self.x, self.y, self.gen)

    def _compiled(self) -> Callable[[], torch.Tensor]:
        def forward(params: dict, noisy: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with autocast(self.runtime, self.device):
                return torch.nn.functional.cross_entropy(
                    functional_call(self.model, {**params, **noisy}, (x,)), y)

        compiled = torch.compile(forward)

        def loss() -> torch.Tensor:
            noisy = training_noise(self.params, self.names, 0.3, self.device_model, self.gen)
            return compiled(self.params, noisy, self.x, self.y)

        return loss

    def __call__(self, steps: int = 1) -> None:
        for _ in range(steps):
            loss = self.loss()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()

    def rate(self, steps: int) -> float:
        """Images/s over `steps` steps, timed once."""
        start = time.perf_counter()
        self(steps)
        sync(self.device)
        return self.batch * steps / (time.perf_counter() - start)


def nit_step_rate(model: torch.nn.Module, name: str, runtime: RuntimeConfig,
                  device: torch.device, batch: int, steps: int, device_model: DeviceConfig,
                  optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer]) -> float:
    """Images/s of `NITStep`s, `steps` per run; median of 3 runs."""
    step = NITStep(model, name, runtime, device, batch, device_model, optimizer)
    return batch * steps / timed(lambda: step(steps), device, repeats=3)


def machine_line(device: torch.device) -> str:
    """One line naming the machine, the versions and the date."""
    info = machine_info()
    hw = (info["gpu"] if device.type == "cuda" else
          f"{info['cpu']} ({info['cpu_isa']}), {info['cpu_threads']} threads")
    return f"{info['date_utc']} | {hw} | torch {info['torch']} | python {info['python']}"


def record(title: str, device: torch.device, lines: list[str]) -> None:
    """Print the benchmark's figures and prepend them to RESULTS.md."""
    block = [f"### {title}", f"_{machine_line(device)}_", "", *lines, ""]
    print("\n".join(block))
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nNewest first; every run keeps its machine, versions and date.\n\n"
    head, _, rest = old.partition("\n\n## Runs\n\n")
    if not rest and "## Runs" not in old:
        head, rest = old.rstrip("\n"), ""
    RESULTS.write_text(head + "\n\n## Runs\n\n" + "\n".join(block) + "\n" + rest)


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares (--device, --no-record)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", help="'auto' (CUDA when available), 'cpu' or 'cuda'")
    p.add_argument("--no-record", action="store_true", help="print only; do not add to RESULTS.md")
    return p


def finish(title: str, device: torch.device, lines: list[str], no_record: bool) -> None:
    """Print the figures, and record them in RESULTS.md unless `no_record`."""
    if no_record:
        print("\n".join(lines))
    else:
        record(title, device, lines)


def device_from_args(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
