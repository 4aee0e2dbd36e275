"""The summarize stage: merge the stages' outputs into summary.csv, ablations.csv, claims.json
and provenance.json, the machine-readable results every figure and the README read, plus the
DVC metrics (metrics/<model>.json, a few headline numbers) and the DVC plot data (plots/)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsblib import io, schema
from tsblib.chipstats import chip_yield
from tsblib.config import ExperimentConfig, ProfileConfig, to_dict
from tsblib.deployment import PricedPlans
from tsblib.methods.registry import all_methods, get_method, ordered
from tsblib.methods.studies import early_epoch
from tsblib.methods.tsb_finetune import selection_edges, tsb_variants
from tsblib.paths import ProfilePaths
from tsblib.provenance import machine_info
from tsblib.stages.mapping import plan_name
from tsblib.verdicts import claims, training_plateau


def _training_run(method: str) -> str:
    """Which training run a results row's model comes from."""
    if method in all_methods():
        return get_method(method).trained_from
    return "tsb_backbone" if method.startswith("tsb") else "nit"


@dataclass(frozen=True)
class TrainingCost:
    """What it cost to reach a deployed model."""

    epochs: int
    """Epochs up to the deployed (validation-selected) epoch."""
    flops: float
    """Training FLOPs up to that epoch: flops.csv's FLOPs per epoch of its run x epochs."""


def _flops_per_epoch(flops: list[dict[str, str]]) -> dict[tuple[str, str], float]:
    """(model, training run) -> FLOPs of one epoch, from flops.csv."""
    return {(r["model"], r["run"]): float(r["flops_per_epoch"]) for r in flops}


def _training_costs(rows: list[dict[str, str]], exps: dict[str, ExperimentConfig],
                    per_epoch: dict[tuple[str, str], float]) -> dict[tuple[str, str], TrainingCost]:
    """(model, training run) -> cost up to the deployed epoch; the TSB backbone is NIT's early
    epoch."""
    out: dict[tuple[str, str], TrainingCost] = {}
    for row in rows:
        model, run, epoch = row["model"], row["method"], int(row["epoch"])
        exp = exps[model]
        early = early_epoch(exp.train.epochs, exp.methods.tsb_early_fraction)
        targets = [run] if row["selected"] == "True" else []
        if run == "nit" and epoch == early:
            targets.append("tsb_backbone")
        for target in targets:
            flops = per_epoch[(model, "nit" if target == "tsb_backbone" else target)] * epoch
            out[(model, target)] = TrainingCost(epoch, flops)
    return out


def finetune_flops(overhead: dict[str, str], images: int, passes: int) -> float:
    """FLOPs of fine-tuning one chip's block: 2 x MACs with the block (overhead.csv) x 2 (forward
    + the activation gradients; the frozen backbone needs no weight gradients) x the images one
    pass sees x passes (both as the finetune stage used them)."""
    macs = int(overhead["backbone_macs"]) + int(overhead["added_macs"])
    return 4.0 * macs * images * passes


def model_costs(exp: ExperimentConfig, per_epoch: dict[tuple[str, str], float],
                overhead: dict[str, str], finetune_rows: list[dict[str, str]]) -> dict[str, Any]:
    """The training costs the claims compare (`tsblib.verdicts.training_claim`): NIT's FLOPs per
    epoch, the TSB backbone's epochs and FLOPs, and one chip's fine-tuning at the images and
    passes the finetune stage recorded for the default TSB at the operating sigma."""
    nit = per_epoch[(exp.model, "nit")]
    early = early_epoch(exp.train.epochs, exp.methods.tsb_early_fraction)
    s = exp.evaluation.operating_sigma
    row = next((r for r in finetune_rows if r["model"] == exp.model and r["method"] == "tsb"
                and float(r["sigma"]) == s), None)
    if row is None:
        raise io.StageInputError(f"finetune.csv has no row of TSB at the operating sigma {s:g} for "
                                 f"model {exp.model!r}; run `dvc repro finetune@{exp.model}`")
    images, passes = int(float(row["images"])), int(float(row["epochs"]))
    return {"nit_flops_per_epoch": nit, "backbone_epochs": early,
            "backbone_flops": early * nit, "finetune_images": images,
            "finetune_passes": passes,
            "finetune_flops_per_chip": finetune_flops(overhead, images, passes)}


