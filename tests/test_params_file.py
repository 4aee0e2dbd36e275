"""params.yaml as DVC rewrites it: `dvc exp run -S key=value` applies the value through DVC's own
override code (`dvc.utils.hydra.apply_overrides`: Hydra's parser, then DVC's YAML writer), which
must leave the file byte for byte as it was (comments, layout, length) apart from the value set,
and then rerun only the stages that declare that parameter."""
import difflib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.skipif(importlib.util.find_spec("dvc") is None, reason="needs dvc")


def _set(path, *overrides: str) -> str:
    """`path` after `dvc exp run -S <override> ...` has set the values (DVC's own code)."""
    from dvc.utils.hydra import apply_overrides

    apply_overrides(path, list(overrides))
    return path.read_text()


def _diff(a: str, b: str) -> str:
    return "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True), n=0))[:2000]


def test_dvc_exp_run_set_param_keeps_params_yaml_byte_for_byte(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(text)
    again = _set(path, "profile=embedded")  # the value it already has
    assert again == text, ("`dvc exp run -S` would reformat params.yaml (keep lists in block "
                           "style and no comment right after a list):\n" + _diff(text, again))


def test_dvc_exp_run_set_param_changes_one_line_per_value(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(text)
    again = _set(path, "profiles.embedded.evaluation.chips=20",
                 "profiles.cifar-cpu.evaluation.sigmas=[0.0,0.15,0.2,0.3,0.4]")
    changed = [(a, b) for a, b in zip(text.splitlines(), again.splitlines()) if a != b]
    assert len(text.splitlines()) == len(again.splitlines()) and len(changed) == 2, \
        _diff(text, again)
    data = yaml.safe_load(again)["profiles"]
    assert data["embedded"]["evaluation"]["chips"] == 20
    assert data["cifar-cpu"]["evaluation"]["sigmas"][1] == 0.15


def test_no_yaml_anchor_shares_a_node_between_parameters():
    """`-S` on a key reached through a YAML alias or merge (`*x`, `<<: *x`) writes into the shared
    node, silently changing every profile that uses it; so params.yaml shares none."""
    events = list(yaml.parse((ROOT / "params.yaml").read_text()))
    anchored = [e for e in events if getattr(e, "anchor", None)]
    assert not anchored, [e.anchor for e in anchored]
    assert "<<:" not in (ROOT / "params.yaml").read_text()


def test_setting_a_value_of_one_profile_changes_no_other(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    before = yaml.safe_load(path.read_text())["profiles"]
    after = yaml.safe_load(_set(path, "profiles.cifar-cpu-baselines.train.epochs=6",
                                "profiles.paper.models.vgg8.train.epochs=2"))["profiles"]
    assert after["cifar-cpu-baselines"]["train"]["epochs"] == 6
    assert after["paper"]["models"]["vgg8"]["train"]["epochs"] == 2
    for name in before:
        if name not in ("cifar-cpu-baselines", "paper"):
            assert after[name] == before[name], name
    assert after["paper"]["models"]["resnet18"] == before["paper"]["models"]["resnet18"]


def test_copied_profile_settings_agree_with_their_source():
    """What params.yaml copies instead of sharing: cifar-cpu-baselines is cifar-cpu with its own
    methods and secondary methods; the paper profile's ResNet-18 has VGG-8's settings."""
    profiles = yaml.safe_load((ROOT / "params.yaml").read_text())["profiles"]
    source, copy = profiles["cifar-cpu"], profiles["cifar-cpu-baselines"]
    assert set(source) == set(copy)
    for key in source:
        if key == "methods":
            assert {k: v for k, v in copy[key].items() if k != "methods"} == \
                {**{k: v for k, v in source[key].items() if k != "methods"},
                 **{k: v for k, v in copy[key].items() if k not in source[key]}}
            assert set(source[key]["methods"]) < set(copy[key]["methods"])
        elif key == "evaluation":
            strip = lambda e: {k: v for k, v in e.items() if k != "secondary_methods"}  # noqa: E731
            assert strip(copy[key]) == strip(source[key])
        else:
            assert copy[key] == source[key], key
    models = profiles["paper"]["models"]
    assert models["resnet18"] == models["vgg8"]


def test_use_leaves_a_file_that_dvc_keeps_as_it_is(tmp_path):
    from tsblib.pipeline import use_profile

    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text())
    use_profile(path, "cifar-cpu")
    text = path.read_text()
    assert _set(path, "profile=cifar-cpu") == text


def test_dvc_exp_run_set_param_reruns_only_the_stages_that_declare_it(tmp_path):
    """DVC's lock records each stage's declared parameters; after `-S` sets
    evaluation.chips, `dvc status` finds exactly the stages declaring it changed (the same
    stages as the hand edit in tests/pipeline/test_pipeline.py)."""
    sys.path.insert(0, str(Path(__file__).parent / "pipeline"))  # also when run on its own
    from test_pipeline import DVC, _dvc_stages, _expected, _lock_for, _params_changed

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    subprocess.run(DVC + ["init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(_lock_for(params, _dvc_stages())))
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    assert _params_changed(tmp_path) == set()
    _set(tmp_path / "params.yaml", f"profiles.{params['profile']}.evaluation.chips=20")
    assert _params_changed(tmp_path) == _expected("evaluation.chips", params["models"])
