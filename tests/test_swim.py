import torch

from tsblib.config import DeviceConfig
from tsblib.data import Batches
from tsblib.methods.swim import fisher_sensitivity, top_fraction_mask
from tsblib.models import build_model
from tsblib.variation import mapped_weight_names

import pytest


def test_top_fraction_picks_exactly_the_most_sensitive_weights():
    sens = {"a": torch.tensor([0.1, 5.0, 0.2]), "b": torch.tensor([[3.0, 0.0], [4.0, 0.3]])}
    masks = top_fraction_mask(sens, 100 * 3 / 7)
    assert masks["a"].tolist() == [False, True, False]
    assert masks["b"].tolist() == [[True, False], [True, False]]
    with pytest.raises(ValueError, match="percent = 0"):
        top_fraction_mask(sens, 0)


def test_fisher_sensitivity_is_nonnegative_and_scaled_by_layer_noise(tiny_digits):
    model = build_model("lenet3").eval()
    names = mapped_weight_names(model)
    batches = list(Batches(tiny_digits.train, 100, mean=tiny_digits.mean, std=tiny_digits.std))[:2]
    sens = fisher_sensitivity(model, names, batches, DeviceConfig(), sigma=1.0)
    assert set(sens) == set(names)
    assert all((s >= 0).all() and s.shape == dict(model.named_parameters())[n].shape
               for n, s in sens.items())
    double = fisher_sensitivity(model, names, batches, DeviceConfig(), sigma=2.0)
    assert torch.allclose(double["fc.weight"], 4 * sens["fc.weight"])
