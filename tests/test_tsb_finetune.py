import torch

from tsblib.config import DeviceConfig, FinetuneMode, RuntimeConfig, TSBConfig, WriteVerifyConfig
from tsblib.data import Batches
from tsblib.methods.tsb_finetune import backbone_names, finetune, programmed_backbones, read_back
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
    from tsblib.methods.tsb_finetune import finetune_split

    data = tiny_digits
    assert finetune_split(data, TSBConfig(images=0)) is data.train
    assert finetune_split(data, TSBConfig(images=10 ** 9)) is data.train
    a = finetune_split(data, TSBConfig(images=50))
    b = finetune_split(data, TSBConfig(images=50))
    assert len(a) == 50 and torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    # a subset of the training split, in its order
    rows = {tuple(img.flatten().tolist()) for img in data.train.images}
    assert all(tuple(img.flatten().tolist()) in rows for img in a.images)
