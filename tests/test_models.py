import pytest
import torch

from tsblib.models import (INPUT_SHAPES, MODELS, build_model, channel_multiple, experiment_model,
                           scaled_channels)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_builds_and_runs(name):
    model = build_model(name, num_classes=7).eval()
    out = model(torch.zeros(2, *INPUT_SHAPES[name]))
    assert out.shape == (2, 7)


def test_lenet3_matches_the_design():
    model = build_model("lenet3")
    shapes = {n: tuple(p.shape) for n, p in model.named_parameters() if n.endswith("weight")}
    assert shapes["conv1.weight"] == (16, 1, 5, 5)
    assert shapes["conv2.weight"] == (32, 16, 5, 5)
    assert shapes["fc.weight"] == (10, 512)


def test_vgg8_and_resnet18_layout():
    vgg = build_model("vgg8")
    convs = [m.out_channels for m in vgg.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs == [64, 128, 256, 256, 512, 512]
    linears = [tuple(m.weight.shape) for m in vgg.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [(1024, 8192), (10, 1024)]
    resnet = build_model("resnet18")
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in resnet.modules())
    projections = [m for n, m in resnet.named_modules() if n.endswith("shortcut.0")]
    assert len(projections) == 3 and all(p.kernel_size == (1, 1) for p in projections)
    assert sum(p.numel() for p in resnet.parameters()) == pytest.approx(11.17e6, rel=0.01)


def test_seeded_build_is_repeatable_and_leaves_the_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b = build_model("lenet3", seed=3), build_model("lenet3", seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(build_model("lenet3", seed=4).conv1.weight, a.conv1.weight)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(ValueError, match="known models.*lenet3.*resnet18.*vgg8"):
        build_model("alexnet")


@pytest.mark.parametrize("name", ["vgg8", "resnet18"])
def test_width_multiplier_scales_every_channel_to_multiples(name):
    full = build_model(name)
    quarter = build_model(name, width=0.25, multiple=16)
    convs = lambda m: [c.out_channels for c in m.modules() if isinstance(c, torch.nn.Conv2d)]  # noqa: E731
    assert [max(16, round(c * 0.25 / 16) * 16) for c in convs(full)] == convs(quarter)
    assert all(c % 16 == 0 for c in convs(quarter))
    assert quarter(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # 1.0 is the paper's form, whatever the multiple
    assert convs(build_model(name, width=1.0, multiple=8)) == convs(full)


def test_vgg8_hidden_width_and_flatten_follow_the_multiplier():
    vgg = build_model("vgg8", width=0.25, multiple=16)
    linears = [tuple(m.weight.shape) for m in vgg.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [(256, 128 * 16), (10, 256)]


def test_scaled_channels_rounds_to_the_nearest_multiple_and_never_below_it():
    assert scaled_channels(64, 0.125, 16) == 16  # 8 -> at least one multiple
    assert scaled_channels(128, 0.3, 8) == 40  # 38.4 -> 40
    assert scaled_channels(512, 0.25, 64) == 128
    with pytest.raises(ValueError, match="must be > 0"):
        scaled_channels(64, 0.0, 8)


def test_lenet3_has_no_width_multiplier():
    with pytest.raises(ValueError, match="no width multiplier.*remove models.lenet3.width"):
        build_model("lenet3", width=0.5)


def test_experiment_model_rounds_to_every_block_width_in_use():
    """Channels at a reduced width are multiples of the lcm of tsb.width and ablation.widths,
    so that every block divides every insertion point and restating tsb.width among them
    leaves the backbone unchanged."""
    from tsblib.profiles import profile_from_dict

    def exp(tsb_width, widths, width=0.25):
        return profile_from_dict("p", {"tsb": {"width": tsb_width}, "ablation": {"widths": widths},
                                       "data": {"dataset": "cifar10"},
                                       "models": {"resnet18": {"width": width}}}).experiments[0]

    assert channel_multiple(exp(8, [4, 8, 16])) == 16 and channel_multiple(exp(8, [])) == 8
    assert channel_multiple(exp(8, [4], width=1.0)) == 1
    a, b = experiment_model(exp(8, [4, 8, 16])), experiment_model(exp(16, [4, 8, 16]))
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    assert a.conv1.out_channels == 16  # 64 x 0.25 = 16
