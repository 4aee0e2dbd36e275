"""tsblib.pipeline: the stage registry, dvc.yaml's parameter declarations against it, the scoped
profile that makes an undeclared read fail, and DVC rerunning exactly the stages that read a
changed parameter."""
from __future__ import annotations

import copy
import json
import re
import shutil
import importlib.util
import subprocess
import sys

import pytest
import yaml

from tsblib.profiles import load_profile
from tsblib.paths import ProfilePaths
from tsblib.pipeline import STAGES, get_stage, run_stage, stage_names
from tsblib.pipeline.scope import UndeclaredParameterError, scoped

from conftest import ROOT

PREFIX = "profiles.${profile}"
DVC = [sys.executable, "-m", "dvc"]


def _dvc_stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _spec(stage: str) -> dict:
    """A stage's definition in dvc.yaml (for a `foreach` stage: its `do` body)."""
    entry = _dvc_stages()[stage]
    return entry["do"] if "foreach" in entry else entry


def _declared(stage: str) -> set[str]:
    """A stage's params in dvc.yaml, relative to profiles.<profile> ('*' for the whole;
    'models' for a per-model stage's own `models.${item}`)."""
    out = set()
    for key in _spec(stage).get("params", []):
        if key == PREFIX:
            out.add("*")
        elif key == PREFIX + ".models.${item}":
            out.add("models")
        elif key.startswith(PREFIX + "."):
            out.add(key[len(PREFIX) + 1:])
        else:
            out.add(key)
    return out


@pytest.mark.parametrize("stage", stage_names())
def test_dvc_yaml_declares_exactly_the_registry_params(stage):
    assert _declared(stage) == set(get_stage(stage).params)


def test_dvc_yaml_has_every_registry_stage_and_validate_first():
    names = list(_dvc_stages())
    assert names[0] == "validate" and _declared("validate") == {"profile", "*"}
    assert [n for n in names if n in stage_names()] == list(stage_names())
    prepare_deps = _spec("prepare")["deps"]
    assert "data/validated/${profile}.json" in prepare_deps


@pytest.mark.parametrize("stage", stage_names())
def test_every_per_model_stage_runs_once_per_model_on_its_own_outputs(stage):
    """foreach over the top-level `models:` list; the command names its model; every output is
    that model's own, so two models can run apart and a rerun of one leaves the other alone."""
    entry = _dvc_stages()[stage]
    if not get_stage(stage).per_model:
        assert "foreach" not in entry and "results/${profile}/models" in entry["deps"]
        return
    assert entry["foreach"] == "${models}"
    assert entry["do"]["cmd"].endswith(f"tsblib {stage} --models ${{item}}")
    for out in entry["do"]["outs"]:
        path = next(iter(out)) if isinstance(out, dict) else out
        assert "${item}" in path, path
    assert PREFIX + ".models" not in entry["do"]["params"]  # only its own model's entry


def test_committed_models_list_is_the_selected_profiles():
    from tsblib.pipeline import check_stage_models

    check_stage_models(ROOT / "params.yaml", load_profile(ROOT / "params.yaml"))


def test_figure_stages_depend_on_every_result_file_the_figures_read():
    from tsblib.figures.loader import RESULT_FILES

    deps = set(_dvc_stages()["figure"]["do"]["deps"])
    assert {f"results/${{profile}}/{name}" for name in RESULT_FILES.values()} <= deps


def test_unknown_stage_is_named():
    with pytest.raises(ValueError, match="stage = 'trian' is unknown"):
        get_stage("trian")


# ----------------------------------------------------------------------------- scope

def test_scoped_profile_exposes_declared_groups_and_raises_on_the_rest():
    profile = load_profile(ROOT / "params.yaml", "embedded")
    s = scoped(profile, ("train", "methods.methods", "models", "device"), "toy")
    exp = s.experiments[0]
    assert exp.train == profile.experiments[0].train
    assert exp.methods.methods == profile.experiments[0].methods.methods
    assert s.device == profile.device and exp.model == "lenet3"
    for read in (lambda: exp.tsb.width, lambda: exp.methods.of("swim"), lambda: s.runtime.threads,
                 lambda: exp.evaluation.sigmas, lambda: hasattr(exp.methods, "params")):
        with pytest.raises(UndeclaredParameterError, match="stage 'toy' reads parameter"):
            read()
    assert scoped(profile, ("*",), "all") is profile
    with pytest.raises(ValueError, match="unknown parameter groups"):
        scoped(profile, ("trian",), "toy")


