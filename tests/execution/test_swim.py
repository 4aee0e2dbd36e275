import pytest
import torch
from torch import nn

from tsblib.config import DeviceConfig
from tsblib.data import Batches
from tsblib.execution.swim import (fisher_diagonal, fisher_sensitivity, picks_per_layer,
                                   top_fraction_mask)
from tsblib.models import BatchNorm2d, build_model
from tsblib.variation import error_std_factor, mapped_weight_names

CPU = torch.device("cpu")


class TinyNet(nn.Module):
    """conv -> BN (tsblib's) -> ReLU -> conv -> BN (torch's) -> ReLU -> linear (with bias)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, bias=False)
        self.bn1 = BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 4, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 2 * 2, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


def _tiny_setup(sizes=(5, 3)):
    """A float64 TinyNet with non-trivial BN statistics and a few random batches."""
    model = TinyNet().double()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    model.eval()
    batches = [(torch.randn(n, 1, 6, 6, dtype=torch.float64), torch.randint(0, 5, (n,)))
               for n in sizes]
    return model, ["conv1.weight", "conv2.weight", "fc.weight"], batches


def _brute_force_fisher(model, names, batches):
    """mean over samples of the squared gradient of each sample's own loss (a Python loop)."""
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(params[n]) for n in names}
    count = 0
    for x, y in batches:
        for i in range(x.shape[0]):
            loss = nn.functional.cross_entropy(model(x[i:i + 1]), y[i:i + 1])
            grads = torch.autograd.grad(loss, [params[n] for n in names])
            for n, g in zip(names, grads):
                total[n] += g ** 2
            count += 1
    return {n: t / count for n, t in total.items()}


def _squared_mean_gradient(model, names, batches):
    """The former score: the square of the batch-mean loss gradient, averaged over batches."""
    params = dict(model.named_parameters())
    total = {n: torch.zeros_like(params[n]) for n in names}
    for x, y in batches:
        loss = nn.functional.cross_entropy(model(x), y)
        for n, g in zip(names, torch.autograd.grad(loss, [params[n] for n in names])):
            total[n] += g ** 2
    return {n: t / len(batches) for n, t in total.items()}


def test_fisher_diagonal_equals_brute_force_per_sample_gradients():
    model, names, batches = _tiny_setup()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    expected = _brute_force_fisher(model, names, batches)
    model.train()  # must be evaluated in eval mode, and every module's mode restored
    model.bn2.eval()
    for chunk in (1, 2, None):  # chunks that split batches unevenly, and the automatic one
        got = fisher_diagonal(model, names, batches, chunk=chunk)
        assert set(got) == set(names)
        for n in names:
            assert got[n].dtype == torch.float64
            assert torch.allclose(got[n], expected[n], rtol=1e-9, atol=1e-15), n
    assert model.training and model.bn1.training and not model.bn2.training
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    assert all(bn.num_batches_tracked == 0 for bn in (model.bn1, model.bn2))
    with pytest.raises(ValueError, match="chunk = 0"):
        fisher_diagonal(model, names, batches, chunk=0)


def test_score_is_per_sample_not_squared_batch_mean_gradient():
    model, names, batches = _tiny_setup(sizes=(32,))
    new = fisher_diagonal(model, names, batches)
    old = _squared_mean_gradient(model, names, batches)
    for n in names:
        # Jensen: mean g_i^2 >= (mean g_i)^2, with equality only if all samples agree.
        assert (new[n].double() >= old[n] - 1e-12).all()
        assert new[n].sum() > 3 * old[n].sum(), n
        assert not torch.allclose(new[n].double(), old[n], rtol=0.5)


