"""Provenance of a run: machine, versions and date, stored next to every result it produced."""
from __future__ import annotations

import datetime
import hashlib
import platform
import sys
from pathlib import Path

import torch

from tsblib.runtime import cpu_isa


def machine_info() -> dict[str, str | int]:
    """Hardware and software the current process runs on."""
    info: dict[str, str | int] = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_isa": " ".join(cpu_isa()) or "none",
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
    }
    return info


def kernel_key(info: dict) -> str:
    """What decides the floating-point kernels, from a `machine_info` dict: CPU model, its ISA
    flags and torch (the key of a machine's golden fingerprints and reproduction records)."""
    return f"{info['cpu']} | {info['cpu_isa']} | torch {info['torch']}"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def code_fingerprint() -> str:
    """SHA-256 of every tsblib source file (relative path and content): two runs with the same
    fingerprint ran the same library code."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
