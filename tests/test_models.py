import pytest
import torch

from tsblib.models import INPUT_SHAPES, MODELS, build_model


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