def test_a_stage_that_reads_an_undeclared_parameter_fails(tmp_path, monkeypatch):
    import tsblib.pipeline as pipeline

    profile = load_profile(ROOT / "params.yaml", "embedded")
    bad = pipeline.Stage("peek", "tsblib.stages.prepare:prepare", "reads tsb", ("data", "models"))
    monkeypatch.setattr(pipeline, "STAGES", pipeline.STAGES + (bad,))
    monkeypatch.setattr("tsblib.stages.prepare.prepare",
                        lambda p, paths, progress: p.experiments[0].tsb.width)
    with pytest.raises(UndeclaredParameterError, match="'peek' reads parameter tsb.width"):
        run_stage("peek", profile, ProfilePaths("embedded", tmp_path), progress=False)


# ----------------------------------------------------------------------------- DVC reruns

def _lock_for(params: dict, stages: dict) -> dict:
    """A dvc.lock holding, for every stage, only its declared parameters' current values (so the
    comparison is about declarations, not about whether the committed lock is up to date)."""
    profile = params["profile"]

    def value(key: str):
        node = params
        for part in key.split("."):
            node = node[part]
        return node

    lock = {"schema": "2.0", "stages": {}}
    for name, stage in stages.items():
        if name == "figure":  # declares no parameter
            continue
        items = params["models"] if "foreach" in stage else [None]
        body = stage["do"] if "foreach" in stage else stage
        for item in items:
            sub = lambda text: text.replace("${profile}", profile).replace("${item}", str(item))  # noqa: E731
            keys = [sub(k) for k in body.get("params", [])]
            lock["stages"][name if item is None else f"{name}@{item}"] = {
                "cmd": sub(body["cmd"]), "params": {"params.yaml": {k: value(k) for k in keys}}}
    return lock


def _params_changed(repo) -> set[str]:
    out = subprocess.run(DVC + ["status", "--json"], cwd=repo, capture_output=True, text=True,
                         check=True).stdout
    changed = set()
    for stage, entries in json.loads(out or "{}").items():
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("changed deps", {}).get("params.yaml"), dict):
                changed.add(stage)
    return changed


EDITS = {
    "data": ("data", "val_fraction"), "train": ("train", "epochs"),
    "selection": ("selection", "epochs"), "methods": ("methods", "tsb_early_fraction"),
    "methods.methods": ("methods", "methods"), "tsb": ("tsb", "epochs"),
    "evaluation": ("evaluation", "chips"), "evaluation.sigmas": ("evaluation", "sigmas"),
    "ablation": ("ablation", "sigma_reads"), "device": ("device", "weight_bits"),
    "write_verify": ("write_verify", "residual_ratio"), "mapping": ("mapping", "pulse_time_s"),
    "runtime": ("runtime", "threads"), "models": ("models", "lenet3"),
    "tsb.width": ("tsb", "width"), "ablation.widths": ("ablation", "widths"),
}
"""One edit per parameter group (section, key); 'models' is a per-model override."""


def _expected(key: str, models: list[str]) -> set[str]:
    def covers(group: str) -> bool:
        return group == "*" or key == group or key.startswith(group + ".")

    return {"validate"} | {name for s in STAGES if any(covers(g) for g in s.params)
                           for name in ([f"{s.name}@{m}" for m in models] if s.per_model
                                        else [s.name])}


