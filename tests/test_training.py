import torch

from tsblib.config import DeviceConfig, MethodsConfig, RuntimeConfig, TrainConfig
from tsblib.data import Batches
from tsblib.methods.training import (early_epoch, make_objective, orthogonality_penalty, train)
from tsblib.models import build_model

import pytest


def _batch(data):
    return next(iter(Batches(data.train, 32, mean=data.mean, std=data.std)))


@pytest.mark.parametrize("method", ["nit", "nft_ovf", "correctnet"])
def test_noisy_objectives_draw_fresh_noise_each_forward(tiny_digits, method):
    model = build_model("lenet3").train()
    params = dict(model.named_parameters())
    obj = make_objective(method, model, TrainConfig(sigma_train=0.5), MethodsConfig(), DeviceConfig())
    x, y = _batch(tiny_digits)
    gen = torch.Generator().manual_seed(0)
    assert obj(model, params, x, y, gen).item() != obj(model, params, x, y, gen).item()


def test_clean_objective_is_deterministic(tiny_digits):
    model = build_model("lenet3").eval()
    params = dict(model.named_parameters())
    obj = make_objective("clean", model, TrainConfig(), MethodsConfig(), DeviceConfig())
    x, y = _batch(tiny_digits)
    gen = torch.Generator()
    assert obj(model, params, x, y, gen).item() == obj(model, params, x, y, gen).item()


def test_unknown_training_method_is_named():
    with pytest.raises(ValueError, match="method = 'magic'"):
        make_objective("magic", build_model("lenet3"), TrainConfig(), MethodsConfig(), DeviceConfig())


def test_orthogonality_penalty_is_zero_for_orthogonal_layers():
    q, _ = torch.linalg.qr(torch.randn(8, 8))
    assert orthogonality_penalty({"w": q}, ["w"]) < 1e-10
    assert orthogonality_penalty({"w": 2 * q}, ["w"]) > 1


def test_train_reports_epochs_seconds_curve_and_snapshots(tiny_digits):
    model = build_model("lenet3")
    cfg = TrainConfig(epochs=2, lr=0.01, sigma_train=0.3, curve_chips=2)
    obj = make_objective("nit", model, cfg, MethodsConfig(), DeviceConfig())
    result = train(model, tiny_digits, cfg, obj, device=torch.device("cpu"), runtime=RuntimeConfig(),
                   device_model=DeviceConfig(), snapshot_epochs=(1,), curve_sigma=0.3, progress=False)
    assert result.epochs == 2 and result.seconds > 0
    assert [r["epoch"] for r in result.curve] == [1, 2]
    assert all(0 <= r["var_acc_mean"] <= 1 for r in result.curve)
    assert result.curve[-1]["clean_acc"] > 0.3  # 2 epochs on 400 digits learn something
    assert set(result.snapshots) == {1}
    assert not torch.equal(result.snapshots[1]["conv1.weight"], result.state["conv1.weight"])


def test_training_is_repeatable(tiny_digits):
    states = []
    for _ in range(2):
        torch.rand(3)  # whatever the global RNG holds, the run must not change
        model = build_model("lenet3", seed=0)
        cfg = TrainConfig(epochs=1, sigma_train=0.3, curve_chips=0)
        obj = make_objective("nit", model, cfg, MethodsConfig(), DeviceConfig())
        states.append(train(model, tiny_digits, cfg, obj, device=torch.device("cpu"),
                            runtime=RuntimeConfig(), device_model=DeviceConfig(), progress=False).state)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_early_epoch():
    assert early_epoch(20, 0.2) == 4
    assert early_epoch(30, 0.2) == 6
    assert early_epoch(3, 0.1) == 1
