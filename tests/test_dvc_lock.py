"""The committed dvc.lock matches the committed code and parameters: on a fresh clone, `dvc
status` finds nothing modified; only the generated files a clone does not carry (DVC-cached
checkpoints and prepared data, the validate marker) are absent, and `dvc repro` regenerates
them."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

ABSENT = {"deleted", "not in cache"}
"""What `dvc status` says of a generated file that a fresh clone does not carry."""


def _lock_outs(clone) -> set[str]:
    import yaml

    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    return {o["path"] for stage in lock["stages"].values() for o in stage.get("outs", [])}


@pytest.mark.skipif(importlib.util.find_spec("dvc") is None or shutil.which("git") is None
                    or not (ROOT / ".git").exists(), reason="needs dvc and a git checkout")
def test_a_fresh_clone_has_nothing_modified(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    done = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=clone,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    generated = _lock_outs(clone)
    problems = []
    for stage, changes in json.loads(done.stdout or "{}").items():
        for change in changes:
            if not isinstance(change, dict):  # e.g. "changed command", "always changed"
                problems.append(f"{stage}: {change}")
                continue
            for kind, paths in change.items():
                for path, what in (paths.items() if isinstance(paths, dict) else [(paths, "")]):
                    if what in ABSENT and path in generated:
                        continue  # a generated file the clone does not carry
                    problems.append(f"{stage}: {kind} {path} {what}")
    assert not problems, ("the committed dvc.lock does not match the committed tree; refresh it "
                          "(`dvc commit` after proving no number moved, or `dvc repro`):\n"
                          + "\n".join(problems[:20]))
