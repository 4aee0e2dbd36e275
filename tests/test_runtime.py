"""tsblib.runtime: bf16 autocast and channels_last, on the CPU only when asked (cpu_bf16)."""
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


def test_cpu_bf16_turns_on_autocast_and_channels_last_for_training():
    cfg = RuntimeConfig(device="cpu", bf16=True, channels_last=True, cpu_bf16=True)
    assert _matmul_dtype(cfg) == torch.bfloat16
    assert use_channels_last(cfg, CPU)
    # each follows its own switch
    assert _matmul_dtype(RuntimeConfig(device="cpu", bf16=False, cpu_bf16=True)) == torch.float32
    assert not use_channels_last(RuntimeConfig(device="cpu", channels_last=False, cpu_bf16=True), CPU)
