"""benchmarks/: every script still imports against the library (the benchmarks themselves are
run by hand and print figures; no test times anything)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name != "common.py")


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_script_is_found():
    assert len(SCRIPTS) >= 8, [p.name for p in SCRIPTS]


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_benchmark_script_imports_and_has_a_main(path, monkeypatch):
    # the scripts put benchmarks/ on sys.path for their `common` helpers; undo it afterwards
    monkeypatch.setattr(sys, "path", list(sys.path))
    module = _load(path)
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
    assert module.__doc__ and "python benchmarks/" in module.__doc__, \
        f"{path.name}: its docstring should say how to run it"