class DiagonalModel(nn.Module):
    """out = (x[:, :3] * a, x[:, 3:] * b): with a squared-error loss the Hessian is diagonal."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor([1.0, -0.5, 0.8], dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor([2.0, 1.0, -1.5], dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[:, :3] * self.a, x[:, 3:] * self.b], dim=1)


def test_ranking_matches_known_hessian_of_diagonal_quadratic_loss():
    # L = 1/2 ||W x - y||^2 with y = W x + unit noise: H_jj = mean x_j^2, and at W the
    # expected per-sample squared gradient equals H_jj (Fisher = Hessian), while the mean
    # gradient is ~0: the squared batch-mean gradient would rank by noise.
    model = DiagonalModel()
    scales = torch.tensor([1.0, 4.0, 16.0, 0.5, 2.0, 8.0], dtype=torch.float64).sqrt()
    gen = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(8):
        x = torch.randn(500, 6, generator=gen, dtype=torch.float64) * scales
        with torch.no_grad():
            y = model(x) + torch.randn(500, 6, generator=gen, dtype=torch.float64)
        batches.append((x, y))
    hessian = torch.cat([x for x, _ in batches]).square().mean(0)

    def loss(out, target):
        return 0.5 * (out - target).square().sum(1).mean()

    fisher = fisher_diagonal(model, ["a", "b"], batches, loss=loss)
    got = torch.cat([fisher["a"], fisher["b"]]).double()
    assert torch.allclose(got, hessian, rtol=0.15)
    assert torch.equal(torch.argsort(got), torch.argsort(hessian))

    device = DeviceConfig()
    sens = fisher_sensitivity(model, ["a", "b"], batches, device, sigma=0.5, loss=loss)
    var = torch.tensor([(error_std_factor(device) * 0.5 * 1.0) ** 2] * 3
                       + [(error_std_factor(device) * 0.5 * 2.0) ** 2] * 3, dtype=torch.float64)
    true_increase = 0.5 * hessian * var  # exact expected loss increase of this quadratic
    score = torch.cat([sens["a"], sens["b"]]).double()
    assert torch.allclose(score, true_increase, rtol=0.15)
    # var differs between layers, so this order is not the H order: the layer scale counts.
    assert not torch.equal(torch.argsort(true_increase), torch.argsort(hessian))
    assert torch.equal(torch.argsort(score), torch.argsort(true_increase))
    masks = top_fraction_mask(sens, 50)
    top3 = torch.zeros(6, dtype=torch.bool)
    top3[torch.argsort(true_increase, descending=True)[:3]] = True
    assert torch.equal(torch.cat([masks["a"], masks["b"]]), top3)

    old = {n: g for n, g in zip(["a", "b"], torch.autograd.grad(
        sum(loss(model(x), y) for x, y in batches) / len(batches), [model.a, model.b]))}
    old = torch.cat([old["a"], old["b"]]).square()
    assert old.max() < 0.05 * hessian.min()  # the former score is noise here ...
    assert not torch.equal(torch.argsort(old), torch.argsort(hessian))  # ... and misranks


def test_top_fraction_picks_exactly_the_most_sensitive_weights():
    sens = {"a": torch.tensor([0.1, 5.0, 0.2]), "b": torch.tensor([[3.0, 0.0], [4.0, 0.3]])}
    masks = top_fraction_mask(sens, 100 * 3 / 7)
    assert masks["a"].tolist() == [False, True, False]
    assert masks["b"].tolist() == [[True, False], [True, False]]
    assert picks_per_layer(masks) == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="percent = 0"):
        top_fraction_mask(sens, 0)


@pytest.mark.parametrize("percent", [0.35, 1.0, 3.0, 10.0, 100 / 3, 100.0])
def test_top_fraction_is_one_global_top_k_with_exact_count(percent):
    gen = torch.Generator().manual_seed(3)
    # Integer scores: many ties, across layers of different sizes and shapes.
    sens = {"conv1": torch.randint(0, 5, (4, 1, 3, 3), generator=gen).float(),
            "conv2": torch.randint(0, 5, (8, 4, 3, 3), generator=gen).float() / 2,
            "fc": torch.randint(0, 5, (10, 32), generator=gen).float() * 2}
    total = sum(s.numel() for s in sens.values())
    masks = top_fraction_mask(sens, percent)
    counts = picks_per_layer(masks)
    assert sum(counts.values()) == round(percent / 100 * total)
    assert all(masks[n].shape == sens[n].shape and masks[n].dtype == torch.bool for n in sens)
    chosen = torch.cat([sens[n][masks[n]] for n in sens])
    rest = torch.cat([sens[n][~masks[n]] for n in sens])
    if len(chosen) and len(rest):
        assert chosen.min() >= rest.max()  # a global threshold, not a per-layer quota


def test_ties_are_broken_by_position():
    masks = top_fraction_mask({"a": torch.zeros(3), "b": torch.zeros(4)}, 100 * 4 / 7)
    assert masks["a"].tolist() == [True, True, True]
    assert masks["b"].tolist() == [True, False, False, False]
    big = {"a": torch.zeros(3000), "b": torch.ones(50), "c": torch.zeros(6950)}
    masks = top_fraction_mask(big, 10)  # 1000 picks: the 50 ones, then the first 950 zeros
    assert picks_per_layer(masks) == {"a": 950, "b": 50, "c": 0}
    assert masks["a"][:950].all() and not masks["a"][950:].any()


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
    fisher = fisher_diagonal(model, names, batches)
    scale = error_std_factor(DeviceConfig()) * model.conv1.weight.detach().abs().max()
    assert torch.allclose(sens["conv1.weight"], 0.5 * fisher["conv1.weight"] * scale ** 2)


def test_lenet3_one_percent_picks_are_not_all_in_conv1(tiny_digits):
    model = build_model("lenet3", seed=0).eval()
    names = mapped_weight_names(model)
    batches = list(Batches(tiny_digits.train, 100, mean=tiny_digits.mean, std=tiny_digits.std,
                           device=CPU))
    masks = top_fraction_mask(fisher_sensitivity(model, names, batches, DeviceConfig()), 1.0)
    counts = picks_per_layer(masks)
    total = sum(dict(model.named_parameters())[n].numel() for n in names)
    assert sum(counts.values()) == round(0.01 * total)
    assert counts["conv1.weight"] < sum(counts.values()), counts
    assert counts["fc.weight"] > 0, counts


@pytest.mark.parametrize("name", ["vgg8", "resnet18"])
def test_bn_models_match_brute_force(name):
    model = build_model(name, seed=0).eval()
    names = mapped_weight_names(model)
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(2, 3, 32, 32, generator=gen), torch.tensor([1, 7]))]
    got = fisher_diagonal(model, names, batches, chunk=2)
    expected = _brute_force_fisher(model, names, batches)
    for n in names:
        assert torch.allclose(got[n], expected[n], rtol=1e-3, atol=1e-9 * expected[n].max()), n