def _typed_trajectory(rows: list[dict[str, str]]) -> dict[str, list[dict[str, Any]]]:
    """trajectory.csv rows by model, numbers as numbers."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["model"], []).append(
            {"curve": r["curve"], "backbone": r["backbone"], "epochs": int(float(r["epochs"])),
             "chips": int(float(r["chips"])), "acc_mean": float(r["acc_mean"]),
             "acc_ci95": io.cell_float(r["acc_ci95"])})
    return out


def models_with_results(profile: ProfileConfig, paths: ProfilePaths) -> list[str]:
    """Models of `profile` whose per-model stages have all written their results."""
    required = [t.name for t in schema.MERGED_TABLES if not t.optional] + [schema.CHIPS.name,
                                                                           schema.DATA_FILE]
    return [e.model for e in profile.experiments
            if all(paths.for_model(e.model).result(f).is_file() for f in required)]


def _model_table(paths: ProfilePaths, model: str, name: str, stage: str) -> list[dict[str, str]]:
    path = paths.for_model(model).result(name)
    if not path.is_file():
        raise io.StageInputError(f"{path} not found: model {model!r} has not been through the "
                                 f"'{stage}' stage; run `dvc repro {stage}@{model}` or "
                                 f"`python -m tsblib all --models {model}`")
    return io.read_csv(path, stage)


def merge_model_results(profile: ProfileConfig, paths: ProfilePaths
                        ) -> tuple[dict[str, list[dict[str, str]]], dict[str, Any]]:
    """Concatenate every model's per-model tables (`schema.MERGED_TABLES`, in the profile's
    model order) into results/<profile>/<file>, their timing tables (`schema.TIMED_TABLES`) into
    results/<profile>/timing/<file>, and their data.json files into results/<profile>/data.json;
    return the merged rows by file name and the merged data summary (what was written, not read
    back)."""
    merged: dict[str, list[dict[str, str]]] = {}
    for table in schema.MERGED_TABLES:
        name, stage = table.name, table.stage
        merged[name] = _concatenate(profile, paths, name, stage, table.optional)
        if name in schema.TIMED_TABLES:  # wall-clock seconds: only where a model has them
            _concatenate(profile, paths, f"{schema.TIMING_FOLDER}/{name}", stage, optional=True)
    data: dict[str, Any] = {}
    for exp in profile.experiments:
        path = paths.for_model(exp.model).result("data.json")
        if not path.is_file():
            raise io.StageInputError(f"{path} not found: model {exp.model!r} has not been "
                                     f"prepared; run `dvc repro prepare@{exp.model}` or "
                                     f"`python -m tsblib all --models {exp.model}`")
        data.update(io.read_json(path, "prepare"))
    io.write_json(paths.result("data.json"), data)
    return merged, data


def _concatenate(profile: ProfileConfig, paths: ProfilePaths, name: str, stage: str,
                 optional: bool) -> list[dict[str, str]]:
    """Concatenate results/<profile>/models/<model>/<name> over the profile's models into
    results/<profile>/<name> (models without an `optional` table skipped); return the rows."""
    rows: list[dict[str, str]] = []
    columns: list[str] | None = None
    for exp in profile.experiments:
        path = paths.for_model(exp.model).result(name)
        if optional and not path.is_file():
            continue
        part = _model_table(paths, exp.model, name, stage)
        rows += part
        if columns is None or (not columns and part):
            columns = list(part[0]) if part else _header(path)
    if columns is not None:
        io.write_csv(paths.result(name), rows, columns)
    return rows


def _header(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        return next(csv.reader(fh), [])


def summarize_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Concatenate the per-model results (`merge_model_results`), then write summary.csv
    (evaluation.csv joined with mapping.csv and flops.csv), ablations.csv, claims.json,
    provenance.json, the DVC metrics (metrics/<model>.json) and the DVC plot data
    (plots/<plot>/<model>.csv). It prices nothing and counts no FLOPs itself: the mapping stage
    wrote those numbers once."""
    merged, data = merge_model_results(profile, paths)
    evaluation = merged[schema.EVALUATION.name]
    chips = [row for exp in profile.experiments
             for row in _model_table(paths, exp.model, schema.CHIPS.name, schema.CHIPS.stage)]
    training = merged[schema.TRAINING.name]
    finetune_rows = merged[schema.FINETUNE.name]
    tsb_lr = merged[schema.TSB_LR.name]
    exps = {e.model: e for e in profile.experiments}
    plans = PricedPlans.from_rows(merged[schema.MAPPING.name])
    per_epoch = _flops_per_epoch(merged[schema.FLOPS.name])
    overhead = {r["model"]: r for r in merged[schema.OVERHEAD.name]}
    costs = _training_costs(training, exps, per_epoch)
    clean_ref = {r["model"]: float(r["clean_acc"]) for r in evaluation if r["method"] == "clean"}
    variants = {(m, v.name): v for m, e in exps.items() for v in tsb_variants(e)}

    accs = _chip_accuracies(chips)
    rows = []
    for r in evaluation:
        model, method, sigma = r["model"], r["method"], float(r["sigma"])
        exp = exps[model]
        p = io.cell_float(r["swim_p_percent"])
        priced = plans.row(model, plan_name(exp, method), p, sigma)
        train_cost = costs[(model, _training_run(method))]
        clean_acc, mean = float(r["clean_acc"]), float(r["acc_mean"])
        rows.append({"profile": profile.name, "dataset": data[model]["name"], "model": model,
                     "method": method, "swim_p_percent": p, "sigma": sigma, "chips": int(r["chips"]),
                     "clean_acc": clean_acc, "acc_mean": mean, "acc_std": float(r["acc_std"]),
                     "acc_ci95": io.cell_float(r["acc_ci95"]), "gap_own": clean_acc - mean,
                     "gap_ideal": clean_ref[model] - mean,
                     "wv_fraction": int(priced["verified_weights"]) / int(priced["weights"]),
                     "train_epochs": train_cost.epochs, "train_flops": train_cost.flops,
                     "mapping_time_s": float(priced["time_s"]),
                     "mapping_energy_j": float(priced["energy_j"]),
                     "convention": profile.device.convention.value,
                     **chip_yield(accs[(model, method, p, sigma)], clean_acc)})
    io.write_table(paths, schema.SUMMARY, rows)
    operating = {m: e.evaluation.operating_sigma for m, e in exps.items()}
    io.write_table(paths, schema.ABLATIONS, _ablation_rows(rows, variants, operating))
    model_cost = {m: model_costs(e, per_epoch, overhead[m], finetune_rows) for m, e in exps.items()}
    claims_doc = claims(profile, rows, accs, model_cost, plans,
                        _typed_trajectory(merged[schema.TRAJECTORY.name]), tsb_lr,
                        selection_checks(profile, merged[schema.RECIPES.name], tsb_lr),
                        merged[schema.SEEDS_CHIPS.name])
    for model, entry in claims_doc["models"].items():
        entry["plateau"] = {m: training_plateau(training, model, m) for m in ("nit", "clean")}
    io.write_json(paths.result(schema.CLAIMS_FILE), claims_doc)
    write_headline_metrics(paths, claims_doc)
    write_plot_data(profile, paths, rows, training)
    io.write_json(paths.result(schema.PROVENANCE_FILE), provenance(profile, paths, data))


