"""TSB + BN recalibration and NIT + block + BN recalibration (tsblib/methods/tsb_bnrecal.py)."""
import csv

import pytest
import torch
import yaml

from tsblib import io
from tsblib.execution.chipbatch import chip_batched
from tsblib.config import DeviceConfig, RuntimeConfig, TSBConfig, WriteVerifyConfig
from tsblib.profiles import load_profile
from tsblib.data import Batches
from tsblib.execution.evaluate import monte_carlo
from tsblib.execution import bnrecal
from tsblib.execution.context import calibration_batches
from tsblib.methods.registry import get_method, ordered
from tsblib.execution.tsb_finetune import (backbone_names, bn_statistics, finetune_chip_runs,
                                           programmed_backbones, tsb_model, written_blocks_hook)
from tsblib.paths import ProfilePaths
from tsblib.pipeline import run_stage
from tsblib.variation import chip_seed, mapped_weight_names
from test_evaluate import _trained_lenet

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def setup(tiny_digits):
    backbone = _trained_lenet(tiny_digits)
    model = tsb_model(backbone, TSBConfig(width=8))
    calibration = calibration_batches(tiny_digits, 100, CPU, False)
    test = list(Batches(tiny_digits.test, 100, mean=tiny_digits.mean, std=tiny_digits.std))
    return backbone, model, calibration, test


def test_gradients_reach_the_block_through_per_chip_batchnorm_statistics(setup, tiny_digits):
    _, model, calibration, _ = setup
    seeds = [chip_seed(0, 0.5, k, "chip") for k in range(2)]
    chips = programmed_backbones(model, 0.5, DeviceConfig(), seeds)
    buffers = bn_statistics(model, 0.5, DeviceConfig(), seeds, calibration)
    assert buffers["bn1.running_mean"].shape == (2, 16)
    # per chip, and not the model's own statistics
    assert not torch.equal(buffers["bn1.running_mean"][0], buffers["bn1.running_mean"][1])
    block = torch.zeros(2, 8, 8, requires_grad=True)
    x, y = next(iter(Batches(tiny_digits.train, 64, mean=tiny_digits.mean, std=tiny_digits.std)))
    for chip_buffers in (buffers, None):
        batched = chip_batched(model, {**chips, "tsb.shared.weight": block}, chip_buffers)
        loss = torch.nn.functional.cross_entropy(batched(x).flatten(0, 1), y.repeat(2))
        grad, = torch.autograd.grad(loss, block)
        assert grad.abs().sum(dim=(1, 2)).min() > 0  # every chip's block gets a gradient
        if chip_buffers is None:
            assert not torch.allclose(grad, with_buffers)  # the statistics matter
        with_buffers = grad


def test_at_sigma_zero_with_a_zero_block_it_is_nit_bn_recalibration(setup):
    backbone, model, calibration, test = setup
    seeds = [chip_seed(1000, 0.0, 0, "chip")]
    ours = bn_statistics(model, 0.0, DeviceConfig(), seeds, calibration)
    programmed = programmed_backbones(backbone, 0.0, DeviceConfig(), seeds)
    nit = bnrecal.recalibrate_chips(backbone, programmed, calibration)
    assert set(ours) == set(nit)
    for n in nit:
        assert torch.allclose(ours[n], nit[n], rtol=0, atol=1e-6), n
    zero = {"tsb.shared.weight": torch.zeros(1, 8, 8)}
    hook = written_blocks_hook(model, zero, 0.0, 1000, DeviceConfig(), WriteVerifyConfig(), False,
                               CPU, buffers=ours)
    block = monte_carlo(model, backbone_names(model), 0.0, DeviceConfig(), test, chips=1,
                        seed=1000, chip_batch=1, tag="chip", per_chip=hook, progress=False)
    recal = monte_carlo(backbone, mapped_weight_names(backbone), 0.0, DeviceConfig(), test,
                        chips=1, seed=1000, chip_batch=1, tag="chip", progress=False,
                        per_chip=bnrecal.recalibration_hook(backbone, calibration))
    assert block.accuracies == recal.accuracies


