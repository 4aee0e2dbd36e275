"""The claims read at equal accuracy on paired chips (tsblib/verdicts.py): each reading can come
out either way, and the constructed edge cases (TSB above its own reference, NIT never reaching
TSB, a baseline both cheaper and more accurate) get the verdict the specification asks for."""
import dataclasses

import numpy as np
import pytest

from tsblib.deployment import PricedPlans
from tsblib.profiles import profile_from_dict
from tsblib.stages.mapping import mapping_rows
from tsblib.verdicts import (equal_accuracy_percent, equal_accuracy_speedup, losses, model_claims,
                             seed_spread, training_plateau)

SIGMA = 0.5
PROFILE = {
    "data": {"dataset": "mnist-embedded"},
    "train": {"epochs": 10, "sigma_train": SIGMA},
    "methods": {"methods": ["clean", "nit", "nit_bnrecal", "swim", "full_wv", "tsb"],
                "swim": {"p_percent": [1.0, 10.0], "default_p": 1.0}},
    "tsb": {"width": 8, "images": 100, "epochs": 2},
    "evaluation": {"sigmas": [0.0, SIGMA], "operating_sigma": SIGMA, "chips": 8, "tsb_chips": 6},
    "ablation": {"widths": [4, 8, 16]},
    "models": {"lenet3": {}},
}


def _profile():
    return profile_from_dict("t", PROFILE)


def _rows_and_accs(tsb_accs, tsb_clean=0.95, nit_shift=0.0, swim_time=None):
    """Summary rows and per-chip accuracies at SIGMA: chip k shares a chip effect across methods."""
    rng = np.random.default_rng(0)
    chip = 0.02 * rng.standard_normal(8)
    accs, rows = {}, []
    means = {"clean": 0.30, "nit": 0.80 + nit_shift, "nit_bnrecal": 0.85, "full_wv": 0.97}
    for method, p, m in [("clean", None, means["clean"]), ("nit", None, means["nit"]),
                         ("nit_bnrecal", None, means["nit_bnrecal"]), ("swim", 1.0, 0.86),
                         ("swim", 10.0, 0.93), ("full_wv", None, means["full_wv"])]:
        a = list(m + chip)
        accs[("lenet3", method, p, SIGMA)] = a
        rows.append(_row(method, p, float(np.mean(a)), 0.99 if method == "clean" else 0.97,
                         8, 1e-4 * (1 + (p or (100 if method == "full_wv" else 0)))))
    if swim_time is not None:
        rows[3]["mapping_time_s"] = swim_time
    a = list(tsb_accs)
    accs[("lenet3", "tsb", None, SIGMA)] = a
    rows.append(_row("tsb", None, float(np.mean(a)), tsb_clean, len(a), 1.05e-4))
    clean_ref = 0.99
    for r in rows:
        r["gap_ideal"] = clean_ref - r["acc_mean"]
    return rows, accs


def _row(method, p, mean, clean, chips, time_s):
    return {"model": "lenet3", "method": method, "swim_p_percent": p, "sigma": SIGMA,
            "chips": chips, "clean_acc": clean, "acc_mean": mean, "acc_std": 0.01,
            "acc_ci95": 0.01, "gap_own": clean - mean, "gap_ideal": None, "dataset": "d",
            "train_epochs": 5, "train_flops": 5e9, "mapping_time_s": time_s,
            "finetune_seconds_per_chip": 1.0}


COSTS = {"nit_flops_per_epoch": 1e9, "backbone_epochs": 2, "backbone_flops": 2e9,
         "finetune_images": 100, "finetune_passes": 2, "finetune_flops_per_chip": 1e8}


def _claims(rows, accs, trajectory=()):
    profile = _profile()
    exp = profile.experiments[0]
    plans = PricedPlans.from_rows(mapping_rows(profile, exp))
    return model_claims(profile, exp, rows, accs, COSTS, plans, list(trajectory), [], seed=0)


def test_tsb_above_its_own_reference_is_undecided_never_met():
    # TSB on chips (about 0.96) above its noise-free reference 0.95: its own gap is negative
    rows, accs = _rows_and_accs([0.960, 0.962, 0.958, 0.961, 0.959, 0.963], tsb_clean=0.95)
    c = _claims(rows, accs)
    own = c["gap_improvement_own"]
    assert own["meets_claim"] is None
    assert own["verdict_reason"] == "undecided (TSB at or above its own reference)"
    assert own["interval95"]["tsb_gap_reaches_zero"] is True
    # the ideal gap (one reference for all) still decides: NIT gap 0.19 / TSB gap 0.03 < 20
    assert c["gap_improvement_ideal"]["meets_claim"] is False


