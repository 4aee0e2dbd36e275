import pytest
import torch
from torch.func import functional_call

from tsblib.execution.chipbatch import chip_batched, conv_batchnorm_pairs
from tsblib.config import DeviceConfig, Sharing, TSBConfig
from tsblib.models import INPUT_SHAPES, MODELS, build_model
from tsblib.tsb import insert_tsb
from tsblib.variation import mapped_weight_names, sample_chips

WIDTH = {"lenet3": 8, "vgg8": 64, "resnet18": 64}


def _randomised(name: str, sharing: Sharing) -> torch.nn.Module:
    model = build_model(name, seed=0).eval()
    gen = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    insert_tsb(model, TSBConfig(width=WIDTH[name], sharing=sharing))
    with torch.no_grad():
        for p in model.tsb.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    return model


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("sharing", list(Sharing))
def test_chip_parallel_pass_equals_one_pass_per_chip(name, sharing):
    model = _randomised(name, sharing)
    names = mapped_weight_names(model)
    params = dict(model.named_parameters())
    chips = sample_chips(params, names, 0.3, DeviceConfig(), [1, 2, 3])
    x = torch.randn(4, *INPUT_SHAPES[name], generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        together = chip_batched(model, chips)(x)
        alone = torch.stack([functional_call(model, {**params, **{n: w[k] for n, w in chips.items()}}, (x,))
                             for k in range(3)])
    assert together.shape == (3, 4, 10)
    assert torch.allclose(together, alone, rtol=1e-4, atol=1e-5)


def test_per_chip_batchnorm_statistics_and_block_updates():
    model = _randomised("lenet3", Sharing.SHARED)
    params = dict(model.named_parameters())
    chips = {"conv1.weight": torch.stack([params["conv1.weight"].detach()] * 2)}
    means = torch.stack([model.bn1.running_mean, model.bn1.running_mean + 1])
    runner = chip_batched(model, chips, {"bn1.running_mean": means})
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        out = runner(x)
        assert not torch.allclose(out[0], out[1])  # chip 1 has other BN statistics
        assert torch.allclose(out[0], model(x), atol=1e-5)
    block = torch.zeros(2, 8, 8, requires_grad=True)
    runner.set_blocks({"tsb.shared.weight": block})
    runner(x).sum().backward()
    assert block.grad.abs().sum() > 0


def test_batchnorms_that_follow_a_convolution_are_found_for_folding():
    assert conv_batchnorm_pairs(build_model("lenet3")) == {"bn1": "conv1", "bn2": "conv2"}
    pairs = conv_batchnorm_pairs(build_model("resnet18"))
    assert pairs["layer2.0.shortcut.1"] == "layer2.0.shortcut.0"
    assert len(pairs) == sum(isinstance(m, torch.nn.BatchNorm2d) for m in build_model("resnet18").modules())


class _DataDependent(torch.nn.Module):
    """Control flow on an input's shape: torch.fx cannot trace it, so nothing is folded."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1, dilation=2, bias=True)
        self.bn = torch.nn.BatchNorm2d(4).eval()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        if x.shape[-1] % 2 == 1:
            y = torch.relu(y)
        return self.fc(y.mean((2, 3)))


def test_untraceable_model_and_strided_dilated_first_convolution():
    model = _DataDependent().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 1.5)
    assert conv_batchnorm_pairs(model) == {}
    params = dict(model.named_parameters())
    chips = sample_chips(params, ["conv.weight", "fc.weight"], 0.3, DeviceConfig(), [4, 5])
    x = torch.randn(3, 3, 11, 9, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        together = chip_batched(model, chips)(x)
        alone = torch.stack([functional_call(model, {**params, **{n: w[k] for n, w in chips.items()}}, (x,))
                             for k in range(2)])
    assert torch.allclose(together, alone, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------- what cannot be folded

def _per_chip(model, chips, x):
    params = dict(model.named_parameters())
    return torch.stack([functional_call(model, {**params, **{n: w[k] for n, w in chips.items()}}, (x,))
                        for k in range(next(iter(chips.values())).shape[0])])


def _chips(model, names, seeds=(1, 2, 3)):
    return sample_chips(dict(model.named_parameters()), names, 0.3, DeviceConfig(), list(seeds))


def _with_statistics(model):
    gen = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return model.eval()


class _GroupedFirst(torch.nn.Module):
    """A grouped first convolution: on the shared input its output groups would straddle chips."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 8, 3, groups=2)
        self.bn = torch.nn.BatchNorm2d(8)
        self.fc = torch.nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


class _CalledTwice(torch.nn.Module):
    """One convolution (and its BatchNorm) applied twice, with shared weights."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.other = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(self.stem(x))))
        y = torch.relu(self.other(self.conv(y)))
        return self.fc(y.mean((2, 3)))


class _Concat(torch.nn.Module):
    """Two branches concatenated along the channels."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.b = torch.nn.Conv2d(3, 2, 1)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(x)], dim=1)
        return self.fc(torch.relu(y).mean((2, 3)))


def test_grouped_first_convolution_gives_each_chip_its_own_groups():
    model = _with_statistics(_GroupedFirst())
    chips = _chips(model, ["conv.weight", "fc.weight"])
    x = torch.randn(2, 4, 9, 9, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(chip_batched(model, chips)(x), _per_chip(model, chips, x),
                              rtol=1e-4, atol=1e-5)


def test_a_module_called_twice_is_not_folded_and_stays_exact():
    model = _with_statistics(_CalledTwice())
    assert conv_batchnorm_pairs(model) == {}  # conv is called twice: neither BatchNorm folds
    chips = _chips(model, ["stem.weight", "conv.weight", "fc.weight"])
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(chip_batched(model, chips)(x), _per_chip(model, chips, x),
                              rtol=1e-4, atol=1e-5)


def test_channel_concatenation_falls_back_to_one_pass_per_chip(caplog):
    from tsblib.execution.chipbatch import ChipLoopModel, unfoldable_reason

    model = _Concat().eval()
    assert "cat(dim=1)" in unfoldable_reason(model)
    assert unfoldable_reason(build_model("resnet18")) is None
    chips = _chips(model, ["a.weight", "b.weight", "fc.weight"])
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with caplog.at_level("WARNING", logger="tsblib.execution.chipbatch"):
        runner = chip_batched(model, chips)
    assert isinstance(runner, ChipLoopModel) and "one by one" in caplog.text
    with torch.no_grad():
        assert torch.allclose(runner(x), _per_chip(model, chips, x), rtol=1e-5, atol=1e-6)
    block = torch.zeros(3, 3, requires_grad=True)  # the plain path passes gradients too
    runner.set_blocks({"fc.bias": block})
    runner(x).sum().backward()
    assert block.grad is not None


def test_read_noise_is_drawn_afresh_at_every_forward_in_the_chip_parallel_pass():
    model = _randomised("lenet3", Sharing.SHARED)
    names = mapped_weight_names(model)
    chips = _chips(model, names, seeds=(1, 2))
    calls = []

    def read(stacked):
        calls.append(1)
        return {n: w + 0.05 * torch.randn(w.shape) for n, w in stacked.items()}

    runner = chip_batched(model, chips, read=read)
    x = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first, second = runner(x), runner(x)
        plain = chip_batched(model, chips)(x)
    assert len(calls) == 2 and not torch.allclose(first, second)
    torch.manual_seed(0)
    with torch.no_grad():
        runner = chip_batched(model, chips, read=lambda s: dict(s))  # a noiseless read
        assert torch.allclose(runner(x), plain, atol=1e-6)


# ----------------------------------------------------------------------------- ReLUs in place

class _PreActivationKept(torch.nn.Module):
    """A ReLU whose input is read again afterwards (a pre-activation skip): it must not be
    computed in place, or the skip would read the rectified values."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.act = torch.nn.ReLU()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        y = self.bn(self.conv(x))
        return self.fc((torch.relu(y) + y + self.act(y)).mean((2, 3)))


def _in_place_relus(runner) -> int:
    graph = getattr(runner.inference, "graph", None)
    return 0 if graph is None else sum(n.target is torch.relu_ for n in graph.nodes)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_relus_run_in_place_without_gradients_with_the_same_bits(name, monkeypatch):
    import tsblib.execution.chipbatch as chipbatch

    model = _randomised(name, Sharing.SHARED)
    chips = _chips(model, mapped_weight_names(model))
    x = torch.randn(4, *INPUT_SHAPES[name], generator=torch.Generator().manual_seed(2))
    runner = chip_batched(model, chips)
    assert _in_place_relus(runner) >= 2  # every ReLU of these models follows a fresh tensor
    calls = []
    runner.inference.register_forward_hook(lambda *_: calls.append("inference"))
    runner.inner.register_forward_hook(lambda *_: calls.append("inner"))
    with torch.no_grad():
        out = runner(x)
    assert calls == ["inference"]
    with torch.enable_grad():  # fine-tuning runs the model's own forward
        runner(x)
    assert calls == ["inference", "inner"]
    monkeypatch.setattr(chipbatch, "_relus_in_place", lambda work, graph: work)
    plain = chip_batched(model, chips)
    assert _in_place_relus(plain) == 0
    with torch.no_grad():
        assert torch.equal(out, plain(x))


def test_a_relu_whose_input_is_read_again_stays_out_of_place():
    model = _with_statistics(_PreActivationKept())
    chips = _chips(model, ["conv.weight", "fc.weight"])
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    runner = chip_batched(model, chips)
    assert _in_place_relus(runner) == 0
    with torch.no_grad():
        assert torch.allclose(runner(x), _per_chip(model, chips, x), rtol=1e-4, atol=1e-5)
