"""When a rerun retrains instead of reusing saved runs (tsblib/pipeline/force.py)."""
import os
from pathlib import Path

import pytest

from tsblib.pipeline import force


@pytest.mark.parametrize("argv,forced", [
    (["/repo/.venv/bin/dvc", "repro", "--force"], True),
    (["python", "-m", "dvc", "repro", "-f", "train@vgg8"], True),
    (["dvc", "repro", "-sf", "train@vgg8"], True),
    (["dvc", "repro"], False),
    (["dvc", "repro", "train@vgg8"], False),
    (["dvc", "exp", "run", "-S", "x=1"], False),
    (["python", "-m", "tsblib", "train", "--force"], False),  # not DVC
    (["bash", "scripts/reproduce.sh"], False),
])
def test_force_is_read_from_a_dvc_repro_command_line(argv, forced):
    assert force.forces_rerun(argv) is forced


def test_the_environment_variable_asks_for_it_too(monkeypatch):
    monkeypatch.setattr(force, "_ancestors", lambda limit=8: [["dvc", "repro"]])
    monkeypatch.delenv(force.RETRAIN_ENV, raising=False)
    assert not force.retrain_requested()
    monkeypatch.setenv(force.RETRAIN_ENV, "1")
    assert force.retrain_requested()
    monkeypatch.setenv(force.RETRAIN_ENV, "0")
    assert not force.retrain_requested()
    monkeypatch.setattr(force, "_ancestors", lambda limit=8: [["sh", "-c", "x"],
                                                              ["dvc", "repro", "--force"]])
    assert force.retrain_requested()


@pytest.mark.skipif(not Path("/proc/self/stat").exists() or os.getppid() <= 1,
                    reason="no /proc, or no parent process to read")
def test_this_process_ancestors_are_read():
    chain = force._ancestors()
    assert chain and all(isinstance(a, list) and a for a in chain)
    assert len(chain) <= 8
