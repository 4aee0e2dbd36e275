import pytest
import torch
from scipy import stats

from tsblib.config import DeviceConfig
from tsblib.data import Batches
from tsblib.chipstats import summarize
from tsblib.execution.evaluate import accuracy, monte_carlo
from tsblib.models import build_model
from tsblib.variation import mapped_weight_names


def _trained_lenet(data):
    model = build_model("lenet3")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    batches = Batches(data.train, 50, mean=data.mean, std=data.std, shuffle=True,
                      generator=torch.Generator().manual_seed(0))
    model.train()
    for _ in range(2):
        for x, y in batches:
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def setup(tiny_digits):
    model = _trained_lenet(tiny_digits)
    test = list(Batches(tiny_digits.test, 64, mean=tiny_digits.mean, std=tiny_digits.std))
    return model, test


def test_monte_carlo_at_sigma_zero_equals_clean_accuracy(setup):
    model, test = setup
    clean = accuracy(model, test)
    assert clean > 0.5  # the model learned something, so the comparison means something
    stats_ = monte_carlo(model, mapped_weight_names(model), 0.0, DeviceConfig(), test, chips=3,
                         seed=1, chip_batch=2, progress=False)
    assert stats_.accuracies == (clean, clean, clean)
    assert stats_.std == 0.0


def _counting_chip_accuracies(monkeypatch):
    import tsblib.execution.evaluate as evaluate_module

    calls = []
    real = evaluate_module.chip_accuracies

    def counting(model, stacked, *args, **kw):
        calls.append(next(iter(stacked.values())).shape[0])
        return real(model, stacked, *args, **kw)

    monkeypatch.setattr(evaluate_module, "chip_accuracies", counting)
    return calls


def test_ideal_chips_are_evaluated_once_per_group_shape(setup, monkeypatch):
    model, test = setup
    names = mapped_weight_names(model)
    calls = _counting_chip_accuracies(monkeypatch)
    ideal = monte_carlo(model, names, 0.0, DeviceConfig(), test, chips=7, seed=1, chip_batch=3,
                        progress=False)
    # groups of 3, 3 and 1 chips: the second equals the first, the last has another shape
    assert calls == [3, 1]
    assert ideal.accuracies == (accuracy(model, test),) * 7
    calls.clear()
    monte_carlo(model, names, 0.4, DeviceConfig(), test, chips=6, seed=1, chip_batch=3,
                progress=False)
    assert calls == [3, 3]  # chips with variation are always evaluated


def test_ideal_chips_that_a_per_chip_hook_makes_differ_are_evaluated(setup, monkeypatch):
    model, test = setup
    names = mapped_weight_names(model)
    calls = _counting_chip_accuracies(monkeypatch)

    def shifted(index, stacked):  # e.g. blocks fine-tuned per chip: chip k's weights differ
        return {n: w + 0.01 * torch.tensor(index, dtype=w.dtype).view(-1, *[1] * (w.dim() - 1))
                for n, w in stacked.items()}, {}

    stats_ = monte_carlo(model, names, 0.0, DeviceConfig(), test, chips=4, seed=1, chip_batch=2,
                         per_chip=shifted, progress=False)
    assert calls == [2, 2]
    assert len(stats_.accuracies) == 4


def test_results_do_not_depend_on_the_chip_batch_size(setup):
    model, test = setup
    names = mapped_weight_names(model)
    runs = [monte_carlo(model, names, 0.4, DeviceConfig(), test, chips=7, seed=3, chip_batch=b,
                        progress=False).accuracies for b in (1, 3, 7)]
    assert runs[0] == runs[1] == runs[2]
    assert len(set(runs[0])) > 1  # chips differ from one another


def test_variation_lowers_accuracy(setup):
    model, test = setup
    names = mapped_weight_names(model)
    clean = accuracy(model, test)
    noisy = monte_carlo(model, names, 0.8, DeviceConfig(), test, chips=4, seed=3, chip_batch=4,
                        progress=False)
    assert noisy.mean < clean


def test_summary_statistics_match_scipy():
    accs = [0.9, 0.8, 0.85, 0.95, 0.7]
    s = summarize(accs)
    assert s.mean == pytest.approx(sum(accs) / 5)
    assert s.std == pytest.approx(stats.tstd(accs))
    lo, hi = stats.t.interval(0.95, 4, loc=s.mean, scale=stats.sem(accs))
    assert s.ci95 == pytest.approx((hi - lo) / 2)
    assert s.chips == 5


def test_chip_yield_percentiles_and_fractions_within_one_and_two_points():
    from tsblib.chipstats import chip_yield

    accs = [0.90, 0.95, 0.96, 0.97, 0.98] * 20  # 100 chips
    out = chip_yield(accs, reference=0.97)
    assert out["acc_p01"] == pytest.approx(0.90) and out["acc_p50"] == pytest.approx(0.96)
    assert out["acc_p05"] == pytest.approx(0.90)
    assert out["yield_1pt"] == pytest.approx(0.6)  # 0.96, 0.97, 0.98 (0.96 exactly one point)
    assert out["yield_2pt"] == pytest.approx(0.8)
    assert chip_yield([0.5, 0.7], 0.7)["acc_p50"] == pytest.approx(0.6)  # linear interpolation
