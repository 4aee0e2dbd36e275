import pytest
import yaml

from tsblib.config import ConfigError, DeviceConfig, EvaluationConfig, SigmaConvention, to_dict

from tsblib.profiles import load_profile, profile_from_dict
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


NFT_BETAS = {"nft_ovf": {"beta": 0.01}, "nft_irs": {"beta": 0.01}}
"""LeNet-3 has no authors' NFT beta: a profile that runs NFT on it must state one."""


def _raw(**over):
    raw = {"models": {"lenet3": {}}, "methods": dict(NFT_BETAS)}
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
    (_raw(train={"optimizer": "rmsprop"}),
     r"train.optimizer = 'rmsprop' is not allowed: expected one of \['sgd', 'adam', 'adamw'\]"),
    (_raw(methods={**NFT_BETAS, "swim": {"p": 3}}),
     r"methods.swim.p is not a known parameter.*'p_percent'"),
    (_raw(methods={**NFT_BETAS, "nft_magic": {}}), r"methods.nft_magic is not a known parameter"),
    (_raw(methods={"nft_ovf": {"beta": -0.1}, "nft_irs": {"beta": 0.01}}),
     r"methods.nft_ovf.beta = -0.1 is not allowed: expected null .* or a number >= 0"),
    (_raw(methods={"nft_irs": {"beta": 0.01}}),
     r"methods.nft_ovf.beta is null for 'lenet3'.*authors give no beta.*state one"),
    (_raw(data={"val_fraction": 0.0}), r"data.val_fraction = 0.0 is not allowed: expected in \(0, 0.5\]"),
    (_raw(data={"val_fraction": 0.7}), r"data.val_fraction = 0.7 is not allowed"),
    (_raw(tsb={"lr": [0.01, -1.0]}), r"tsb.lr = -1.0 is not allowed"),
    (_raw(train={"val_chips": 2}), r"train.val_chips = 2 is not allowed: expected >= 5"),
    (_raw(selection={"recipes": [{"optimizer": "sgd", "lr": 0}]}), r"selection.recipes.lr = 0"),
    (_raw(evaluation={"sigmas": [0.1, 0.5], "operating_sigma": 0.5}),
     r"expected 0.0 among them \(TSB's own gap"),
    (_raw(data={"dataset": "imagenet"}), r"data.dataset = 'imagenet'"),
    (_raw(tsb={"width": 7}), r"models.lenet3: tsb.width = 7 .* does not divide the channel counts "
                             r"\[16, 32\].*one of \[1, 2, 4, 8, 16\]"),
    (_raw(ablation={"widths": [4, 6, 16]}), r"ablation.widths contains 6, but a block of width 6"),
    (_raw(tsb={"width": 32}), r"models.lenet3: tsb.width = 32 \(placement 'all'\).*channel counts \[16\]"),
    (_raw(methods={**NFT_BETAS, "tsb_ages": [0.0, 0.2]}),
     r"methods.tsb_ages contains 0.0, .*allowed: expected fractions in \(0, 1\]"),
    (_raw(methods={**NFT_BETAS, "tsb_ages": [0.2, 1.5]}), r"methods.tsb_ages contains 1.5"),
    (_raw(methods={**NFT_BETAS, "tsb_ages": [-0.1]}), r"methods.tsb_ages contains -0.1"),
    (_raw(methods={**NFT_BETAS, "tsb_ages": ["early"]}), r"methods.tsb_ages\[0\] = 'early' is not allowed: expected a number"),
    (_raw(methods={**NFT_BETAS, "clean": {"lr": -0.05}}), r"methods.clean.lr = -0.05 is not allowed"),
    (_raw(methods={**NFT_BETAS, "clean": {"optimizer": "rmsprop"}}), r"methods.clean.optimizer = .rmsprop. is not allowed"),
    (_raw(methods={**NFT_BETAS, "clean": {"epochs": 0}}), r"methods.clean.epochs = 0 is not allowed"),
    (_raw(methods={**NFT_BETAS, "clean": {"epochs": 2.5}}), r"methods.clean.epochs = 2.5 is not allowed"),
    (_raw(methods={**NFT_BETAS, "tsb_ages_bnrecal": "yes"}), r"methods.tsb_ages_bnrecal"),
    (_raw(methods={**NFT_BETAS, "tsb_annealed": "yes"}), r"methods.tsb_annealed = 'yes' is not allowed"),
    (_raw(methods={**NFT_BETAS, "tsb_age": [0.2]}),
     r"methods.tsb_age is not a known parameter.*Did you mean 'tsb_ages'"),
])
def test_bad_values_name_the_key_the_value_and_what_is_allowed(raw, match):
    with pytest.raises(ConfigError, match=match):
        profile_from_dict("test", raw)


