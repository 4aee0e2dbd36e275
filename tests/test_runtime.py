"""tsblib.runtime: bf16 autocast and channels_last, on the CPU only when asked (cpu_bf16); malloc
keeping freed memory on the CPU (keep_freed_memory)."""
import torch

from tsblib.config import RuntimeConfig
from tsblib.runtime import autocast, use_channels_last

CPU = torch.device("cpu")


def _matmul_dtype(cfg: RuntimeConfig) -> torch.dtype:
    a = torch.ones(4, 4)
    with autocast(cfg, CPU):
        return (a @ a).dtype


def test_cpu_stays_fp32_by_default():
    cfg = RuntimeConfig(device="cpu", bf16=True, channels_last=True)
    assert _matmul_dtype(cfg) == torch.float32
    assert not use_channels_last(cfg, CPU)


def test_cpu_bf16_turns_on_autocast_and_channels_last_for_training(monkeypatch):
    from tsblib import runtime

    monkeypatch.setattr(runtime, "cpu_bf16_supported", lambda: True)  # any CPU: see below
    cfg = RuntimeConfig(device="cpu", bf16=True, channels_last=True, cpu_bf16=True)
    assert _matmul_dtype(cfg) == torch.bfloat16
    assert use_channels_last(cfg, CPU)
    # each follows its own switch
    assert _matmul_dtype(RuntimeConfig(device="cpu", bf16=False, cpu_bf16=True)) == torch.float32
    assert not use_channels_last(RuntimeConfig(device="cpu", channels_last=False, cpu_bf16=True), CPU)


def test_without_bf16_units_cpu_bf16_warns_once_and_runs_fp32(monkeypatch, caplog):
    """Where the CPU has no bf16 matrix units the fast path falls back to fp32 (and NCHW) by
    itself, saying so once; nothing here depends on this machine's CPU."""
    from tsblib import runtime

    monkeypatch.setattr(runtime, "cpu_bf16_supported", lambda: False)
    monkeypatch.setattr(runtime, "_warned", set())
    cfg = RuntimeConfig(device="cpu", bf16=True, channels_last=True, cpu_bf16=True)
    with caplog.at_level("WARNING", logger="tsblib.runtime"):
        assert _matmul_dtype(cfg) == torch.float32
        assert not use_channels_last(cfg, CPU)
        assert _matmul_dtype(cfg) == torch.float32
    warnings = [r for r in caplog.records if "no bf16 matrix units" in r.getMessage()]
    assert len(warnings) == 1
    assert runtime.fast_path(cfg, CPU) == "fp32 + NCHW"
    monkeypatch.setattr(runtime, "cpu_bf16_supported", lambda: True)
    assert _matmul_dtype(cfg) == torch.bfloat16
    assert runtime.fast_path(cfg, CPU) == "bf16 autocast + channels_last"


def test_cpu_isa_names_only_known_flags():
    from tsblib.runtime import CPU_ISA_FLAGS, cpu_isa

    assert set(cpu_isa()) <= set(CPU_ISA_FLAGS)


def test_configure_keeps_freed_memory_on_the_cpu(monkeypatch):
    from tsblib import runtime

    calls = []
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: calls.append(1) or True)
    runtime.configure(RuntimeConfig(device="cpu", deterministic=False))
    assert calls == [1]


def test_keep_freed_memory_applies_glibc_settings_and_does_nothing_elsewhere(monkeypatch):
    import ctypes
    import os
    import sys

    from tsblib import runtime

    applied = []

    class _Libc:
        def mallopt(self, param, value):
            applied.append((param, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: _Libc())
    monkeypatch.setattr(sys, "platform", "linux")
    for name in [k for k in os.environ if k == "GLIBC_TUNABLES" or k.startswith("MALLOC_")]:
        monkeypatch.delenv(name)
    assert runtime.keep_freed_memory.__wrapped__() is True
    assert dict(applied) == runtime.MALLOC_SETTINGS
    assert runtime.MALLOC_SETTINGS[-3] <= 32 * 2 ** 20  # glibc refuses a larger mmap threshold
    applied.clear()
    for tuned in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX", "GLIBC_TUNABLES"):  # the user's own
        monkeypatch.setenv(tuned, "131072")
        assert runtime.keep_freed_memory.__wrapped__() is False and not applied
        monkeypatch.delenv(tuned)
    monkeypatch.setattr(sys, "platform", "darwin")
    applied.clear()
    assert runtime.keep_freed_memory.__wrapped__() is False and not applied

    def no_libc(name):
        raise OSError(name)

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", no_libc)  # e.g. musl: no libc.so.6
    assert runtime.keep_freed_memory.__wrapped__() is False
