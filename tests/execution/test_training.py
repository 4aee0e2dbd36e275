import math

import pytest
import torch

from tsblib.config import DeviceConfig, Optimizer, RuntimeConfig, Schedule, TrainConfig
from tsblib.data import Batches
from tsblib.execution.clean import CleanObjective
from tsblib.execution.nit import nit_objective
from tsblib.execution.training import make_optimizer, make_schedule, train
from tsblib.methods.studies import early_epoch
from tsblib.models import build_model
from tsblib.variation import mapped_weight_names


def _batch(data):
    return next(iter(Batches(data.train, 32, mean=data.mean, std=data.std)))


def test_nit_objective_draws_fresh_noise_each_forward(tiny_digits):
    model = build_model("lenet3").train()
    params = dict(model.named_parameters())
    obj = nit_objective(mapped_weight_names(model), 0.5, DeviceConfig())
    x, y = _batch(tiny_digits)
    gen = torch.Generator().manual_seed(0)
    assert obj(model, params, x, y, gen).item() != obj(model, params, x, y, gen).item()


def test_clean_objective_is_deterministic(tiny_digits):
    model = build_model("lenet3").eval()
    params = dict(model.named_parameters())
    obj = CleanObjective()
    x, y = _batch(tiny_digits)
    gen = torch.Generator()
    assert obj(model, params, x, y, gen).item() == obj(model, params, x, y, gen).item()


@pytest.mark.parametrize("optimizer, cls", [(Optimizer.SGD, torch.optim.SGD),
                                            (Optimizer.ADAM, torch.optim.Adam),
                                            (Optimizer.ADAMW, torch.optim.AdamW)])
def test_recipe_builds_its_optimiser_with_decay_on_weights_only(optimizer, cls):
    model = build_model("lenet3")
    cfg = TrainConfig(optimizer=optimizer, lr=0.02, weight_decay=1e-4)
    opt = make_optimizer(dict(model.named_parameters()), cfg)
    assert type(opt) is cls
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() > 1 for p in decay["params"]) and all(p.dim() <= 1 for p in no_decay["params"])
    assert decay["lr"] == 0.02


def test_schedules():
    w = torch.zeros(1, requires_grad=True)
    for schedule, halfway in ((Schedule.COSINE, 0.5), (Schedule.CONSTANT, 1.0)):
        opt = torch.optim.SGD([w], lr=1.0)
        sched = make_schedule(opt, TrainConfig(schedule=schedule), steps=10)
        for _ in range(5):
            opt.step()
            sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(halfway)


def test_train_scores_epochs_on_validation_and_deploys_the_best(tiny_digits):
    model = build_model("lenet3", seed=0)
    cfg = TrainConfig(epochs=3, lr=3e-3, sigma_train=0.3, val_chips=5)
    obj = nit_objective(mapped_weight_names(model), 0.3, DeviceConfig())
    result = train(model, tiny_digits, cfg, obj, device=torch.device("cpu"), runtime=RuntimeConfig(),
                   device_model=DeviceConfig(), snapshot_epochs=(1,), progress=False)
    assert result.epochs == 3 and result.seconds > 0
    assert [r["epoch"] for r in result.curve] == [1, 2, 3]
    scores = [r["val_chip_acc_mean"] for r in result.curve]
    assert all(0 <= s <= 1 for s in scores)
    assert result.selected_epoch == 1 + scores.index(max(scores))
    assert [r["selected"] for r in result.curve].count(True) == 1
    assert result.seconds == result.curve[result.selected_epoch - 1]["seconds"]
    assert max(r["val_clean_acc"] for r in result.curve) > 0.3  # 3 epochs on digits learn something
    assert set(result.snapshots) == {1}
    # the deployed state is the selected epoch's: it equals the snapshot when epoch 1 won
    if result.selected_epoch == 1:
        assert torch.equal(result.snapshots[1]["conv1.weight"], result.state["conv1.weight"])
    else:
        assert not torch.equal(result.snapshots[1]["conv1.weight"], result.state["conv1.weight"])


def test_train_never_reads_the_test_split(tiny_digits):
    from tsblib.data import _LockedSplit
    import dataclasses

    locked = dataclasses.replace(tiny_digits, test=_LockedSplit())
    model = build_model("lenet3", seed=0)
    cfg = TrainConfig(epochs=1, sigma_train=0.3)
    obj = nit_objective(mapped_weight_names(model), 0.3, DeviceConfig())
    result = train(model, locked, cfg, obj, device=torch.device("cpu"), runtime=RuntimeConfig(),
                   device_model=DeviceConfig(), progress=False)
    assert result.selected_epoch == 1


def test_clean_training_selects_on_clean_validation_accuracy(tiny_digits):
    model = build_model("lenet3", seed=0)
    cfg = TrainConfig(epochs=2, lr=3e-3, sigma_train=0.3)
    result = train(model, tiny_digits, cfg, CleanObjective(), device=torch.device("cpu"),
                   runtime=RuntimeConfig(), device_model=DeviceConfig(), select_on="clean",
                   progress=False)
    clean = [r["val_clean_acc"] for r in result.curve]
    assert result.selected_epoch == 1 + clean.index(max(clean))
    with pytest.raises(ValueError, match="select_on = 'loss'"):
        train(model, tiny_digits, cfg, CleanObjective(), device=torch.device("cpu"),
              runtime=RuntimeConfig(), device_model=DeviceConfig(), select_on="loss")


def test_training_is_repeatable(tiny_digits):
    states = []
    for _ in range(2):
        torch.rand(3)  # whatever the global RNG holds, the run must not change
        model = build_model("lenet3", seed=0)
        cfg = TrainConfig(epochs=1, sigma_train=0.3)
        obj = nit_objective(mapped_weight_names(model), 0.3, DeviceConfig())
        states.append(train(model, tiny_digits, cfg, obj, device=torch.device("cpu"),
                            runtime=RuntimeConfig(), device_model=DeviceConfig(), progress=False).state)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_early_epoch():
    assert early_epoch(20, 0.2) == 4
    assert early_epoch(30, 0.2) == 6
    assert early_epoch(3, 0.1) == 1
    assert math.isfinite(early_epoch(1, 1.0))