def test_tsb_ages_and_annealed_parse_from_params():
    exp = profile_from_dict("t", _raw(methods={**NFT_BETAS, "tsb_ages": [0.25, 1],
                                               "tsb_annealed": False})).experiment("lenet3")
    assert exp.methods.tsb_ages == (0.25, 1.0) and exp.methods.tsb_annealed is False
    default = profile_from_dict("t", _raw()).experiment("lenet3").methods
    assert default.tsb_ages == (0.1, 0.2, 0.3, 0.5) and default.tsb_annealed is True


def test_per_model_overrides_merge_with_profile_defaults():
    profile = profile_from_dict("t", {"train": {"epochs": 7, "lr": 0.1}, "methods": NFT_BETAS,
                                      "models": {"lenet3": {"train": {"epochs": 3}},
                                                 "vgg8": {"tsb": {"width": 64}}}})
    assert profile.experiment("lenet3").train.epochs == 3
    assert profile.experiment("lenet3").train.lr == 0.1
    assert profile.experiment("vgg8").train.epochs == 7
    assert profile.experiment("vgg8").tsb.width == 64
    # VGG-8 takes the NFT authors' beta when none is stated for it
    vgg = profile_from_dict("t", {"methods": {"nft_ovf": {"beta": None}},
                                  "models": {"vgg8": {"data": {"dataset": "cifar10"}}}})
    assert vgg.experiment("vgg8").methods.of("nft_ovf").resolve("vgg8", "cifar10") == 1e-3
    assert vgg.experiment("vgg8").methods.of("nft_irs").resolve("vgg8", "cifar10") == 1e-1


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


def test_a_key_repeated_in_params_yaml_is_rejected(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: p\nprofiles:\n  p:\n    tsb: {width: 8}\n    models: {lenet3: {}}\n"
                    "    tsb: {width: 4}\n")
    with pytest.raises(ConfigError, match=r"key 'tsb' appears twice in one mapping \(first at line 4\)"):
        load_profile(path)


def test_a_merged_profile_overrides_what_it_writes_and_refuses_repeats(tmp_path):
    """`<<: *anchor` (cifar-cpu-baselines) takes the anchor's sections, a section written
    beside it wins, and a key written twice is still refused."""
    path = tmp_path / "params.yaml"
    base = ("profile: q\nprofiles:\n  p: &p\n    tsb: {width: 8}\n    models: {lenet3: {}}\n"
            "    methods: {methods: [clean, nit, tsb]}\n"
            "  q:\n    <<: *p\n    tsb: {width: 4}\n")
    path.write_text(base)
    assert load_profile(path, "q").experiment("lenet3").tsb.width == 4
    assert load_profile(path, "p").experiment("lenet3").tsb.width == 8
    path.write_text(base + "    tsb: {width: 2}\n")
    with pytest.raises(ConfigError, match=r"key 'tsb' appears twice"):
        load_profile(path, "q")


@pytest.mark.parametrize("dataset", ["mnist-embedded", "mnist"])
def test_augmentation_is_refused_for_digits(dataset):
    with pytest.raises(ConfigError, match=r"train.augment = True is not allowed: expected false "
                                          rf"for data.dataset = '{dataset}'.*natural-image"):
        profile_from_dict("p", {"data": {"dataset": dataset}, "train": {"augment": True},
                                "models": {"lenet3": {}}})


def test_the_profiles_floor_of_tsb_chips_and_the_trajectory_stride():
    with pytest.raises(ConfigError, match=r"evaluation.tsb_chips = 10 is not allowed: expected "
                                          r">= evaluation.min_tsb_chips = 20"):
        EvaluationConfig(chips=50, tsb_chips=10, min_tsb_chips=20).validate()
    with pytest.raises(ConfigError, match=r"evaluation.trajectory_every = 0"):
        EvaluationConfig(trajectory_every=0).validate()
    with pytest.raises(ConfigError, match=r"runtime.train_workers = 0"):
        profile_from_dict("p", {"runtime": {"train_workers": 0}, "models": {"lenet3": {}}})


def test_the_paper_profile_fits_every_block_width():
    """validate builds every model and checks each TSB variant's width against it."""
    profile = load_profile(ROOT / "params.yaml", "paper")
    assert {e.model for e in profile.experiments} == {"lenet3", "vgg8", "resnet18"}


