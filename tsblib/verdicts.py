"""The headline claims read at equal accuracy, on the same chips (DESIGN section 6).

Each paper claim is a cost at a given accuracy: gap improvement (accuracy at equal mapping
effort), training speed-up (FLOPs to the same accuracy on chips), mapping cost (against the
cheapest selective write-verify that is as accurate) and the write-verified fraction (at the block
width chosen on validation). Every comparison is paired over chips (chip k of every method is the
same device-error draw) and a verdict is "undecided" (None) where the data cannot decide.

`claims` builds results/<profile>/claims.json from the rows `tsblib.report` has merged; it
computes nothing that an earlier stage wrote.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from tsblib.bootstrap import (RatioInterval, gap_ratio, paired_difference, verdict,
                              verdict_reason)
from tsblib.config import ExperimentConfig, ProfileConfig
from tsblib.methods.registry import get_method, ordered
from tsblib.deployment import DeployPlan, PricedPlans
from tsblib.schema import CLAIM_BY_KEY

BOOTSTRAP_RESAMPLES = 10_000
"""Bootstrap resamples of every gap-improvement interval."""

FULL_VERIFY_P = 100.0
"""Full write-verify as a point of the selective write-verify sweep (percent verified)."""

NOT_AT_EQUAL_ACCURACY = "undecided (not measured at equal accuracy)"
"""Why the training speed-up is undecided on results made before the trajectory existed..."""

NOT_AT_EQUAL_ACCURACY_NOTE = ("these results have no per-epoch NIT evaluation on the test chips "
                              "(trajectory.csv); rerun the profile's train, finetune and evaluate "
                              "stages")
"""... and what to do about it."""

WIDTH_NOT_SELECTED = "undecided (width stated, not chosen on validation)"
"""Why the write-verified fraction is undecided when other widths were evaluated but the block
widths were not compared on validation (`tsb.select_width` off)."""


# ----------------------------------------------------------------------------- helpers

def row_of(rows: Sequence[dict[str, Any]], model: str, method: str, sigma: float,
           p: float | None = None) -> dict[str, Any] | None:
    """The summary row of (model, method, sigma, swim p), or None."""
    for r in rows:
        if (r["model"], r["method"], r["sigma"], r["swim_p_percent"]) == (model, method, sigma, p):
            return r
    return None


def _finite(x: float | None) -> float | None:
    return None if x is None or math.isinf(x) or math.isnan(x) else x


def _ratio(num: float, den: float) -> float:
    if den <= 0:
        return math.inf if num > 0 else float("nan")
    return num / den


def _claim(name: str, measured: float | None, definition: str, *,
           interval: RatioInterval | None = None, meets: bool | None | str = "compare",
           reason: str | None = None, **extra: Any) -> dict[str, Any]:
    """A claim entry. Gap ratios (with `interval`) follow `bootstrap.verdict`; other claims pass
    their verdict in `meets`, or leave it to a plain comparison of `measured` ("compare")."""
    c = CLAIM_BY_KEY[name]  # the paper's claim (tsblib.schema.CLAIMS)
    op, threshold, wording = c.op, c.threshold, c.wording
    if interval is not None:
        meets, reason = verdict(interval, op, threshold), verdict_reason(interval)
    elif meets == "compare":
        if measured is None or math.isnan(measured) or math.isinf(measured):
            meets = None
        else:
            meets = measured > threshold if op == ">" else measured < threshold
    out = {"measured": _finite(measured), "unbounded": measured is not None and math.isinf(measured),
           "paper_claim": f"{op} {threshold:g}", "paper_wording": wording, "meets_claim": meets,
           "verdict_reason": reason, "definition": definition, **extra}
    if interval is not None:
        out["interval95"] = interval.as_dict()
    return out


def strongest_baseline(rows: Sequence[dict[str, Any]], model: str, sigma: float) -> dict | None:
    """The claims baseline without write-verify with the highest mean accuracy on chips."""
    best = None
    for spec in ordered():
        if not spec.claims_baseline or spec.write_verify:
            continue
        r = row_of(rows, model, spec.name, sigma)
        if r is not None and (best is None or r["acc_mean"] > best["acc_mean"]):
            best = r
    return best


def _accs(accs: dict[tuple, list[float]], row: dict[str, Any]) -> list[float]:
    return accs[(row["model"], row["method"], row["swim_p_percent"], row["sigma"])]


# ----------------------------------------------------------------------------- gap

def gap_interval(base: dict, tsb: dict, kind: str, clean_ref: float,
                 accs: dict[tuple, list[float]], seed: int) -> RatioInterval:
    """Paired bootstrap interval of base gap / TSB gap, 'own' or 'ideal', over the chips both
    have (TSB's chips are the first N of the baseline's)."""
    if kind == "own":
        return gap_ratio(base["clean_acc"], _accs(accs, base), tsb["clean_acc"], _accs(accs, tsb),
                         resamples=BOOTSTRAP_RESAMPLES, seed=seed)
    return gap_ratio(clean_ref, _accs(accs, base), clean_ref, _accs(accs, tsb),
                     resamples=BOOTSTRAP_RESAMPLES, seed=seed)


# ----------------------------------------------------------------------------- training cost

def _first_epoch_reaching(curve: Sequence[dict[str, Any]], target: float,
                          earliest: bool = False) -> int | None:
    """The first evaluated epoch whose mean accuracy on chips reaches `target` (None: never).
    With `earliest`, the earliest epoch at which it may have been reached where the curve skips
    epochs (`evaluation.trajectory_every`): one after the last evaluated epoch that did not."""
    previous = 0
    for r in sorted(curve, key=lambda r: r["epochs"]):
        if r["acc_mean"] >= target:
            return previous + 1 if earliest else int(r["epochs"])
        previous = int(r["epochs"])
    return None


def equal_accuracy_speedup(curve: Sequence[dict[str, Any]], target: float, target_ci: float,
                           flops_per_epoch: float, tsb_flops: float,
                           schedule_epochs: int) -> dict[str, Any]:
    """FLOPs for NIT (`curve`: one row per epoch, acc_mean on the paired chips) to first reach
    TSB's accuracy `target`, over TSB's FLOPs; at TSB's mean, and at the ends of its 95 %
    interval (`target` -/+ `target_ci`). Where NIT never reaches it, the full schedule gives a
    lower bound (`*_lower_bound` true; the high end is then unbounded)."""
    out: dict[str, Any] = {}
    for key, t in (("measured", target), ("low", target - target_ci), ("high", target + target_ci)):
        epoch = _first_epoch_reaching(curve, t, earliest=key == "low")
        bound = epoch is None
        epochs = schedule_epochs if bound else epoch
        value = epochs * flops_per_epoch / tsb_flops
        out[key] = None if (bound and key == "high") else value
        out[f"{key}_lower_bound"] = bound
        out[f"{key}_nit_epochs"] = None if bound else epoch
    return out


def _speedup_verdict(s: dict[str, Any], threshold: float) -> tuple[bool | None, str | None]:
    """Met when the conservative end (NIT reaching TSB's lower interval end) clears the
    threshold, falls short when even the generous end does not; else undecided."""
    if s["low"] is not None and s["low"] > threshold:
        return True, None
    if s["high"] is not None and s["high"] <= threshold:
        return False, None
    if s["low_lower_bound"]:
        return None, ("undecided (NIT never reaches TSB in its schedule; the lower bound stays "
                      "under the threshold)")
    return None, "undecided (TSB's accuracy interval spans the threshold)"


def training_claim(exp: ExperimentConfig, tsb: dict, nit: dict, costs: dict[str, Any],
                   trajectory: Sequence[dict[str, Any]], n_amortise: int) -> dict[str, Any]:
    """The training speed-up at equal accuracy (`costs`: per-epoch FLOPs of NIT, the TSB
    backbone's epochs and FLOPs, one chip's fine-tuning FLOPs, images and passes)."""
    per_epoch, ft = costs["nit_flops_per_epoch"], costs["finetune_flops_per_chip"]
    tsb_flops = costs["backbone_flops"] + ft
    capped = _ratio(nit["train_flops"], tsb_flops)
    common = dict(
        tsb_backbone_epochs=costs["backbone_epochs"], tsb_backbone_flops=costs["backbone_flops"],
        tsb_finetune_flops_per_chip=ft, tsb_finetune_images=costs["finetune_images"],
        tsb_finetune_passes=costs["finetune_passes"], tsb_flops_one_chip=tsb_flops,
        amortised_chips=n_amortise,
        tsb_flops_amortised=costs["backbone_flops"] + n_amortise * ft,
        nit_flops_per_epoch=per_epoch, nit_schedule_epochs=exp.train.epochs,
        nit_selected_epoch=nit["train_epochs"],
        selected_epoch_ratio=_finite(capped),
        selected_epoch_ratio_note=(
            "NIT's FLOPs to its validation-selected epoch / TSB's: not an equal-accuracy reading, "
            f"and capped near 1 / tsb_early_fraction = {1 / exp.methods.tsb_early_fraction:.3g} "
            "because the TSB backbone is a fixed fraction of NIT's schedule"))
    definition = ("FLOPs for NIT (programmed once) to first reach TSB's mean accuracy on the same "
                  "chips / TSB's FLOPs (backbone + one chip's fine-tuning at the images and passes "
                  "used); interval from NIT reaching the ends of TSB's 95 % interval; a full "
                  "schedule that never reaches it gives a lower bound")
    curve = [r for r in trajectory if r["curve"] == "nit"]
    if not curve:
        return _claim("training_speedup", None, definition, meets=None,
                      reason=NOT_AT_EQUAL_ACCURACY, note=NOT_AT_EQUAL_ACCURACY_NOTE, **common)
    target, ci = tsb["acc_mean"], tsb["acc_ci95"] or 0.0
    s = equal_accuracy_speedup(curve, target, ci, per_epoch, tsb_flops, exp.train.epochs)
    meets, reason = _speedup_verdict(s, CLAIM_BY_KEY["training_speedup"].threshold)
    readings = {}
    recal = [r for r in trajectory if r["curve"] == "nit_bnrecal"]
    if recal:
        readings["vs_nit_bnrecal"] = equal_accuracy_speedup(recal, target, ci, per_epoch,
                                                            tsb_flops, exp.train.epochs)
    amortised = equal_accuracy_speedup(curve, target, ci, per_epoch,
                                       costs["backbone_flops"] + n_amortise * ft, exp.train.epochs)
    return _claim("training_speedup", s["measured"], definition, meets=meets, reason=reason,
                  interval95={k: s[k] for k in ("low", "high")}, equal_accuracy=s,
                  amortised=amortised, **readings, **common)


# ----------------------------------------------------------------------------- mapping

def sweep_points(rows: Sequence[dict[str, Any]], exp: ExperimentConfig,
                 sigma: float) -> list[tuple[float, dict]]:
    """The selective write-verify sweep at `sigma`: (percent verified, summary row), from NIT
    programmed once (0 %) through SWIM's p to full write-verify (100 %), sorted by percent."""
    m = exp.model
    points = []
    nit = row_of(rows, m, "nit", sigma)
    if nit is not None:
        points.append((0.0, nit))
    if "swim" in exp.methods.methods:
        for p in exp.methods.of("swim").p_percent:
            r = row_of(rows, m, "swim", sigma, p)
            if r is not None:
                points.append((float(p), r))
    full = row_of(rows, m, "full_wv", sigma)
    if full is not None:
        points.append((FULL_VERIFY_P, full))
    return sorted(points, key=lambda t: t[0])


def equal_accuracy_percent(points: Sequence[tuple[float, float]], target: float) -> float | None:
    """The smallest percent verified at which the sweep's accuracy reaches `target`, linear
    between evaluated points; None when even the last point stays below it."""
    if not points:
        return None
    if points[0][1] >= target:
        return points[0][0]
    for (p0, a0), (p1, a1) in zip(points, points[1:]):
        if a0 < target <= a1:
            return p0 + (target - a0) / (a1 - a0) * (p1 - p0)
    return None


def _sweep_time(exp: ExperimentConfig, profile: ProfileConfig, plans: PricedPlans,
                percent: float, sigma: float) -> float:
    """Mapping time of selective write-verify at `percent` (between the swept settings, so priced
    here: mapping.csv holds the swept ones)."""
    n = plans.plan(exp.model, "no_verify").weights
    return DeployPlan(n, int(round(percent / 100 * n)), 0).cost(sigma, profile).time_s


def mapping_claim(exp: ExperimentConfig, profile: ProfileConfig, plans: PricedPlans,
                  rows: Sequence[dict[str, Any]], tsb: dict) -> dict[str, Any]:
    """Mapping time of the cheapest selective write-verify whose accuracy on chips reaches
    TSB's / TSB's mapping time (backbone programmed once and read back, block verified), at
    TSB's mean accuracy and at the ends of its 95 % interval."""
    s = tsb["sigma"]
    sweep = sweep_points(rows, exp, s)
    curve = [(p, r["acc_mean"]) for p, r in sweep]
    tsb_time = plans.time_s(exp.model, "tsb", None, s)
    full_time = plans.time_s(exp.model, "full_wv", None, s)
    ci = tsb["acc_ci95"] or 0.0
    ends: dict[str, Any] = {}
    for key, target in (("measured", tsb["acc_mean"]), ("low", tsb["acc_mean"] - ci),
                        ("high", tsb["acc_mean"] + ci)):
        p = equal_accuracy_percent(curve, target)
        ends[f"{key}_percent"] = p
        # beyond full write-verify no setting is as accurate: full write-verify bounds it below
        ends[key] = (_sweep_time(exp, profile, plans, p, s) if p is not None else full_time) / tsb_time
        ends[f"{key}_lower_bound"] = p is None
    if ends["low"] > 1:
        meets, reason = True, None
    elif not ends["high_lower_bound"] and ends["high"] < 1:
        meets, reason = False, None
    else:
        meets, reason = None, "undecided (TSB's accuracy interval spans the break-even point)"
    nearest = None if ends["measured_percent"] is None else ends["measured_percent"]
    return _claim(
        "mapping_cost_reduction", ends["measured"],
        "expected mapping time of the cheapest selective write-verify (NIT's model, SWIM ranking; "
        "0 % = programmed once, 100 % = full write-verify) whose mean accuracy on chips reaches "
        "TSB's, interpolated on the p sweep / TSB's (backbone programmed once and read back once, "
        "block verified); interval from the ends of TSB's 95 % accuracy interval",
        meets=meets, reason=reason, interval95={"low": ends["low"], "high": ends["high"]},
        equal_accuracy_percent=nearest, equal_accuracy=ends,
        tsb_mapping_time_s=tsb_time, full_wv_mapping_time_s=full_time,
        full_wv_ratio=full_time / tsb_time,
        sweep=[{"percent": p, "method": r["method"], "acc_mean": r["acc_mean"],
                "acc_ci95": r["acc_ci95"], "mapping_time_s": r["mapping_time_s"]}
               for p, r in sweep])


def frontier(exp: ExperimentConfig, plans: PricedPlans, rows: Sequence[dict[str, Any]],
             sigma: float, widths: dict[int, str]) -> list[dict[str, Any]]:
    """Accuracy on chips against the write-verified fraction at `sigma`: the selective
    write-verify sweep and TSB at every block width evaluated (`widths`: width -> results
    method)."""
    out = [{"method": r["method"], "setting": f"{p:g} %", "wv_percent": p,
            "acc_mean": r["acc_mean"], "acc_ci95": r["acc_ci95"]} for p, r in sweep_points(rows, exp, sigma)]
    for width, method in sorted(widths.items()):
        r = row_of(rows, exp.model, method, sigma)
        if r is None:
            continue
        plan = plans.plan(exp.model, method)
        out.append({"method": "tsb", "setting": f"width {width}",
                    "wv_percent": 100 * plan.verified / (plan.weights - plan.verified),
                    "acc_mean": r["acc_mean"], "acc_ci95": r["acc_ci95"]})
    return out


def tsb_width_methods(exp: ExperimentConfig, rows: Sequence[dict[str, Any]], sigma: float) -> dict[int, str]:
    """Block width -> the results method of TSB at that width (the default TSB and the width
    ablation), at `sigma`."""
    out = {exp.tsb.width: "tsb"}
    for w in exp.ablation.widths:
        if w not in out and row_of(rows, exp.model, f"tsb_width{w}", sigma) is not None:
            out[w] = f"tsb_width{w}"
    return out


def chosen_width(exp: ExperimentConfig, tsb_lr: Sequence[dict[str, str]]) -> int | None:
    """The block width with the best validation accuracy in tsb_lr.csv (best learning rate and
    epochs of each width); None when fewer than two widths were compared on validation."""
    best: dict[int, float] = {}
    for r in tsb_lr:
        if r["model"] == exp.model and r.get("width"):
            w = int(float(r["width"]))
            best[w] = max(best.get(w, -1.0), float(r["val_acc_mean"]))
    return max(best, key=best.get) if len(best) > 1 else None


def wv_claim(exp: ExperimentConfig, plans: PricedPlans, rows: Sequence[dict[str, Any]],
             sigma: float, tsb_lr: Sequence[dict[str, str]]) -> dict[str, Any]:
    """Write-verified weights (percent of the backbone's) at the width chosen on validation.
    Where the widths were not compared on validation but others were evaluated, the stated
    width decides nothing: another width may be both more accurate and over the threshold."""
    chosen = chosen_width(exp, tsb_lr)
    width = exp.tsb.width if chosen is None else chosen
    plan = plans.plan(exp.model, "tsb" if width == exp.tsb.width else f"tsb_width{width}")
    per_width = [p for p in frontier(exp, plans, rows, sigma, tsb_width_methods(exp, rows, sigma))
                 if p["method"] == "tsb"]
    measured = 100 * plan.verified / (plan.weights - plan.verified)
    undecided = chosen is None and len(per_width) > 1
    extra = {"meets": None, "reason": WIDTH_NOT_SELECTED} if undecided else {}
    return _claim("wv_fraction_percent", measured,
                  "block weights / the backbone's (original) conv and linear weights, percent, "
                  "at the block width with the best validation accuracy on chips",
                  chosen_width=width, width_chosen_on_validation=chosen is not None,
                  stated_width=exp.tsb.width, block_weights=plan.verified,
                  backbone_weights=plan.weights - plan.verified, per_width=per_width, **extra)


# ----------------------------------------------------------------------------- seeds

SEED_METHODS = ("nit", "nit_bnrecal", "tsb")
"""The methods retrained (or re-derived) with every training seed."""


def seed_spread(exp: ExperimentConfig, accs: dict[tuple, list[float]],
                seed_chips: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Per method of `SEED_METHODS`, the mean accuracy of each training seed on the same first
    `evaluation.tsb_chips` chips (seed `train.seed` from the main evaluation, the others from
    seeds_chips.csv), the range between seeds, and TSB minus NIT and minus NIT + BN recal per
    seed (paired over the chips); None without extra seeds."""
    if not seed_chips:
        return None
    m, s, n = exp.model, exp.evaluation.operating_sigma, exp.evaluation.tsb_chips
    per_seed: dict[int, dict[str, list[float]]] = {
        exp.train.seed: {meth: accs.get((m, meth, None, s), [])[:n] for meth in SEED_METHODS}}
    for r in seed_chips:
        per_seed.setdefault(int(r["seed"]), {}).setdefault(r["method"], []).append(float(r["acc"]))
    out: dict[str, Any] = {"seeds": sorted(per_seed), "chips": n, "methods": {}, "differences": {}}
    for meth in SEED_METHODS:
        means = {seed: sum(v[meth]) / len(v[meth]) for seed, v in per_seed.items() if v.get(meth)}
        if means:
            out["methods"][meth] = {"per_seed": {str(k): v for k, v in sorted(means.items())},
                                    "range": max(means.values()) - min(means.values())}
    for other in ("nit", "nit_bnrecal"):
        diffs = {seed: paired_difference(v["tsb"], v[other]).as_dict()
                 for seed, v in sorted(per_seed.items()) if v.get("tsb") and v.get(other)}
        if diffs:
            out["differences"][f"tsb_minus_{other}"] = {str(k): d for k, d in diffs.items()}
    return out


# ----------------------------------------------------------------------------- per model

def _baseline_entry(spec_name: str, b: dict, tsb: dict, accs: dict, write_verify: bool,
                    clean_ref: float, seed: int) -> tuple[dict[str, Any], dict[str, RatioInterval]]:
    intervals = {kind: gap_interval(b, tsb, kind, clean_ref, accs, seed) for kind in ("own", "ideal")}
    diff = paired_difference(_accs(accs, tsb), _accs(accs, b))
    entry = {"acc_mean": b["acc_mean"], "acc_ci95": b["acc_ci95"], "clean_acc": b["clean_acc"],
             "gap_own": b["gap_own"], "gap_ideal": b["gap_ideal"], "write_verify": write_verify,
             "mapping_time_s": b["mapping_time_s"],
             "tsb_minus_baseline": diff.as_dict(),
             **{f"improvement_{k}": iv.as_dict() for k, iv in intervals.items()}}
    return entry, intervals


def losses(tsb: dict, baselines: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Baselines at no more mapping time than TSB that are more accurate on the same chips (the
    paired difference's interval lies below 0): where TSB loses at equal cost."""
    out = []
    swept = any(name.startswith("swim@") for name in baselines)
    for name, b in baselines.items():
        if name == "swim" and swept:  # the default p, listed as swim@<p> already
            continue
        d = b["tsb_minus_baseline"]
        if d["high"] < 0 and b["mapping_time_s"] <= tsb["mapping_time_s"]:
            out.append({"baseline": name, "tsb_minus_baseline": d["mean"],
                        "interval95": [d["low"], d["high"]],
                        "baseline_mapping_time_s": b["mapping_time_s"],
                        "tsb_mapping_time_s": tsb["mapping_time_s"]})
    return out


def readings(rows: Sequence[dict[str, Any]], accs: dict, tsb: dict,
             others: dict[str, dict]) -> dict[str, Any]:
    """The fuller TSB readings (`tsb_bnrecal`, `nit_block_bnrecal`) where evaluated: accuracy
    and paired differences against TSB and against NIT + BN recalibration."""
    out: dict[str, Any] = {}
    for name in ("tsb_bnrecal", "nit_block_bnrecal"):
        r = row_of(rows, tsb["model"], name, tsb["sigma"])
        if r is None:
            continue
        entry = {"acc_mean": r["acc_mean"], "acc_ci95": r["acc_ci95"], "chips": r["chips"],
                 "minus_tsb": paired_difference(_accs(accs, r), _accs(accs, tsb)).as_dict()}
        for other, o in others.items():
            entry[f"minus_{other}"] = paired_difference(_accs(accs, r), _accs(accs, o)).as_dict()
        out[name] = entry
    return out


def model_claims(profile: ProfileConfig, exp: ExperimentConfig, rows: Sequence[dict[str, Any]],
                 accs: dict[tuple, list[float]], costs: dict[str, Any], plans: PricedPlans,
                 trajectory: Sequence[dict[str, Any]], tsb_lr: Sequence[dict[str, str]],
                 seed: int, seed_chips: Sequence[dict[str, Any]] = ()) -> dict[str, Any] | None:
    """claims.json's entry of one model at its operating sigma (None when TSB or NIT is
    missing)."""
    m, s = exp.model, exp.evaluation.operating_sigma
    tsb, nit = row_of(rows, m, "tsb", s), row_of(rows, m, "nit", s)
    if tsb is None or nit is None:
        return None
    clean_ref = tsb["gap_ideal"] + tsb["acc_mean"]  # the clean-trained model's accuracy
    strongest = strongest_baseline(rows, m, s) or nit
    baselines: dict[str, dict[str, Any]] = {}
    intervals: dict[str, dict[str, RatioInterval]] = {}
    for i, spec in enumerate(ordered()):
        if not spec.claims_baseline:
            continue
        if spec.name == "swim":
            for p in exp.methods.of("swim").p_percent:
                b = row_of(rows, m, "swim", s, p)
                if b is not None:
                    baselines[f"swim@{p:g}"], _ = _baseline_entry("swim", b, tsb, accs, True,
                                                                  clean_ref, seed)
            b = row_of(rows, m, "swim", s, exp.methods.of("swim").default_p)
        else:
            b = row_of(rows, m, spec.name, s)
        if b is None:
            continue
        baselines[spec.name], intervals[spec.name] = _baseline_entry(
            spec.name, b, tsb, accs, spec.write_verify, clean_ref, seed)
    nit_iv, strong_iv = intervals["nit"], intervals[strongest["method"]]
    keys = ("clean_acc", "acc_mean", "acc_ci95", "gap_own", "gap_ideal", "train_epochs", "chips",
            "mapping_time_s")
    others = {k: row_of(rows, m, k, s) for k in ("nit_bnrecal",)}
    return {
        "dataset": tsb["dataset"], "operating_sigma": s, "chips_tsb": tsb["chips"],
        "chips_baseline": nit["chips"], "paired_chips": min(tsb["chips"], nit["chips"]),
        "tsb": {k: tsb[k] for k in keys},
        "nit": {k: nit[k] for k in keys},
        "strongest_baseline": strongest["method"],
        "gap_improvement_ideal": _claim(
            "gap_improvement_ideal", nit_iv["ideal"].point,
            "NIT gap / TSB gap; gap = the clean-trained model's accuracy (one reference for every "
            "method) minus mean accuracy on chips; paired chips; met when the 95 % bootstrap "
            "interval's lower end clears the threshold, undecided when TSB's gap or its interval "
            "reaches 0", interval=nit_iv["ideal"], baseline="nit"),
        "gap_improvement_own": _claim(
            "gap_improvement_own", nit_iv["own"].point,
            "second reading: NIT gap / TSB gap with gap = noise-free accuracy of the deployed "
            "model (TSB: backbone plus a block fine-tuned once at sigma = 0) minus mean accuracy "
            "on chips; undecided when TSB's own gap or its interval reaches 0 (TSB at or above "
            "its own reference)", interval=nit_iv["own"], baseline="nit"),
        "gap_improvement_ideal_vs_strongest": _claim(
            "gap_improvement_ideal_vs_strongest", strong_iv["ideal"].point,
            "as gap_improvement_ideal, against the most accurate baseline without write-verify",
            interval=strong_iv["ideal"], baseline=strongest["method"]),
        "gap_improvement_own_vs_strongest": _claim(
            "gap_improvement_own_vs_strongest", strong_iv["own"].point,
            "as gap_improvement_own, against the most accurate baseline without write-verify",
            interval=strong_iv["own"], baseline=strongest["method"]),
        "training_speedup": training_claim(exp, tsb, nit, costs, trajectory,
                                           exp.evaluation.amortise_chips),
        "wv_fraction_percent": wv_claim(exp, plans, rows, s, tsb_lr),
        "mapping_cost_reduction": mapping_claim(exp, profile, plans, rows, tsb),
        "per_baseline": baselines,
        "loses_to": losses(tsb, baselines),
        "readings": readings(rows, accs, tsb, {k: v for k, v in others.items() if v is not None}),
        "frontier": frontier(exp, plans, rows, s, tsb_width_methods(exp, rows, s)),
        "trajectory": [dict(r) for r in trajectory],
        "seed_spread": seed_spread(exp, accs, seed_chips),
    }


def paired_differences_text(entry: dict[str, Any]) -> list[str]:
    """One line per baseline: TSB minus the baseline on the same chips, mean and interval."""
    out = []
    for name, b in entry.get("per_baseline", {}).items():
        d = b.get("tsb_minus_baseline")
        if d:
            out.append(f"{name}: {100 * d['mean']:+.1f} points [{100 * d['low']:+.1f}, "
                       f"{100 * d['high']:+.1f}] on {d['chips']} chips")
    return out


PLATEAU_TOLERANCE = 0.005
"""The plateau criterion's tolerance: 0.5 points of validation accuracy."""


def training_plateau(training: Sequence[dict[str, Any]], model: str, method: str,
                     tolerance: float = PLATEAU_TOLERANCE) -> dict[str, Any] | None:
    """Did `method`'s training (training.csv rows) stop improving within its schedule? Its
    validation score per epoch, the one its deployed epoch is chosen on (mean accuracy on the
    validation chips; clean accuracy for a method that selects on it, clean training): the
    schedule reached its plateau when the best epoch of its last third is within `tolerance`
    of the best overall (the issue's criterion). Under a decaying
    schedule that is nearly always so, so the gain of the last third over the best epoch
    before it is reported beside it: how much the last third (and its annealing) still added.
    None without rows."""
    column = ("val_clean_acc" if get_method(method).selects_epoch_on == "clean"
              else "val_chip_acc_mean")
    curve = sorted(((int(r["epoch"]), float(r[column])) for r in training
                    if r["model"] == model and r["method"] == method), key=lambda t: t[0])
    if not curve:
        return None
    epochs = len(curve)
    cut = epochs - max(1, epochs // 3)
    best = max(a for _, a in curve)
    last = max(a for _, a in curve[cut:])
    before = max((a for _, a in curve[:cut]), default=float("nan"))  # nan: one epoch only
    reached = last >= best - tolerance
    return {"method": method, "score": column, "epochs": epochs,
            "last_third_from_epoch": curve[cut][0],
            "best_val": best, "best_val_last_third": last, "best_val_before": _finite(before),
            "last_third_gain": _finite(last - before), "tolerance": tolerance,
            "plateau": bool(reached),
            "criterion": (f"the best validation score of the last third of the schedule is within "
                          f"{100 * tolerance:.1f} points of the best overall; last_third_gain: "
                          f"what the last third added over the best epoch before it")}


def claims(profile: ProfileConfig, rows: Sequence[dict[str, Any]], accs: dict[tuple, list[float]],
           costs: dict[str, dict[str, Any]], plans: PricedPlans,
           trajectory: dict[str, list[dict[str, Any]]],
           tsb_lr: Sequence[dict[str, str]], selection: dict[str, Any] | None = None,
           seed_chips: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """claims.json: every model's claims at its operating sigma, next to the paper's."""
    out: dict[str, Any] = {"profile": profile.name, "convention": profile.device.convention.value,
                           "note": "our measurement under our reading of TSB (DESIGN.md section 3); "
                                   "not the paper's numbers", "models": {}}
    for i, exp in enumerate(profile.experiments):
        entry = model_claims(profile, exp, rows, accs, costs[exp.model], plans,
                             trajectory.get(exp.model, []), tsb_lr, seed=i,
                             seed_chips=[r for r in seed_chips if r["model"] == exp.model])
        if entry is not None:
            entry["selection"] = (selection or {}).get(exp.model, {})
            out["models"][exp.model] = entry
    return out
