"""CorrectNet (NFT authors' re-implementation): orthogonality penalty and objective."""
import pytest
import torch
from torch import nn
from torch.func import functional_call

from tsblib.config import DeviceConfig
from tsblib.methods.correctnet import DEFAULT_WEIGHT
from tsblib.execution.correctnet import correctnet_objective, orthogonality_penalty
from tsblib.models import build_model
from tsblib.variation import mapped_weight_names, training_noise

DEV = DeviceConfig()


pytestmark = pytest.mark.usefixtures("one_thread")


def test_penalty_is_zero_for_orthogonal_kernels():
    identity_kernels = torch.eye(3).expand(4, 2, 3, 3).clone()       # conv [4, 2, 3, 3]
    q, _ = torch.linalg.qr(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)))
    params = {"conv": identity_kernels, "fc": q,                          # [6, 4], Q^T Q = I
              "one": torch.ones(5, 3, 1, 1)}                          # 1x1 kernels of 1
    value = orthogonality_penalty(params, ["conv", "fc", "one"])
    torch.testing.assert_close(value, torch.tensor(0.0), atol=1e-10, rtol=0)


def test_penalty_equals_a_hand_computation():
    conv = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    # W^T W = [[10, 14], [14, 20]]; minus I: 9^2 + 14^2 + 14^2 + 19^2 = 834
    fc = torch.tensor([[1.0, 2.0]])                   # linear [out=1, in=2]
    # W^T W (in x in) = [[1, 2], [2, 4]]; minus I: 0 + 4 + 4 + 9 = 17
    shortcut = torch.tensor([2.0, 0.0]).reshape(1, 2, 1, 1)
    # per 1x1 kernel (w^2 - 1)^2: 9 + 1 = 10
    params = {"a": conv, "b": fc, "c": shortcut}
    assert orthogonality_penalty(params, ["a"]).item() == pytest.approx(834.0)
    assert orthogonality_penalty(params, ["b"]).item() == pytest.approx(17.0)
    assert orthogonality_penalty(params, ["c"]).item() == pytest.approx(10.0)
    assert orthogonality_penalty(params, ["a", "b", "c"]).item() == pytest.approx(861.0)


def test_penalty_uses_per_kernel_gram_for_convs():
    # two kernels [[1,0],[0,1]] and [[0,1],[1,0]] are each orthogonal, although the flattened
    # [out, in*k*k] matrix is not: the per-kernel rule gives 0
    w = torch.stack([torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])]).reshape(1, 2, 2, 2)
    assert orthogonality_penalty({"w": w}, ["w"]).item() == pytest.approx(0.0)


def test_penalty_rejects_other_shapes():
    with pytest.raises(ValueError, match="shape"):
        orthogonality_penalty({"b": torch.ones(3)}, ["b"])


def test_objective_is_noisy_cross_entropy_plus_weighted_penalty():
    model = build_model("lenet3", seed=0).train()
    params = dict(model.named_parameters())
    names = mapped_weight_names(model)
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 2, 3])
    obj = correctnet_objective(names, 0.1, DEV, weight=1e-2)
    assert obj.extra is None
    assert correctnet_objective(names, 0.1, DEV).weight == DEFAULT_WEIGHT == 5e-4
    loss = obj(model, params, x, y, torch.Generator().manual_seed(2))
    noisy = training_noise(params, names, 0.1, DEV, torch.Generator().manual_seed(2))
    ce = nn.functional.cross_entropy(functional_call(model, {**params, **noisy}, (x,)), y)
    expected = ce + 1e-2 * orthogonality_penalty(params, names)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    for n in names:
        assert params[n].grad is not None and params[n].grad.abs().sum() > 0, n
