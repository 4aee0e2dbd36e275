import copy

import pytest
import torch

from tsblib.config import Placement, Sharing, TSBConfig
from tsblib.models import INPUT_SHAPES, MODELS, build_model
from tsblib.tsb import BatchNormTSB, insert_tsb, tsb_overhead, tsb_weight_names

WIDTH = {"lenet3": 8, "vgg8": 64, "resnet18": 64}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_inserting_the_block_leaves_outputs_unchanged(name):
    model = build_model(name).eval()
    x = torch.randn(2, *INPUT_SHAPES[name])
    before = model(x)
    insert_tsb(model, TSBConfig(width=WIDTH[name]))
    assert torch.equal(model(x), before)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_block_is_under_0_4_percent_of_the_backbone(name):
    model = insert_tsb(build_model(name), TSBConfig(width=WIDTH[name]))
    overhead = tsb_overhead(model, INPUT_SHAPES[name])
    assert overhead.block_weights == WIDTH[name] ** 2
    assert overhead.fraction < 0.004
    assert 0 < overhead.added_macs < overhead.backbone_macs


def test_lenet3_overhead_is_exact():
    model = insert_tsb(build_model("lenet3"), TSBConfig(width=8))
    o = tsb_overhead(model, (1, 28, 28))
    assert o.backbone_weights == 400 + 12800 + 5120
    # 16 x 24 x 24 and 32 x 8 x 8 feature maps, 8 MACs per output element
    assert o.added_macs == 8 * (16 * 24 * 24 + 32 * 8 * 8)
    assert o.insertion_points == 2


def test_one_block_is_shared_by_every_insertion_point():
    model = insert_tsb(build_model("resnet18"), TSBConfig(width=64))
    assert tsb_weight_names(model) == ["tsb.shared.weight"]
    wrapped = [m for m in model.modules() if isinstance(m, BatchNormTSB)]
    assert len(wrapped) == 20
    # every insertion point contributes to the block's gradient
    model.eval()
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert model.tsb.shared.weight.grad.abs().sum() > 0


def test_per_width_sharing_has_one_block_per_width():
    model = insert_tsb(build_model("vgg8"), TSBConfig(width=64, sharing=Sharing.PER_WIDTH))
    assert sorted(tsb_weight_names(model)) == ["tsb.w128.weight", "tsb.w256.weight",
                                               "tsb.w512.weight", "tsb.w64.weight"]


@pytest.mark.parametrize("placement,count", [(Placement.ALL, 2), (Placement.FIRST, 1),
                                             (Placement.LAST, 1), (Placement.FIRST_HALF, 1),
                                             (Placement.SECOND_HALF, 1)])
def test_placement(placement, count):
    model = insert_tsb(build_model("lenet3"), TSBConfig(width=8, placement=placement))
    assert sum(isinstance(m, BatchNormTSB) for m in model.modules()) == count


def test_width_must_divide_every_insertion_width():
    with pytest.raises(ValueError, match=r"tsb.width = 12 does not divide"):
        insert_tsb(build_model("lenet3"), TSBConfig(width=12))


def test_the_block_acts_on_groups_of_c_channels():
    model = insert_tsb(build_model("lenet3"), TSBConfig(width=8)).eval()
    block = model.tsb.shared
    with torch.no_grad():
        block.weight.copy_(torch.randn(8, 8))
    x = torch.randn(1, 16, 3, 3)
    y = block(x)
    for g in range(2):
        expected = x[0, 8 * g:8 * g + 8] + torch.einsum("oi,ihw->ohw", block.weight, x[0, 8 * g:8 * g + 8])
        assert torch.allclose(y[0, 8 * g:8 * g + 8], expected, atol=1e-5)


def test_deepcopy_keeps_the_copy_independent():
    model = insert_tsb(build_model("lenet3"), TSBConfig(width=8)).eval()
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.tsb.shared.weight.fill_(0.5)
    x = torch.randn(2, 1, 28, 28)
    assert not torch.equal(model(x), twin(x))
    assert model.tsb.shared.weight.abs().sum() == 0