def _chip_accuracies(chips: list[dict[str, str]]) -> dict[tuple, list[float]]:
    """(model, method, swim p, sigma) -> accuracy of every chip, from chips.csv."""
    out: dict[tuple, list[float]] = {}
    for r in chips:
        key = (r["model"], r["method"], io.cell_float(r["swim_p_percent"]), float(r["sigma"]))
        out.setdefault(key, []).append(float(r["acc"]))
    return out


NO_BLOCK_SETTINGS = {"tsb_backbone_only": "backbone only",
                     "tsb_backbone_bnrecal": "BN recalibration alone"}
"""Results rows of the early TSB backbone without a block, as ablation settings."""


def _ablation_rows(rows: list[dict[str, Any]], variants: dict,
                   operating: dict[str, float]) -> list[dict[str, Any]]:
    """TSB variants and the block-less early backbone, at each model's operating sigma."""
    out = []
    for row in rows:
        model, method = row["model"], row["method"]
        if not method.startswith("tsb") or row["sigma"] != operating[model]:
            continue
        variant = variants.get((model, method))
        if variant is not None:
            ablation, setting = variant.ablation, variant.setting
        elif method in NO_BLOCK_SETTINGS:  # the early backbone without a block
            ablation, setting = "no_block", NO_BLOCK_SETTINGS[method]
        else:  # a method of its own (tsb_bnrecal), not an ablation variant
            continue
        out.append({"model": model, "ablation": ablation, "setting": setting, "method": method,
                    **{k: row[k] for k in ("sigma", "chips", "acc_mean", "acc_std", "acc_ci95",
                                           "wv_fraction")}})
    return out


