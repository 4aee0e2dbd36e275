import pytest
import yaml

from tsblib.config import (ConfigError, DeviceConfig, EvaluationConfig, SigmaConvention,
                           load_profile, profile_from_dict, to_dict)
from conftest import ROOT


def test_committed_params_yaml_is_valid():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name in raw["profiles"]:
        profile = load_profile(ROOT / "params.yaml", name)
        assert profile.experiments


def test_embedded_profile_is_the_default():
    profile = load_profile(ROOT / "params.yaml")
    assert profile.name == "embedded"
    exp = profile.experiment("lenet3")
    assert exp.data.dataset == "mnist-embedded"
    assert profile.device.convention is SigmaConvention.DEVICE_RANGE


def _raw(**over):
    raw = {"models": {"lenet3": {}}}
    raw.update(over)
    return raw


@pytest.mark.parametrize("raw,match", [
    (_raw(train={"sigma_train": -0.1}), r"train.sigma_train = -0.1 is not allowed"),
    (_raw(device={"device_bits": 3}), r"device.device_bits = 3 is not allowed.*divisor"),
    (_raw(tsb={"width": 0}), r"tsb.width = 0"),
    (_raw(evaluation={"sigmas": [0.0, -0.2]}), r"evaluation.sigmas = -0.2"),
    (_raw(evaluation={"operating_sigma": 0.33}), r"evaluation.operating_sigma = 0.33"),
    (_raw(train={"epoch": 3}), r"train.epoch is not a known parameter.*Did you mean 'epochs'"),
    (_raw(trian={}), r"trian is not a known section.*Did you mean 'train'"),
    (_raw(train={"epochs": "ten"}), r"train.epochs = 'ten' is not allowed: expected an integer"),
    (_raw(device={"convention": "range"}), r"device.convention = 'range'.*device_range"),
    ({"models": {"alexnet": {}}}, r"models = 'alexnet' is not allowed.*lenet3"),
    ({"models": {}}, r"models must map at least one model"),
    (_raw(methods={"methods": ["nit", "magic"]}), r"methods.methods = 'magic'"),
    (_raw(data={"dataset": "imagenet"}), r"data.dataset = 'imagenet'"),
])
def test_bad_values_name_the_key_the_value_and_what_is_allowed(raw, match):
    with pytest.raises(ConfigError, match=match):
        profile_from_dict("test", raw)


def test_per_model_overrides_merge_with_profile_defaults():
    profile = profile_from_dict("t", {"train": {"epochs": 7, "lr": 0.1},
                                      "models": {"lenet3": {"train": {"epochs": 3}},
                                                 "vgg8": {"tsb": {"width": 64}}}})
    assert profile.experiment("lenet3").train.epochs == 3
    assert profile.experiment("lenet3").train.lr == 0.1
    assert profile.experiment("vgg8").train.epochs == 7
    assert profile.experiment("vgg8").tsb.width == 64


def test_unknown_profile_lists_the_defined_ones(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"profile": "embedded", "profiles": {"embedded": _raw()}}))
    with pytest.raises(ConfigError, match=r"profile = 'paper' is not defined.*\['embedded'\]"):
        load_profile(path, "paper")
    with pytest.raises(ConfigError, match="not found"):
        load_profile(tmp_path / "missing.yaml")


def test_every_config_field_has_a_docstring():
    import ast
    import inspect

    from tsblib import config

    tree = ast.parse(inspect.getsource(config))
    checked = 0
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        body = cls.body
        for i, node in enumerate(body):
            if isinstance(node, ast.AnnAssign):
                nxt = body[i + 1] if i + 1 < len(body) else None
                assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), \
                    f"{cls.name}.{node.target.id} has no docstring"
                checked += 1
    assert checked > 50
    assert to_dict(DeviceConfig())["convention"] == "device_range"
    assert EvaluationConfig().operating_sigma in EvaluationConfig().sigmas