def test_evaluation_uses_the_statistics_the_fine_tuning_used(setup, tiny_digits):
    from tsblib.config import EvaluationConfig, ExperimentConfig

    _, model, calibration, _ = setup
    exp = ExperimentConfig(model="lenet3", evaluation=EvaluationConfig(tsb_chips=3, seed=7))
    cfg = TSBConfig(width=8, epochs=1, batch_size=60, images=120, chip_batch=2)
    runs = finetune_chip_runs(model, tiny_digits, exp, cfg, 0.5, DeviceConfig(), WriteVerifyConfig(),
                              CPU, RuntimeConfig(), 0.01, progress=False, calibration=calibration)
    assert runs.chips == 3 and runs.blocks["tsb.shared.weight"].shape == (3, 8, 8)
    assert runs.bn_images == sum(y.numel() for _, y in calibration)
    # recomputed deterministically on the programmed backbone with the block at zero
    again = bn_statistics(model, 0.5, DeviceConfig(), [chip_seed(7, 0.5, k, "chip") for k in range(3)],
                          calibration)
    assert all(torch.equal(again[n], runs.buffers[n]) for n in again)
    # and the deployment hook hands each chip exactly its fine-tuning statistics
    hook = written_blocks_hook(model, runs.blocks, 0.5, 7, DeviceConfig(), WriteVerifyConfig(),
                               False, CPU, buffers=runs.buffers)
    _, buffers = hook([1, 2], {})
    assert all(torch.equal(buffers[n], runs.buffers[n][[1, 2]]) for n in buffers)


def test_methods_are_registered_after_tsb():
    tsb, bn, nit = (get_method(m) for m in ("tsb", "tsb_bnrecal", "nit_block_bnrecal"))
    assert bn.trained_from == "tsb_backbone" and nit.trained_from == "nit"
    assert tsb.order < bn.order < nit.order
    assert [s.name for s in ordered(["nit_block_bnrecal", "tsb", "tsb_bnrecal"])] == \
        ["tsb", "tsb_bnrecal", "nit_block_bnrecal"]


def test_finetune_and_evaluate_stages_run_both_methods(tmp_path):
    profile = {
        "runtime": {"device": "cpu"},
        "data": {"dataset": "mnist-embedded", "train_limit": 300, "test_limit": 100},
        "models": {"lenet3": {}},
        "train": {"epochs": 2, "batch_size": 50, "val_chips": 5},
        "methods": {"methods": ["clean", "nit", "tsb_bnrecal", "nit_block_bnrecal"],
                    "nit_bnrecal": {"images": 100}},
        "tsb": {"width": 8, "epochs": 1, "select_epochs": [1, 2], "lr": [1e-2], "batch_size": 50,
                "chip_batch": 2, "images": 100},
        # a secondary method is fine-tuned and evaluated at sigma 0 and secondary_sigmas only
        "evaluation": {"sigmas": [0.0, 0.2, 0.4], "operating_sigma": 0.4, "chips": 2,
                       "tsb_chips": 2, "chip_batch": 2, "batch_size": 100,
                       "secondary_methods": ["nit_block_bnrecal"], "secondary_sigmas": [0.4]},
        "ablation": {"widths": [], "placements": [], "sharings": [], "modes": [], "sigma_reads": []},
    }
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"profile": "t", "profiles": {"t": profile}}))
    prof = load_profile(params, "t")
    paths = ProfilePaths("t", tmp_path)
    for stage in ("prepare", "train", "finetune", "evaluate"):
        run_stage(stage, prof, paths, progress=False)
    model_paths = paths.for_model("lenet3")
    with open(model_paths.result("finetune.csv")) as fh:
        rows = list(csv.DictReader(fh))
    with open(model_paths.result("tsb_lr.csv")) as fh:
        lr_rows = list(csv.DictReader(fh))
    assert {r["epochs"] for r in lr_rows} == {"1", "2"}
    chosen = [r for r in lr_rows if r["selected"] == "True"][0]["epochs"]
    assert {(r["method"], float(r["sigma"])) for r in rows} == {
        ("tsb_bnrecal", 0.0), ("tsb_bnrecal", 0.2), ("tsb_bnrecal", 0.4),
        ("nit_block_bnrecal", 0.0), ("nit_block_bnrecal", 0.4)}
    assert all(r["epochs"] == chosen and r["images"] == "100" and r["bn_images"] == "250"
               for r in rows)
    ckpt = io.load_checkpoint(model_paths.finetune_checkpoint("lenet3", "tsb_bnrecal"), "finetune")
    assert ckpt["buffers"][repr(0.4)]["bn1.running_mean"].shape == (2, 16)
    with open(model_paths.result("chips.csv")) as fh:
        chips = list(csv.DictReader(fh))
    for m in ("tsb_bnrecal", "nit_block_bnrecal"):
        assert len([r for r in chips if r["method"] == m and r["sigma"] == "0.4"]) == 2
        assert len([r for r in chips if r["method"] == m and r["sigma"] == "0.0"]) == 1
    assert {r["sigma"] for r in chips if r["method"] == "nit_block_bnrecal"} == {"0.0", "0.4"}