def selection_checks(profile: ProfileConfig, recipes: list[dict[str, str]],
                     tsb_rows: list[dict[str, str]] = ()) -> dict[str, Any]:
    """Per model: whether the stated recipe (and NFT beta chosen on validation) is the best
    candidate of the validation sweeps in recipes.csv, by best per-epoch validation accuracy on
    chips; and, where the finetune stage compared block widths on validation (tsb.select_width),
    whether the stated TSB width is the best (best learning rate of each width)."""
    out: dict[str, Any] = {}
    for exp in profile.experiments:
        best: dict[tuple[str, str], float] = {}
        for r in recipes:
            if r["model"] != exp.model:
                continue
            key = (r["method"], r["candidate"])
            best[key] = max(best.get(key, -1.0), float(r["val_chip_acc_mean"]))
        checks = {}
        for method in sorted({k[0] for k in best}):
            cands = {c: v for (mm, c), v in best.items() if mm == method}
            winner = max(cands, key=cands.get)
            if method == "nit":
                stated = f"recipe: {exp.train.recipe}"
            else:
                stated = f"beta: {exp.methods.of(method).beta:g}"
            checks[method] = {"stated": stated, "best_on_validation": winner,
                              "stated_is_best": stated == winner,
                              "val_chip_acc": {c: round(v, 4) for c, v in cands.items()}}
        widths: dict[str, float] = {}
        for r in tsb_rows:
            if r["model"] == exp.model and r.get("width"):
                key = f"width: {int(r['width'])}"
                widths[key] = max(widths.get(key, -1.0), float(r["val_acc_mean"]))
        if len(widths) > 1:
            winner = max(widths, key=widths.get)
            stated = f"width: {exp.tsb.width}"
            checks["tsb"] = {"stated": stated, "best_on_validation": winner,
                             "stated_is_best": stated == winner,
                             "val_chip_acc": {c: round(v, 4) for c, v in widths.items()}}
        checks["tsb_settings"] = selection_edges(
            [r for r in tsb_rows if r["model"] == exp.model], exp)
        checks["at_edge"] = sorted(k for k, v in checks["tsb_settings"].items() if v.get("at_edge"))
        out[exp.model] = checks
    return out


HEADLINE_METRICS = {
    "tsb_acc": "TSB's mean accuracy on chips at the operating sigma",
    "best_acc": "mean accuracy on chips of the strongest baseline without write-verify "
                "(claims.json `strongest_baseline`)",
    "gap_x": "gap improvement over NIT: NIT gap / TSB gap (ideal gaps, the headline reading; "
             "claims.json `gap_improvement_ideal`); null when undefined (TSB gap <= 0)",
    "gap_x_lo": "lower end of gap_x's 95 % paired bootstrap interval over chips (the verdict's "
                "number)",
    "speedup": "training speed-up at equal accuracy: FLOPs for NIT to first reach TSB's accuracy "
               "on the same chips / TSB's FLOPs (null where not measured)",
    "map_x": "mapping cost reduction at equal accuracy: mapping time of the cheapest selective "
             "write-verify as accurate as TSB / TSB's",
    "wv_pct": "write-verified weights: the block's weights, percent of the backbone's",
}
"""The DVC metrics, one flat file per model (results/<profile>/metrics/<model>.json): a few
headline numbers at the operating sigma, small enough for `dvc metrics show` and
`dvc exp show --only-changed` to fit a terminal. Everything else stays in claims.json and the CSVs,
which are not DVC metrics."""


def _sig(x: float | None, digits: int = 4) -> float | None:
    """`x` to `digits` significant digits (None stays None): short columns in `dvc metrics show`."""
    return None if x is None else float(f"{x:.{digits}g}")


