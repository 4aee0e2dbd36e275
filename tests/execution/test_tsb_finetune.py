import dataclasses

import pytest
import torch

from tsblib.config import DeviceConfig, FinetuneMode, RuntimeConfig, TSBConfig, WriteVerifyConfig
from tsblib.data import Batches
from tsblib.execution.tsb_finetune import backbone_names, finetune, programmed_backbones, read_back
from tsblib.models import build_model
from tsblib.tsb import insert_tsb
from tsblib.variation import chip_seed
from test_evaluate import _trained_lenet


def _loss(model, chip, blocks, data):
    from torch.func import functional_call
    x, y = next(iter(Batches(data.train, 400, mean=data.mean, std=data.std)))
    params = {**dict(model.named_parameters()), **chip, **blocks}
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(functional_call(model, params, (x,)), y).item()


def test_per_chip_finetuning_fits_each_chip(tiny_digits):
    model = insert_tsb(_trained_lenet(tiny_digits), TSBConfig(width=8)).eval()
    seeds = [chip_seed(0, 0.6, k) for k in range(2)]
    chips = programmed_backbones(model, 0.6, DeviceConfig(), seeds)
    cfg = TSBConfig(width=8, epochs=3, lr=(0.02,), batch_size=50)
    result = finetune(model, tiny_digits, cfg, 0.6, DeviceConfig(), WriteVerifyConfig(),
                      chip_params=chips, seed=0, device=torch.device("cpu"), runtime=RuntimeConfig(),
                      progress=False)
    assert result.blocks["tsb.shared.weight"].shape == (2, 8, 8)
    assert result.seconds > 0 and result.epochs == 3
    for k in range(2):
        chip = {n: w[k] for n, w in chips.items()}
        zero = {"tsb.shared.weight": torch.zeros(8, 8)}
        tuned = {"tsb.shared.weight": result.blocks["tsb.shared.weight"][k]}
        assert _loss(model, chip, tuned, tiny_digits) < _loss(model, chip, zero, tiny_digits)
    # the backbone itself is untouched
    assert torch.equal(model.tsb.shared.weight, torch.zeros(8, 8))


def test_shared_noise_mode_trains_one_block(tiny_digits):
    model = insert_tsb(_trained_lenet(tiny_digits), TSBConfig(width=8)).eval()
    cfg = TSBConfig(width=8, epochs=1, mode=FinetuneMode.SHARED_NOISE)
    result = finetune(model, tiny_digits, cfg, 0.5, DeviceConfig(), WriteVerifyConfig(),
                      chip_params=None, seed=0, device=torch.device("cpu"), runtime=RuntimeConfig(),
                      progress=False)
    assert result.blocks["tsb.shared.weight"].shape == (1, 8, 8)
    assert result.blocks["tsb.shared.weight"].abs().sum() > 0


def test_read_back_noise_is_seeded_and_zero_means_exact():
    w = {"a": torch.randn(2, 10, 10)}
    assert read_back(w, 0.0, [1, 2]) is w
    one, two = read_back(w, 0.1, [1, 2]), read_back(w, 0.1, [1, 2])
    assert torch.equal(one["a"], two["a"]) and not torch.equal(one["a"], w["a"])


def test_backbone_names_exclude_the_block():
    model = insert_tsb(build_model("lenet3"), TSBConfig(width=8))
    assert backbone_names(model) == ["conv1.weight", "conv2.weight", "fc.weight"]


def test_finetune_subset_is_fixed_seeded_and_bounded(tiny_digits):
    from tsblib.execution.tsb_finetune import finetune_split

    data = tiny_digits
    assert finetune_split(data, TSBConfig(images=0)) is data.train
    assert finetune_split(data, TSBConfig(images=10 ** 9)) is data.train
    a = finetune_split(data, TSBConfig(images=50))
    b = finetune_split(data, TSBConfig(images=50))
    assert len(a) == 50 and torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    # a subset of the training split, in its order
    rows = {tuple(img.flatten().tolist()) for img in data.train.images}
    assert all(tuple(img.flatten().tolist()) in rows for img in a.images)


def test_snapshot_epochs_equal_separate_shorter_runs(tiny_digits):
    model = insert_tsb(_trained_lenet(tiny_digits), TSBConfig(width=8)).eval()
    chips = programmed_backbones(model, 0.5, DeviceConfig(), [chip_seed(0, 0.5, k) for k in range(2)])
    kw = dict(chip_params=chips, seed=3, device=torch.device("cpu"), runtime=RuntimeConfig(),
              progress=False)
    cfg = TSBConfig(width=8, epochs=3, lr=(0.02,), batch_size=60, images=180)
    long = finetune(model, tiny_digits, cfg, 0.5, DeviceConfig(), WriteVerifyConfig(),
                    snapshot_epochs=(1, 2, 3), **kw)
    assert sorted(long.snapshots) == [1, 2, 3]
    assert torch.equal(long.snapshots[3]["tsb.shared.weight"], long.blocks["tsb.shared.weight"])
    for e in (1, 2):
        short = finetune(model, tiny_digits, dataclasses.replace(cfg, epochs=e), 0.5, DeviceConfig(),
                         WriteVerifyConfig(), **kw)
        assert torch.equal(short.blocks["tsb.shared.weight"], long.snapshots[e]["tsb.shared.weight"])
    assert not torch.equal(long.snapshots[1]["tsb.shared.weight"], long.snapshots[2]["tsb.shared.weight"])
    with pytest.raises(ValueError, match="snapshot_epochs"):
        finetune(model, tiny_digits, cfg, 0.5, DeviceConfig(), WriteVerifyConfig(),
                 snapshot_epochs=(4,), **kw)