@pytest.mark.skipif(importlib.util.find_spec("dvc") is None, reason="dvc is not installed")
def test_dvc_reruns_exactly_the_stages_that_read_a_changed_parameter(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    stages = _dvc_stages()
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    subprocess.run(DVC + ["init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(_lock_for(params, stages)))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert _params_changed(tmp_path) == set()
    profile = params["profile"]
    for group, (section, key) in EDITS.items():
        edited = copy.deepcopy(params)
        node = edited["profiles"][profile][section]
        node[key] = {"num_classes": 11} if group == "models" else ["changed", node[key]]
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(edited))
        key_path = group if group in ("models", "methods.methods", "evaluation.sigmas") \
            else f"{section}.{key}"
        assert _params_changed(tmp_path) == _expected(key_path, params["models"]), group


@pytest.mark.skipif(importlib.util.find_spec("dvc") is None, reason="dvc is not installed")
def test_changing_one_models_parameters_reruns_only_that_model(tmp_path):
    """Two models (the cifar-cpu profile): an override of VGG-8 reruns VGG-8's stages and the
    summary, never ResNet-18's."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.update(profile="cifar-cpu", models=["vgg8", "resnet18"])
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    subprocess.run(DVC + ["init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(_lock_for(params, _dvc_stages())))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert _params_changed(tmp_path) == set()
    params["profiles"]["cifar-cpu"]["models"]["vgg8"]["width"] = 0.5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert _params_changed(tmp_path) == {"validate", "summarize"} | {
        f"{s.name}@vgg8" for s in STAGES if s.per_model}


def test_use_selects_a_profile_and_its_models_keeping_the_rest_of_the_file(tmp_path):
    from tsblib.cli import main

    text = (ROOT / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert main(["use", "cifar-cpu", "--params", str(path)]) == 0
    after = path.read_text()
    assert "\nprofile: cifar-cpu\n" in after and "\nmodels:\n- vgg8\n- resnet18\n" in after
    keep = lambda t: [ln for ln in t.splitlines()  # noqa: E731
                      if not ln.startswith(("profile:", "models:", "- "))]
    assert keep(after) == keep(text)
    profile = load_profile(path)
    assert profile.name == "cifar-cpu"
    from tsblib.pipeline import check_stage_models

    check_stage_models(path, profile)
    # its validate marker, so that `dvc repro --dry` can plan a profile that has never run
    marker = tmp_path / "data" / "validated" / "cifar-cpu.json"
    assert json.loads(marker.read_text()) == {"profile": "cifar-cpu", "models": ["vgg8", "resnet18"]}
    assert main(["use", "nowhere", "--params", str(path)]) == 2
    assert path.read_text() == after


def test_use_rewrites_a_one_line_models_list_as_a_block_list(tmp_path):
    """A parameter file written before the block layout (`models: [lenet3]`) gets the block list
    that `dvc exp run -S` keeps."""
    from tsblib.pipeline import use_profile

    text = re.sub(r"(?m)^models:\n(- .*\n)+", "models: [lenet3]\n",
                  (ROOT / "params.yaml").read_text())
    path = tmp_path / "params.yaml"
    path.write_text(text)
    assert use_profile(path, "cifar-cpu") == ["vgg8", "resnet18"]
    assert "\nmodels:\n- vgg8\n- resnet18\nprofile: cifar-cpu\n" in path.read_text()


def test_validate_names_a_models_list_that_disagrees_with_the_profile(tmp_path, capsys):
    from tsblib.cli import main

    path = tmp_path / "params.yaml"
    text = (ROOT / "params.yaml").read_text()
    text = re.sub(r"(?m)^profile:.*$", "profile: embedded", text)
    path.write_text(re.sub(r"(?m)^models:.*\n(- .*\n)*", "models: [vgg8]\n", text))
    assert main(["validate", "--params", str(path)]) == 2
    err = capsys.readouterr().err
    assert "must name the models of profile 'embedded'" in err and "the list [lenet3]" in err
    assert "python -m tsblib use embedded" in err


def test_every_results_file_survives_an_interrupted_rerun():
    """`persist: true` on every committed results file: DVC does not delete it before the stage
    reruns (the stage replaces it atomically), so Ctrl-C never leaves a committed result missing."""
    missing = []
    for name, entry in _dvc_stages().items():
        spec = entry["do"] if "foreach" in entry else entry
        for out in spec.get("outs", []):
            path, options = next(iter(out.items())) if isinstance(out, dict) else (out, {})
            if path.startswith(("results/", "notebooks/")) and not options.get("persist"):
                missing.append(f"{name}: {path}")
    assert not missing, missing
