"""environment.yml and pyproject.toml declare the same dependencies."""
import re
import tomllib

import yaml

from conftest import ROOT


def _norm(spec: str) -> str:
    return re.sub(r"\s+", "", spec).lower()


OPTIONAL_ONLY = {"browser"}
"""Extras that environment.yml leaves out: the browser test's (it needs a Chromium as well)."""


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_norm(d) for d in project["dependencies"]}
    declared |= {_norm(d) for name, extra in project["optional-dependencies"].items()
                 if name not in OPTIONAL_ONLY for d in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = {_norm(d) for d in pip if not d.startswith("-e")}
    assert listed == declared
    assert "-e ." in pip
    assert any(str(d).startswith("python=3.11") for d in env["dependencies"] if isinstance(d, str))


def test_declared_ranges_admit_the_pinned_torch_builds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {re.split(r"[<>=!~]", d)[0]: d for d in project["dependencies"]}
    assert deps["torch"] == "torch>=2.3" and deps["torchvision"] == "torchvision>=0.18"
