import pytest
import torch
from torch.func import functional_call

from tsblib.chipbatch import chip_batched
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