def _exp(**tsb):
    from tsblib.config import AblationConfig, ExperimentConfig
    return ExperimentConfig(model="lenet3", tsb=TSBConfig(**tsb), ablation=AblationConfig(widths=(4, 16)))


def _row(width, lr, epochs, acc, selected=False):
    return {"model": "lenet3", "width": width, "lr": lr, "epochs": epochs, "sigma": 0.5, "chips": 2,
            "val_acc_mean": acc, "val_acc_ci95": 0.01, "selected": selected}


def test_best_setting_breaks_ties_by_fewer_epochs_then_smaller_lr():
    from tsblib.methods.tsb_finetune import _best

    rows = [_row(8, 0.01, 4, 0.9), _row(8, 0.001, 4, 0.9), _row(8, 0.01, 2, 0.9), _row(8, 0.1, 1, 0.8)]
    assert _best(rows) is rows[2]
    rows.append(_row(8, 0.1, 2, 0.9))
    rows.append(_row(8, 0.003, 2, 0.9))
    assert _best(rows) is rows[-1]


def test_selection_edges_flag_choices_at_the_edge_of_their_range():
    from tsblib.methods.tsb_finetune import selection_edges

    exp = _exp(width=8, lr=(0.001, 0.01, 0.1), select_epochs=(1, 2, 4), select_width=True)
    rows = [_row(w, lr, e, 0.5) for w in (4, 8, 16) for lr in exp.tsb.lr for e in (1, 2, 4)]
    best = next(r for r in rows if (r["width"], r["lr"], r["epochs"]) == (8, 0.01, 4))
    best.update(val_acc_mean=0.9, selected=True)
    next(r for r in rows if r["width"] == 4 and r["lr"] == 0.1)["val_acc_mean"] = 0.95
    rows.append({**_row(8, 0.01, 4, 0.99), "model": "vgg8"})  # another model's row: ignored
    edges = selection_edges(rows, exp)
    assert edges == {
        "lr": {"chosen": 0.01, "searched": [0.001, 0.01, 0.1], "at_edge": None},
        "epochs": {"chosen": 4, "searched": [1, 2, 4], "at_edge": "upper"},
        "width": {"chosen": 4, "stated": 8, "searched": [4, 8, 16], "at_edge": "lower"}}
    # rows read back from tsb_lr.csv (text) give the same answer
    text = [{k: str(v) for k, v in r.items()} for r in rows]
    assert selection_edges(text, exp) == edges
    # nothing searched: each setting is its single value, never at an edge
    single = _exp(width=8, epochs=3)
    assert selection_edges([], single) == {
        "lr": {"chosen": 0.01, "searched": [0.01], "at_edge": None},
        "epochs": {"chosen": 3, "searched": [3], "at_edge": None}}


def test_select_epochs_is_validated():
    from tsblib.config import ConfigError

    TSBConfig(select_epochs=(1, 3)).validate()
    for bad in ((0,), (2, 2)):
        with pytest.raises(ConfigError, match="tsb.select_epochs"):
            TSBConfig(select_epochs=bad).validate()


def test_tsb_images_larger_than_the_training_split_is_refused_clearly(tiny_digits):
    from tsblib.config import ConfigError
    from tsblib.execution.tsb_finetune import check_finetune_images, finetune_images

    n = len(tiny_digits.train)
    with pytest.raises(ConfigError) as err:
        check_finetune_images(tiny_digits, TSBConfig(images=5000), "lenet3")
    assert str(err.value).startswith(
        f"models.lenet3: tsb.images = 5000 is larger than the training split ({n} images); "
        f"allowed: 0 (all) or 1..{n}")
    check_finetune_images(tiny_digits, TSBConfig(images=0, batch_size=50))
    check_finetune_images(tiny_digits, TSBConfig(images=n, batch_size=50))
    check_finetune_images(tiny_digits, TSBConfig(images=100, batch_size=128))  # a warning only
    assert finetune_images(tiny_digits, TSBConfig(images=100, batch_size=128)) == 0
    # images per epoch actually used: whole mini-batches of the fine-tuning subset
    assert finetune_images(tiny_digits, TSBConfig(images=0, batch_size=50)) == n // 50 * 50
    assert finetune_images(tiny_digits, TSBConfig(images=120, batch_size=50)) == 100


@pytest.mark.parametrize("name", ["lenet3", "resnet18"])
def test_tsb_chips_share_the_baselines_device_error_draw(name):
    """Chip k of a method programmed once and chip k of TSB (its backbone, before the block) are
    the same draw of normalised device errors, so every comparison is paired (DESIGN section 6):
    with the same weights, the programmed backbones are identical."""
    from tsblib.execution.tsb_finetune import tsb_model
    from tsblib.variation import mapped_weight_names, sample_chips

    base = build_model(name, seed=0) if name == "lenet3" else build_model(name, seed=0, width=0.25,
                                                                         multiple=4)
    with_block = tsb_model(base, TSBConfig(width=4))  # a copy: the base keeps no block
    seeds = [chip_seed(1000, 0.5, k, "chip") for k in range(3)]
    plain = sample_chips(dict(base.named_parameters()), mapped_weight_names(base), 0.5,
                         DeviceConfig(), seeds)
    tsb = programmed_backbones(with_block, 0.5, DeviceConfig(), seeds)
    assert len(plain) == len(tsb) == len(backbone_names(with_block))
    for (_, a), (_, b) in zip(plain.items(), tsb.items()):
        assert torch.equal(a, b)
    other = programmed_backbones(with_block, 0.5, DeviceConfig(),
                                 [chip_seed(1000, 0.5, k, "chip") for k in range(3, 6)])
    assert not torch.equal(next(iter(other.values())), next(iter(tsb.values())))
