import torch

from tsblib.data import Batches
from tsblib.execution.bnrecal import bn_buffer_names, recalibrate, recalibrate_chips
from tsblib.models import build_model


def test_recalibration_estimates_the_chip_statistics_and_leaves_the_model_alone(tiny_digits):
    model = build_model("lenet3").eval()
    before = {n: b.clone() for n, b in model.named_buffers()}
    batches = list(Batches(tiny_digits.train, 100, mean=tiny_digits.mean, std=tiny_digits.std))
    chip = {"conv1.weight": model.conv1.weight.detach() * 2}
    stats = recalibrate(model, chip, batches)
    assert set(stats) == set(bn_buffer_names(model))
    with torch.no_grad():
        x = torch.cat([b[0] for b in batches])
        expected = torch.nn.functional.conv2d(x, chip["conv1.weight"]).mean(dim=(0, 2, 3))
    assert torch.allclose(stats["bn1.running_mean"], expected, atol=1e-4)
    assert all(torch.equal(before[n], b) for n, b in model.named_buffers())


def test_recalibrate_chips_stacks_per_chip_statistics(tiny_digits):
    model = build_model("lenet3").eval()
    batches = list(Batches(tiny_digits.train, 100, mean=tiny_digits.mean, std=tiny_digits.std))[:1]
    w = model.conv1.weight.detach()
    stacked = recalibrate_chips(model, {"conv1.weight": torch.stack([w, 3 * w])}, batches)
    assert stacked["bn1.running_mean"].shape == (2, 16)
    assert torch.allclose(stacked["bn1.running_mean"][1], 3 * stacked["bn1.running_mean"][0], atol=1e-4)
