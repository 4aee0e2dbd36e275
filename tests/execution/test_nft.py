"""NFT objectives (OVF, IRS): hand computations, gradient flow, heads and hooks, authors' beta."""
import pytest
import torch
from torch import nn
from torch.func import functional_call

from tsblib.config import DeviceConfig
from tsblib.methods.nft import AUTHORS_BETA, OVF_OFFSETS, authors_beta
from tsblib.execution.nft import IRS_TAPS, AuxHeads, nft_irs_objective, nft_ovf_objective
from tsblib.models import INPUT_SHAPES, build_model
from tsblib.variation import mapped_weight_names, training_noise

DEV = DeviceConfig()


pytestmark = pytest.mark.usefixtures("one_thread")
SIGMA = 0.1


def _setup(name="lenet3", batch=4):
    model = build_model(name, seed=0).train()
    params = dict(model.named_parameters())
    x = torch.randn(batch, *INPUT_SHAPES[name], generator=torch.Generator().manual_seed(1))
    y = torch.arange(batch) % 10
    return model, params, mapped_weight_names(model), x, y


def _grads(loss, params):
    return torch.autograd.grad(loss, list(params.values()), allow_unused=True)


def test_ovf_offsets_are_the_authors():
    assert OVF_OFFSETS == (0.15, 0.10, 0.05)


def test_ovf_loss_and_gradients_equal_a_hand_computation():
    model, params, names, x, y = _setup()
    beta = 0.3
    obj = nft_ovf_objective(names, SIGMA, DEV, beta)
    assert obj.extra is None
    loss = obj(model, params, x, y, torch.Generator().manual_seed(5))

    gen = torch.Generator().manual_seed(5)
    outs = []
    for s in (SIGMA, SIGMA + 0.15, SIGMA + 0.10, SIGMA + 0.05):
        noisy = training_noise(params, names, s, DEV, gen)
        outs.append(functional_call(model, {**params, **noisy}, (x,)))
    out, o0, o1, o2 = outs
    nf = out - beta * (o0 + 0.1 * o1 + 0.01 * o2)
    expected = nn.functional.cross_entropy(nf / 4, y)
    torch.testing.assert_close(loss, expected)
    # gradients flow through all four forwards, exactly as in the hand computation
    for g, h in zip(_grads(loss, params), _grads(expected, params)):
        torch.testing.assert_close(g, h)


def test_ovf_with_beta_zero_is_tempered_noisy_cross_entropy():
    model, params, names, x, y = _setup()
    loss = nft_ovf_objective(names, SIGMA, DEV, 0.0)(model, params, x, y,
                                                     torch.Generator().manual_seed(3))
    noisy = training_noise(params, names, SIGMA, DEV, torch.Generator().manual_seed(3))
    out = functional_call(model, {**params, **noisy}, (x,))
    torch.testing.assert_close(loss, nn.functional.cross_entropy(out / 4, y))


@pytest.mark.parametrize("variant", ["ovf", "irs"])
def test_gradients_reach_every_mapped_weight(variant):
    model, params, names, x, y = _setup()
    if variant == "ovf":
        obj = nft_ovf_objective(names, SIGMA, DEV, 0.1)
    else:
        obj = nft_irs_objective(model, "lenet3", names, SIGMA, DEV, 0.1, 10, seed=0)
    obj(model, params, x, y, torch.Generator().manual_seed(0)).backward()
    for n in names:
        assert params[n].grad is not None and params[n].grad.abs().sum() > 0, n


def test_irs_heads_train_and_leave_the_backbone_untouched():
    model, params, names, x, y = _setup()
    keys = list(model.state_dict())
    running = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    obj = nft_irs_objective(model, "lenet3", names, SIGMA, DEV, 0.1, 10, seed=0)
    assert isinstance(obj.extra, nn.Module)
    assert list(model.state_dict()) == keys                     # heads are not submodules
    assert mapped_weight_names(model) == names
    for k, v in running.items():                                # dummy forward kept BN stats
        torch.testing.assert_close(model.state_dict()[k], v)
    assert model.training
    obj(model, params, x, y, torch.Generator().manual_seed(0)).backward()
    head_params = list(obj.extra.parameters())
    assert head_params and all(p.grad is not None and p.grad.abs().sum() > 0 for p in head_params)
    # hooks are gone after the call: a plain forward returns a plain tensor, no hooks remain
    out = model.eval()(x)
    assert type(out) is torch.Tensor and out.shape == (4, 10)
    assert all(not m._forward_hooks for m in model.modules())


