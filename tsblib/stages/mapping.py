"""The mapping stage: the costs that need no trained weights (mapping.csv, overhead.csv,
flops.csv), and the mapping plan of every results row."""
from __future__ import annotations

import dataclasses
from typing import Any

from tsblib import io, schema
from tsblib.config import ExperimentConfig, ProfileConfig, TSBConfig
from tsblib.deployment import NO_VERIFY, DeployPlan, programmed_once
from tsblib.methods.registry import EXTRA_LABELS, get_method, ordered
from tsblib.methods.studies import training_runs
from tsblib.models import INPUT_SHAPES, experiment_model
from tsblib.paths import ProfilePaths
from tsblib.tsb import insert_tsb, tsb_overhead


def verify_plan(exp: ExperimentConfig, method: str, swim_p: float | None = None,
                tsb_cfg: TSBConfig | None = None) -> DeployPlan:
    """The mapping plan of results row `method` (`MethodSpec.plan`; 'no_verify' and rows that
    are not methods, such as the TSB backbone without its block, are programmed once). A TSB
    ablation variant is its method's plan with the variant's `tsb_cfg`."""
    if method == NO_VERIFY or method in EXTRA_LABELS:
        return programmed_once(exp)
    plan = get_method(method).plan or programmed_once
    return plan(exp, swim_p, tsb_cfg)


def mapping_sigmas(exp: ExperimentConfig) -> tuple[float, ...]:
    """The sigmas mapping.csv prices every plan at: the evaluated sigmas, sigma = 0 and the
    operating sigma (where the ablation variants are evaluated)."""
    ev = exp.evaluation
    return tuple(dict.fromkeys((*ev.sigmas, 0.0, ev.operating_sigma)))


def deployment_plans(exp: ExperimentConfig) -> list[tuple[str, float | None, DeployPlan]]:
    """Every plan a results row of `exp` deploys with, as (plan name, swim p, plan): programmed
    once ('no_verify', every method without a plan of its own), full write-verify (the mapping
    comparison's reference), each selected method with a plan of its own (at each of its
    `plan_percents`) and each of its `variants` (TSB's ablation variants)."""
    out: list[tuple[str, float | None, DeployPlan]] = [(NO_VERIFY, None, programmed_once(exp))]
    variants = []
    for spec in ordered({"full_wv"} | {m for m in exp.methods.methods if get_method(m).plan}):
        percents = spec.plan_percents(exp) if spec.plan_percents else (None,)
        out += [(spec.name, p, verify_plan(exp, spec.name, p)) for p in percents]
        if spec.name in exp.methods.methods and spec.variants is not None:
            variants += [(name, None, verify_plan(exp, spec.name, tsb_cfg=cfg))
                         for name, cfg in spec.variants(exp).items()]
    return out + variants


def plan_name(exp: ExperimentConfig, method: str) -> str:
    """The mapping.csv plan of results row `method` (`deployment_plans`): a method's own plan or
    one of its variants', else 'no_verify'."""
    if method == NO_VERIFY or method in EXTRA_LABELS:
        return NO_VERIFY
    if any(spec.variants is not None and method in spec.variants(exp)
           for spec in ordered(exp.methods.methods)):
        return method
    return method if get_method(method).plan else NO_VERIFY


def flops_rows(exp: ExperimentConfig, overhead: dict[str, Any], train_images: int) -> list[dict]:
    """flops.csv of `exp` (`tsblib.schema.FLOPS`): every training run's FLOPs per epoch, 2 x MACs
    x 3 (forward and backward) x training images x forwards per step."""
    macs = overhead["backbone_macs"]
    return [{"model": exp.model, "run": spec.name, "forwards_per_step": spec.forwards(exp),
             "macs_per_image": macs, "train_images": train_images,
             "flops_per_epoch": 6.0 * macs * train_images * spec.forwards(exp)}
            for spec in training_runs(exp)]


def overhead_row(exp: ExperimentConfig) -> dict[str, Any]:
    """The weights and MACs of `exp`'s backbone and its default block (`tsblib.schema.OVERHEAD`)."""
    model = insert_tsb(experiment_model(exp), exp.tsb)
    o = tsb_overhead(model, INPUT_SHAPES[exp.model])
    return {"model": exp.model, "tsb_width": exp.tsb.width, **dataclasses.asdict(o)}


def mapping_rows(profile: ProfileConfig, exp: ExperimentConfig) -> list[dict[str, Any]]:
    """mapping.csv of `exp` (`tsblib.schema.MAPPING`): every plan of `deployment_plans` priced at
    every sigma of `mapping_sigmas`."""
    rows = []
    for name, p, plan in deployment_plans(exp):
        for sigma in mapping_sigmas(exp):
            cost = plan.cost(sigma, profile)
            rows.append({"model": exp.model, "plan": name, "swim_p_percent": p, "sigma": sigma,
                         "weights": plan.weights, "verified_weights": plan.verified,
                         "read_back_weights": plan.read_back,
                         "devices": cost.devices, "verified_devices": cost.verified_devices,
                         "write_pulses": cost.write_pulses, "reads": cost.reads,
                         "time_s": cost.time_s, "energy_j": cost.energy_j})
    return rows


def mapping_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """The costs that need no trained weights: the expected weights-to-device mapping cost of
    every deployment plan at every sigma (mapping.csv), the block's overhead (overhead.csv) and
    every training run's FLOPs per epoch (flops.csv); `summarize` joins them, nothing recomputes
    them."""
    rows, overhead, flops = [], [], []
    for exp in profile.experiments:
        rows += mapping_rows(profile, exp)
        data = io.read_json(paths.result(schema.DATA_FILE), "prepare")[exp.model]
        overhead.append(overhead_row(exp))
        flops += flops_rows(exp, overhead[-1], int(data["train"]["count"]))
    io.write_table(paths, schema.MAPPING, rows)
    io.write_table(paths, schema.OVERHEAD, overhead)
    io.write_table(paths, schema.FLOPS, flops)