def headline_metrics(claims_doc: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """model -> the HEADLINE_METRICS of claims.json's entry for it (flat, scalar values)."""
    out: dict[str, dict[str, float | None]] = {}
    for model, c in claims_doc.get("models", {}).items():
        gap = c["gap_improvement_ideal"]
        best = c["per_baseline"].get(c["strongest_baseline"], c["nit"])
        values = {"tsb_acc": c["tsb"]["acc_mean"], "best_acc": best["acc_mean"],
                  "gap_x": gap["measured"], "gap_x_lo": gap.get("interval95", {}).get("low"),
                  "speedup": c["training_speedup"]["measured"],
                  "map_x": c["mapping_cost_reduction"]["measured"],
                  "wv_pct": c["wv_fraction_percent"]["measured"]}
        out[model] = {k: _sig(values[k]) for k in HEADLINE_METRICS}
    return out


def write_headline_metrics(paths: ProfilePaths, claims_doc: dict[str, Any]) -> None:
    """Write results/<profile>/metrics/<model>.json (stale models' files removed)."""
    folder = paths.result("metrics")
    for stale in folder.glob("*.json") if folder.is_dir() else []:
        stale.unlink()
    for model, values in headline_metrics(claims_doc).items():
        io.write_json(folder / f"{model}.json", values)


PLOT_DATA = {"accuracy_vs_sigma": ("sigma", "acc_mean"), "accuracy_gap": ("sigma", "gap_own"),
             "training": ("epoch", "val_chip_acc_mean")}
"""Data of the DVC plots (results/<profile>/plots/<plot>/<model>.csv): x column and the value
drawn. One column per method (every registered method; empty where it has no result), so that
DVC draws one line per method; SWIM at its default write-verify percentage. `training` has one
column per training run (validation accuracy on chips at sigma_train, per epoch)."""


def plot_methods(plot: str) -> list[str]:
    """The method columns of `plot`'s CSVs, in figure order (dvc.yaml lists the same)."""
    return [s.name for s in ordered() if plot != "training" or s.trains]


def plot_tables(profile: ProfileConfig, rows: list[dict[str, Any]],
                training: list[dict[str, str]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """plot -> model -> wide rows (x, then one value per method), sorted by x."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for exp in profile.experiments:
        model = exp.model
        default_p = exp.methods.of("swim").default_p
        for plot, (x, value) in PLOT_DATA.items():
            methods = plot_methods(plot)
            table: dict[float, dict[str, Any]] = {}
            if plot == "training":
                source = [(int(r["epoch"]), r["method"], io.cell_float(r[value]))
                          for r in training if r["model"] == model]
            else:
                source = [(r["sigma"], r["method"], r[value]) for r in rows
                          if r["model"] == model and r["method"] in methods
                          and (r["method"] != "swim" or r["swim_p_percent"] == default_p)]
            for xv, method, v in source:
                if method in methods:
                    table.setdefault(xv, {x: xv})[method] = v
            if table:
                out.setdefault(plot, {})[model] = [table[k] for k in sorted(table)]
    return out


def write_plot_data(profile: ProfileConfig, paths: ProfilePaths, rows: list[dict[str, Any]],
                    training: list[dict[str, str]]) -> None:
    """Write results/<profile>/plots/<plot>/<model>.csv (stale files removed)."""
    for plot in PLOT_DATA:
        folder = paths.result("plots") / plot
        for stale in folder.glob("*.csv") if folder.is_dir() else []:
            stale.unlink()
    for plot, by_model in plot_tables(profile, rows, training).items():
        columns = [PLOT_DATA[plot][0], *plot_methods(plot)]
        for model, table in by_model.items():
            io.write_csv(paths.result("plots") / plot / f"{model}.csv", table, columns)


def provenance(profile: ProfileConfig, paths: ProfilePaths, data: dict) -> dict[str, Any]:
    """Machine, versions, data sources with checksums and per-stage seconds of this profile
    (`stages`: per model, then the profile-wide stages under '*')."""
    stages: dict[str, dict[str, Any]] = {}
    timing = schema.TIMING_FOLDER
    for model, folder in ([(e.model, paths.for_model(e.model).result(timing))
                           for e in profile.experiments] + [("*", paths.results / timing)]):
        for f in sorted(Path(folder).glob("*.json")) if folder.is_dir() else []:
            stages.setdefault(model, {})[f.stem] = io.read_json(f, f.stem)
    return {"profile": profile.name, "summarized_on": machine_info(), "stages": stages,
            "data": {m: {k: d[k] for k in ("name", "source", "checksum")} for m, d in data.items()},
            "config": to_dict(profile)}
