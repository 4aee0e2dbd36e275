"""Shared fixtures: tiny real data (the embedded digits, limited) and small configs."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tsblib.config import DataConfig
from tsblib.data import PreparedData, load_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_digits() -> PreparedData:
    """400 training images (360 train + 40 validation) and 200 test images of the embedded digits."""
    return load_dataset(DataConfig(dataset="mnist-embedded", train_limit=400, test_limit=200))


@pytest.fixture
def library_copy(tmp_path: Path) -> Path:
    """`tmp_path` holding a copy of the library (`tsblib/`, without bytecode), for tests that
    add or change a module and look at what the code then does or depends on."""
    import shutil

    shutil.copytree(ROOT / "tsblib", tmp_path / "tsblib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@pytest.fixture(autouse=True)
def _seed_global_rng() -> None:
    # The library never uses the global RNG for results; tests seed it so that layer
    # initialisation inside tests is repeatable.
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny CPU forwards run far faster on one thread (no spin contention); restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