def test_a_large_ideal_gap_ratio_passes_on_its_lower_end():
    rows, accs = _rows_and_accs([0.986, 0.987, 0.985, 0.986, 0.987, 0.985], tsb_clean=0.99)
    c = _claims(rows, accs)
    ideal = c["gap_improvement_ideal"]
    assert ideal["interval95"]["low"] > 20 and ideal["meets_claim"] is True
    assert ideal["interval95"]["chips"] == 6  # paired: TSB's chips are the first 6 of 8


def test_paired_differences_and_where_tsb_loses():
    rows, accs = _rows_and_accs([0.84] * 3 + [0.85] * 3)
    c = _claims(rows, accs)
    nit = c["per_baseline"]["nit"]["tsb_minus_baseline"]
    assert nit["chips"] == 6 and nit["low"] > 0  # TSB above NIT on the same chips
    # SWIM at 1 % (0.86) is more accurate than TSB; make it cheaper too: TSB loses at equal cost
    rows, accs = _rows_and_accs([0.84] * 3 + [0.85] * 3, swim_time=0.5e-4)
    lost = {entry["baseline"] for entry in _claims(rows, accs)["loses_to"]}
    assert "swim@1" in lost and "swim" not in lost  # the default p is listed once
    assert losses({"mapping_time_s": 1.0}, {}) == []


def test_mapping_cost_is_compared_at_equal_accuracy():
    # TSB at 0.90: SWIM reaches it between 1 % (0.86) and 10 % (0.93), not full write-verify
    rows, accs = _rows_and_accs([0.90] * 6)
    m = _claims(rows, accs)["mapping_cost_reduction"]
    p = m["equal_accuracy_percent"]
    at = {point["percent"]: point["acc_mean"] for point in m["sweep"]}
    assert 1.0 < p < 10.0 and p == pytest.approx(1.0 + (0.90 - at[1.0]) / (at[10.0] - at[1.0]) * 9.0)
    assert m["full_wv_ratio"] > m["measured"]  # the old comparison flattered TSB
    # TSB below NIT programmed once: 0 % verified is as accurate, and cheaper: falls short
    rows, accs = _rows_and_accs([0.70] * 6)
    m = _claims(rows, accs)["mapping_cost_reduction"]
    assert m["equal_accuracy_percent"] == 0.0 and m["meets_claim"] is False
    # TSB above full write-verify: nothing is as accurate; the full-verify ratio is a lower bound
    rows, accs = _rows_and_accs([0.985] * 6)
    m = _claims(rows, accs)["mapping_cost_reduction"]
    assert m["equal_accuracy_percent"] is None and m["equal_accuracy"]["measured_lower_bound"]
    assert m["meets_claim"] is True


def test_equal_accuracy_percent_interpolates_and_stops():
    sweep = [(0.0, 0.80), (1.0, 0.86), (10.0, 0.93), (100.0, 0.97)]
    assert equal_accuracy_percent(sweep, 0.79) == 0.0
    assert equal_accuracy_percent(sweep, 0.86) == pytest.approx(1.0)
    assert equal_accuracy_percent(sweep, 0.95) == pytest.approx(55.0)
    assert equal_accuracy_percent(sweep, 0.99) is None


def test_training_speedup_at_equal_accuracy_with_a_lower_bound():
    curve = [{"curve": "nit", "epochs": e, "acc_mean": 0.5 + 0.04 * e} for e in range(1, 11)]
    s = equal_accuracy_speedup(curve, target=0.70, target_ci=0.01, flops_per_epoch=1e9,
                               tsb_flops=1e9, schedule_epochs=10)
    # NIT first reaches 0.69 at epoch 5, 0.70 at epoch 5, 0.71 at epoch 6
    assert (s["low_nit_epochs"], s["measured_nit_epochs"], s["high_nit_epochs"]) == (5, 5, 6)
    assert s["measured"] == pytest.approx(5.0) and not s["measured_lower_bound"]
    never = equal_accuracy_speedup(curve, target=0.95, target_ci=0.01, flops_per_epoch=1e9,
                                   tsb_flops=1e9, schedule_epochs=10)
    assert never["measured_lower_bound"] and never["measured"] == pytest.approx(10.0)
    assert never["high"] is None  # unbounded above