def test_secondary_methods_take_fewer_sigmas_that_hold_the_operating_point():
    ev = EvaluationConfig(sigmas=(0.0, 0.1, 0.3), operating_sigma=0.3,
                          secondary_methods=("nft_ovf",), secondary_sigmas=(0.3,))
    ev.validate()
    assert ev.sigmas_for("nft_ovf") == (0.3,) and ev.sigmas_for("nit") == (0.0, 0.1, 0.3)
    for bad in ((0.1,), (0.3, 0.5)):
        with pytest.raises(ConfigError, match="evaluation.secondary_sigmas"):
            EvaluationConfig(sigmas=(0.0, 0.1, 0.3), operating_sigma=0.3,
                             secondary_methods=("nft_ovf",), secondary_sigmas=bad).validate()
    with pytest.raises(ConfigError, match="without 'tsb'"):
        EvaluationConfig(sigmas=(0.0, 0.3), operating_sigma=0.3, secondary_methods=("tsb",),
                         secondary_sigmas=(0.3,)).validate()


def test_model_width_is_parsed_validated_and_only_for_scalable_models():
    raw = {"data": {"dataset": "cifar10"}, "models": {"vgg8": {"width": 0.25}}}
    assert profile_from_dict("p", raw).experiment("vgg8").width == 0.25
    with pytest.raises(ConfigError, match="models.vgg8.width = -1"):
        profile_from_dict("p", {**raw, "models": {"vgg8": {"width": -1}}})
    with pytest.raises(ConfigError, match=r"models.lenet3.width = 0.5 is not allowed: expected 1.0"):
        profile_from_dict("p", _raw(models={"lenet3": {"width": 0.5}}))
    with pytest.raises(ConfigError, match="allowed:.*width"):
        profile_from_dict("p", {**raw, "models": {"vgg8": {"widht": 0.25}}})


def test_the_cifar_cpu_profile_states_its_scale():
    """The paper's regime on the CPU (issue: CIFAR-10 in the paper's regime): augmentation,
    20 paired chips everywhere, the stratified 5,000-image test subset, backbones of several
    ages, and the NFT/CorrectNet baselines in their own profile."""
    profile = load_profile(ROOT / "params.yaml", "cifar-cpu")
    assert [e.model for e in profile.experiments] == ["vgg8", "resnet18"]
    for exp in profile.experiments:
        ev = exp.evaluation
        assert exp.width < 1 and exp.data.image_folder and exp.tsb.select_width
        assert exp.train.augment and exp.data.test_limit >= 5000
        assert ev.chips == ev.tsb_chips >= ev.min_tsb_chips >= 20 and ev.operating_sigma == 0.3
        assert min(ev.sigmas) == 0.0 and max(ev.sigmas) == 0.4
        for method in ("nit", "nit_bnrecal", "tsb"):  # the whole sweep, 0.1 apart
            assert set(ev.sigmas_for(method)) == {0.0, 0.1, 0.2, 0.3, 0.4}
        # several backbones (two ages and the annealed schedule), TSB + BN recal on each
        assert len(exp.methods.tsb_ages) >= 2 and exp.methods.tsb_annealed
        assert exp.methods.tsb_ages_bnrecal
        assert set(exp.methods.methods) == {"clean", "nit", "nit_bnrecal", "swim", "full_wv",
                                            "tsb", "tsb_bnrecal", "nit_block_bnrecal"}
    baselines = load_profile(ROOT / "params.yaml", "cifar-cpu-baselines")
    for exp in baselines.experiments:
        assert {"nft_ovf", "nft_irs", "correctnet"} <= set(exp.methods.methods)
        assert exp.train == profile.experiment(exp.model).train


@pytest.mark.parametrize("where,value,match", [
    ("profile", [0.0, -0.2], r"^profiles\.t\.evaluation\.sigmas = -0\.2 is not allowed"),
    ("profile", [0.0, "x"], r"^profiles\.t\.evaluation\.sigmas\[1\] = 'x' is not allowed"),
    ("model", [0.0, -0.2], r"^profiles\.t\.models\.lenet3\.evaluation\.sigmas = -0\.2 is not"),
    ("model", [0.0, "x"], r"^profiles\.t\.models\.lenet3\.evaluation\.sigmas\[1\] = 'x' is not"),
])
def test_every_parameter_error_names_the_key_where_it_is_written(where, value, match):
    raw = _raw()
    if where == "profile":
        raw["evaluation"] = {"sigmas": value}
    else:
        raw["models"] = {"lenet3": {"evaluation": {"sigmas": value}}}
    with pytest.raises(ConfigError, match=match):
        profile_from_dict("t", raw)