def test_irs_loss_equals_a_hand_computation():
    model, params, names, x, y = _setup()
    beta = 0.2
    obj = nft_irs_objective(model, "lenet3", names, SIGMA, DEV, beta, 10, seed=0)
    loss = obj(model, params, x, y, torch.Generator().manual_seed(9))

    noisy = training_noise(params, names, SIGMA, DEV, torch.Generator().manual_seed(9))
    p = {**params, **noisy}
    f1 = nn.functional.batch_norm(nn.functional.conv2d(x, p["conv1.weight"]), None, None,
                                  p["bn1.weight"], p["bn1.bias"], training=True)
    h = torch.relu(nn.functional.max_pool2d(f1, 2))
    f2 = nn.functional.batch_norm(nn.functional.conv2d(h, p["conv2.weight"]), None, None,
                                  p["bn2.weight"], p["bn2.bias"], training=True)
    out = nn.functional.linear(torch.relu(nn.functional.max_pool2d(f2, 2)).flatten(1),
                               p["fc.weight"], p["fc.bias"])
    o0, o1 = obj.extra.heads[0](f1), obj.extra.heads[1](f2)     # shallow to deep
    expected = nn.functional.cross_entropy((out - beta * (o0 + 0.1 * o1)) / 4, y)
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-5)


def test_irs_heads_are_seeded():
    model, _, names, _, _ = _setup()
    a = nft_irs_objective(model, "lenet3", names, SIGMA, DEV, 0.1, 10, seed=4).extra
    b = nft_irs_objective(model, "lenet3", names, SIGMA, DEV, 0.1, 10, seed=4).extra
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", ["lenet3", "vgg8", "resnet18"])
def test_irs_heads_build_for_every_model(name):
    model, params, names, x, y = _setup(name, batch=2)
    obj = nft_irs_objective(model, name, names, 0.0, DEV, 0.1, 10, seed=0)  # sigma 0: fast
    assert isinstance(obj.extra, AuxHeads) and len(obj.extra.heads) == len(IRS_TAPS[name])
    with torch.no_grad():
        loss = obj(model, params, x, y, torch.Generator().manual_seed(0))
        assert torch.isfinite(loss) and loss.shape == ()
        assert type(model(x)) is torch.Tensor


def test_vgg8_heads_match_the_authors_sizes():
    model = build_model("vgg8", seed=0)
    heads = AuxHeads("vgg8", model, 10).heads
    assert [h[3].in_features for h in heads] == [64 * 36, 128 * 16, 256 * 9]
    assert all(h[3].out_features == 512 and h[5].out_features == 10 for h in heads)


def test_authors_beta_table():
    assert authors_beta("ovf", "vgg8", "mnist") == 1e-3
    assert authors_beta("ovf", "vgg8", "cifar10") == 1e-3
    assert authors_beta("ovf", "resnet18", "mnist") == 1e-4
    assert authors_beta("ovf", "resnet18", "cifar10") == 1e-1
    assert authors_beta("irs", "vgg8", "mnist") == 1e-2
    assert authors_beta("irs", "vgg8", "cifar10") == 1e-1
    assert authors_beta("irs", "resnet18", "mnist") == 1e-1
    assert authors_beta("irs", "resnet18", "cifar10") == 1e-3
    assert authors_beta("irs", "vgg8", "mnist-embedded") == 1e-2
    assert len(AUTHORS_BETA) == 8
    for variant in ("ovf", "irs"):
        for dataset in ("mnist", "cifar10"):
            assert authors_beta(variant, "lenet3", dataset) is None
    with pytest.raises(ValueError, match="variant"):
        authors_beta("magic", "vgg8", "mnist")