def test_training_claim_verdicts():
    rows, accs = _rows_and_accs([0.84] * 6)
    # without a trajectory the speed-up is not measured at equal accuracy: undecided
    c = _claims(rows, accs)["training_speedup"]
    assert c["meets_claim"] is None and c["measured"] is None and "not measured" in c["verdict_reason"]
    assert c["selected_epoch_ratio"] == pytest.approx(5e9 / (2e9 + 1e8))
    # NIT needs 9 epochs to reach TSB's 0.84: 9e9 / 2.1e9 = 4.3x, falls short of 5x
    slow = [{"curve": "nit", "backbone": "epoch", "epochs": e, "acc_mean": 0.4 + 0.05 * e,
             "chips": 6, "acc_ci95": 0.01} for e in range(1, 11)]
    c = _claims(rows, accs, slow)["training_speedup"]
    assert c["equal_accuracy"]["measured_nit_epochs"] == 9
    assert c["measured"] == pytest.approx(9e9 / 2.1e9) and c["meets_claim"] is False
    # NIT never reaches TSB in 10 epochs: the lower bound 10e9 / 2.1e9 = 4.8x decides nothing
    never = [dict(r, acc_mean=0.5) for r in slow]
    c = _claims(rows, accs, never)["training_speedup"]
    assert c["equal_accuracy"]["measured_lower_bound"] and c["meets_claim"] is None


def test_seed_spread_pairs_the_seeds_chips():
    profile = _profile()
    exp = dataclasses.replace(profile.experiments[0])
    accs = {("lenet3", m, None, SIGMA): [0.8 + 0.01 * k for k in range(8)]
            for m in ("nit", "nit_bnrecal", "tsb")}
    seed_chips = [{"model": "lenet3", "seed": 1, "method": m, "chip": k, "acc": 0.7 + 0.01 * k}
                  for m in ("nit", "nit_bnrecal", "tsb") for k in range(6)]
    spread = seed_spread(exp, accs, seed_chips)
    assert spread["seeds"] == [0, 1] and spread["chips"] == 6
    nit = spread["methods"]["nit"]["per_seed"]
    assert nit["0"] == pytest.approx(np.mean([0.8 + 0.01 * k for k in range(6)]))
    assert spread["methods"]["nit"]["range"] == pytest.approx(0.1)
    assert seed_spread(exp, accs, []) is None


def test_a_thinned_trajectory_takes_the_conservative_end_between_evaluated_epochs():
    # NIT evaluated after epochs 3, 6, 9 only (evaluation.trajectory_every = 3)
    curve = [{"curve": "nit", "epochs": e, "acc_mean": 0.5 + 0.04 * e} for e in (3, 6, 9)]
    s = equal_accuracy_speedup(curve, target=0.70, target_ci=0.01, flops_per_epoch=1e9,
                               tsb_flops=1e9, schedule_epochs=9)
    # 0.69 and 0.70 are first seen at epoch 6 (0.74); epoch 3 (0.62) had not reached them, so
    # the conservative (low) end takes epoch 4, the earliest NIT may have reached 0.69
    assert s["measured_nit_epochs"] == 6 and s["high_nit_epochs"] == 6
    assert s["low_nit_epochs"] == 4 and s["low"] == pytest.approx(4.0)
    # with every epoch evaluated, the earliest possible epoch is the evaluated one
    dense = [{"curve": "nit", "epochs": e, "acc_mean": 0.5 + 0.04 * e} for e in range(1, 10)]
    d = equal_accuracy_speedup(dense, target=0.70, target_ci=0.01, flops_per_epoch=1e9,
                               tsb_flops=1e9, schedule_epochs=9)
    assert d["low_nit_epochs"] == 5 == d["measured_nit_epochs"]


def test_training_plateau_states_the_criterion_and_the_last_thirds_gain():
    def rows(scores):
        return [{"model": "m", "method": "nit", "epoch": e, "val_chip_acc_mean": a,
                 "val_clean_acc": 0.9}
                for e, a in enumerate(scores, 1)]
    flat = training_plateau(rows([0.5, 0.6, 0.70, 0.71, 0.712, 0.712]), "m", "nit")
    # last third = epochs 5-6: best 0.712 = best overall; gain over epochs 1-4 (0.71) 0.2 points
    assert flat["plateau"] and flat["last_third_from_epoch"] == 5
    assert flat["last_third_gain"] == pytest.approx(0.002)
    falling = training_plateau(rows([0.5, 0.8, 0.70, 0.71, 0.70, 0.70]), "m", "nit")
    assert not falling["plateau"]  # the best epoch (0.8) is long before the last third
    assert training_plateau(rows([0.5]), "m", "clean") is None
    # clean training is read on the score it selects its epoch on: clean accuracy
    clean = [{"model": "m", "method": "clean", "epoch": e, "val_chip_acc_mean": 0.9 - 0.1 * e,
              "val_clean_acc": a} for e, a in enumerate([0.6, 0.7, 0.8], 1)]
    reading = training_plateau(clean, "m", "clean")
    assert reading["score"] == "val_clean_acc" and reading["best_val"] == pytest.approx(0.8)
