"""`python -m tsblib plan` predicts what `dvc repro` does: checked against DVC itself on a small
two-stage pipeline (every verdict), and on a fresh clone of this repository, where
`dvc repro --dry` cannot plan (treeverse/dvc#9818)."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from tsblib.pipeline.plan import FOLLOWS, RESTORE, RUN, UP_TO_DATE, classify, plan, render

pytestmark = pytest.mark.filterwarnings(  # DVC 3.67's own use of pygtrie, not ours
    "ignore:_NoneStep.value will soon raise AttributeError:DeprecationWarning")

needs_dvc = pytest.mark.skipif(importlib.util.find_spec("dvc") is None
                               or shutil.which("git") is None, reason="needs dvc and git")

PIPELINE = """\
stages:
  one:
    cmd: python -c "import yaml; print(yaml.safe_load(open('params.yaml'))['a'])" > mid.txt
    params: [a]
    outs: [mid.txt]
  two:
    cmd: python -c "import yaml; print(open('mid.txt').read().strip(), yaml.safe_load(open('params.yaml'))['b'])" > out.txt
    deps: [mid.txt]
    params: [b]
    outs:
    - out.txt:
        cache: false
"""


def _dvc(repo: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _verdicts(repo: Path) -> dict[str, str]:
    return {p.stage: p.verdict for p in plan(repo)}


def _what_repro_did(repo: Path) -> dict[str, str]:
    """`dvc repro`'s own account of each stage, as a plan verdict."""
    said = _dvc(repo, "repro")
    did = {}
    for stage, verdict in [(m, RUN) for m in re.findall(r"Running stage '([^']+)'", said)] + \
            [(m, RESTORE) for m in re.findall(r"Stage '([^']+)' is cached", said)] + \
            [(m, UP_TO_DATE) for m in re.findall(r"Stage '([^']+)' didn't change", said)]:
        did[stage] = verdict
    return did


@pytest.fixture()
def pipeline(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    _dvc(tmp_path, "init", "-q")
    (tmp_path / "params.yaml").write_text("a: 1\nb: 2\n")
    (tmp_path / "dvc.yaml").write_text(PIPELINE)
    return tmp_path


@needs_dvc
def test_every_verdict_is_what_dvc_repro_then_does(pipeline):
    # nothing has run: both outputs are missing and not in the cache
    fresh = _verdicts(pipeline)
    assert fresh == {"one": RUN, "two": RUN}
    assert _what_repro_did(pipeline) == fresh
    assert _verdicts(pipeline) == {"one": UP_TO_DATE, "two": UP_TO_DATE}

    # a parameter read by the second stage only
    (pipeline / "params.yaml").write_text("a: 1\nb: 3\n")
    planned = _verdicts(pipeline)
    assert planned == {"one": UP_TO_DATE, "two": RUN}
    assert _what_repro_did(pipeline) == {"one": UP_TO_DATE, "two": RUN}

    # a parameter of the first: the second follows, and reruns since mid.txt changes
    (pipeline / "params.yaml").write_text("a: 5\nb: 3\n")
    assert _verdicts(pipeline) == {"one": RUN, "two": FOLLOWS}
    assert _what_repro_did(pipeline) == {"one": RUN, "two": RUN}

    # an output missing from the workspace but in DVC's cache is restored, not rerun
    (pipeline / "mid.txt").unlink()
    assert _verdicts(pipeline) == {"one": RESTORE, "two": UP_TO_DATE}
    assert _what_repro_did(pipeline) == {"one": RESTORE, "two": UP_TO_DATE}

    # an output edited by hand
    (pipeline / "out.txt").write_text("edited\n")
    reasons = {p.stage: p.reasons for p in plan(pipeline)}
    assert reasons["two"] == ("output out.txt modified",)
    assert _what_repro_did(pipeline)["two"] == RUN


def test_an_input_changed_by_hand_under_an_up_to_date_stage_is_the_stage_s_own_change():
    status = {"two": [{"changed deps": {"mid.txt": "modified"}}]}
    plans = classify(["one", "two"], {"two": {"one"}}, status, {"mid.txt": "one", "out.txt": "two"},
                     {"mid.txt"})
    assert [p.verdict for p in plans] == [UP_TO_DATE, RUN]
    assert "up to date" in plans[1].reasons[0]
    assert "1 run, 1 up to date" in render(plans)


@needs_dvc
@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_a_fresh_clone_is_planned_where_dvc_repro_dry_stops(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    plans = plan(clone)
    verdicts = {p.stage: p.verdict for p in plans}
    import yaml
    lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    assert set(verdicts) <= set(lock), "every stage of the selected profile is locked"
    assert {"validate", "summarize"} < set(verdicts)
    # the clone carries no DVC-cached output, so the stages that write one run; the rest of the
    # pipeline follows them or is up to date, and nothing is reported changed by hand
    cached_writers = {name for name in verdicts
                      if any(not str(o["path"]).startswith("results/") and
                             not str(o["path"]).startswith("data/validated")
                             for o in lock[name].get("outs", []))}
    assert {s for s, v in verdicts.items() if v == RUN} == cached_writers
    for p in plans:
        if p.verdict == RUN:
            assert all("missing (not in DVC's cache)" in r for r in p.reasons), p
    assert verdicts["validate"] == UP_TO_DATE


@needs_dvc
def test_a_folder_without_a_pipeline_is_named_with_the_fix(tmp_path):
    from tsblib.config import ConfigError

    with pytest.raises(ConfigError, match="repository root"):
        plan(tmp_path)
