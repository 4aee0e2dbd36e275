"""The pipeline stages (prepare, train, finetune, evaluate, mapping, summarize) for a profile.

Each stage reads the previous stages' outputs from `ProfilePaths`, writes its own atomically,
and is what `python -m tsblib <stage>` and dvc.yaml call.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from tsblib import io, writeverify
from tsblib.config import (ExperimentConfig, FinetuneMode, Placement, ProfileConfig, Sharing,
                           TSBConfig)
from tsblib.data import Batches, PreparedData, data_summary, load_dataset, load_prepared, save_prepared
from tsblib.evaluate import ChipStats, accuracy, monte_carlo
from tsblib.methods import bnrecal, swim
from tsblib.methods.training import early_epoch, make_objective, train
from tsblib.methods.tsb_finetune import backbone_names, finetune, programmed_backbones, read_back
from tsblib.models import INPUT_SHAPES, build_model
from tsblib.paths import ProfilePaths
from tsblib.runtime import configure, use_channels_last
from tsblib.tsb import insert_tsb, tsb_overhead, tsb_weight_names
from tsblib.variation import chip_seed, count_weights, mapped_weight_names, weight_error

log = logging.getLogger(__name__)

TRAINED = ("clean", "nit", "nft_ovf", "correctnet")
"""Methods with their own training run (the others reuse the NIT model or the TSB backbone)."""


# ----------------------------------------------------------------------------- helpers

def _needs(exp: ExperimentConfig, method: str) -> bool:
    return method in exp.methods.methods


def _trained_methods(exp: ExperimentConfig) -> list[str]:
    """Training runs needed: clean (for the ideal gap) and NIT (reused by most methods) always."""
    extra = [m for m in ("nft_ovf", "correctnet") if _needs(exp, m)]
    return ["clean", "nit"] + extra


def _data(paths: ProfilePaths, exp: ExperimentConfig) -> PreparedData:
    return load_prepared(paths.prepared_file(exp.model))


def load_trained_model(paths: ProfilePaths, exp: ExperimentConfig, method: str,
                       device: torch.device) -> tuple[nn.Module, dict]:
    """The model `method` trained by the 'train' stage (eval mode, on `device`) and its checkpoint."""
    ckpt = io.load_checkpoint(paths.train_checkpoint(exp.model, method), "train")
    if ckpt.get("model") != exp.model:
        raise io.StageInputError(f"{paths.train_checkpoint(exp.model, method)} holds model "
                                 f"{ckpt.get('model')!r}, not {exp.model!r}; rerun the 'train' stage")
    model = build_model(exp.model, exp.num_classes)
    model.load_state_dict(ckpt["state"])
    return model.to(device).eval(), ckpt


def evaluation_batches(data: PreparedData, exp: ExperimentConfig, device: torch.device,
                 channels_last: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The test set as evaluation batches (`exp.evaluation.batch_size` images, normalised)."""
    return list(Batches(data.test, exp.evaluation.batch_size, mean=data.mean, std=data.std,
                        device=device, channels_last=channels_last))


def _calibration_batches(data: PreparedData, images: int, device: torch.device,
                         channels_last: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `images` training images after a fixed shuffle (BN recal, SWIM sensitivity)."""
    gen = torch.Generator().manual_seed(12345)
    batches = Batches(data.train, 250, mean=data.mean, std=data.std, device=device, shuffle=True,
                      generator=gen, channels_last=channels_last)
    out, seen = [], 0
    for x, y in batches:
        if seen >= images:
            break
        out.append((x, y))
        seen += y.numel()
    return out


@dataclass(frozen=True)
class Variant:
    """A TSB variant: its name in results, its block config, and which ablation it belongs to."""

    name: str
    """'tsb' for the default, else 'tsb_<setting>'."""
    cfg: TSBConfig
    """Block and fine-tuning settings."""
    ablation: str
    """Ablation family ('default', 'width', 'placement', 'sharing', 'mode', 'read_noise')."""
    setting: str
    """The value varied, as text."""


def tsb_variants(exp: ExperimentConfig) -> list[Variant]:
    """The default TSB and every ablation variant of `exp` that differs from it."""
    base = exp.tsb
    out = [Variant("tsb", base, "default", "default")]
    seen = {base}

    def add(name: str, cfg: TSBConfig, ablation: str, setting: str) -> None:
        if cfg not in seen:
            seen.add(cfg)
            out.append(Variant(name, cfg, ablation, setting))

    for w in exp.ablation.widths:
        add(f"tsb_width{w}", dataclasses.replace(base, width=w), "width", str(w))
    for p in exp.ablation.placements:
        add(f"tsb_placement_{p}", dataclasses.replace(base, placement=Placement(p)), "placement", p)
    for s in exp.ablation.sharings:
        add(f"tsb_sharing_{s}", dataclasses.replace(base, sharing=Sharing(s)), "sharing", s)
    for m in exp.ablation.modes:
        add(f"tsb_mode_{m}", dataclasses.replace(base, mode=FinetuneMode(m)), "mode", m)
    for r in exp.ablation.sigma_reads:
        add(f"tsb_read{r:g}", dataclasses.replace(base, sigma_read=r), "read_noise", f"{r:g}")
    return out


def _tsb_model(backbone: nn.Module, cfg: TSBConfig) -> nn.Module | None:
    """A copy of `backbone` with the block inserted, or None when `cfg.width` does not fit."""
    model = copy.deepcopy(backbone)
    try:
        return insert_tsb(model, cfg)
    except ValueError as exc:
        log.warning("skipping TSB variant: %s", exc)
        return None


def _sigmas_for(variant: Variant, exp: ExperimentConfig) -> tuple[float, ...]:
    """The default TSB runs over the whole sweep; ablation variants at the operating point."""
    return exp.evaluation.sigmas if variant.name == "tsb" else (exp.evaluation.operating_sigma,)


def _chip_batches(chips: int, size: int) -> Iterator[list[int]]:
    for start in range(0, chips, size):
        yield list(range(start, min(start + size, chips)))


# ----------------------------------------------------------------------------- stages

def prepare(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Load every model's data set, split it and save it; write results/<profile>/data.json."""
    summaries = {}
    for exp in profile.experiments:
        data = load_dataset(exp.data)
        if data.num_classes != exp.num_classes:
            raise ValueError(f"models.{exp.model}.num_classes = {exp.num_classes} but data set "
                             f"{data.name!r} has {data.num_classes} classes; fix params.yaml")
        shape = tuple(data.train.images.shape[1:])
        if exp.model == "lenet3" and shape != INPUT_SHAPES["lenet3"]:
            raise ValueError(f"lenet3 needs 1x28x28 images but {data.name!r} has {shape}")
        save_prepared(data, paths.prepared_file(exp.model))
        summaries[exp.model] = data_summary(data)
    io.write_json(paths.result("data.json"), summaries)


def train_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Train clean, NIT (with the early TSB-backbone snapshot), NFT and CorrectNet models."""
    device = configure(profile.runtime)
    rows = []
    for exp in profile.experiments:
        data = _data(paths, exp)
        early = early_epoch(exp.train.epochs, exp.methods.tsb_early_fraction)
        for method in _trained_methods(exp):
            model = build_model(exp.model, exp.num_classes, seed=exp.train.seed)
            objective = make_objective(method, model, exp.train, exp.methods, profile.device)
            snap = (early,) if method == "nit" else ()
            result = train(model, data, exp.train, objective, device=device, runtime=profile.runtime,
                           device_model=profile.device, snapshot_epochs=snap,
                           curve_sigma=exp.train.sigma_train, curve_seed=exp.train.seed,
                           desc=f"{exp.model}/{method}", progress=progress)
            io.save_checkpoint(paths.train_checkpoint(exp.model, method),
                               {"model": exp.model, "method": method, "state": result.state,
                                "epochs": result.epochs, "seconds": result.seconds})
            if method == "nit":
                at = result.curve[early - 1]["seconds"]
                io.save_checkpoint(paths.train_checkpoint(exp.model, "tsb_backbone"),
                                   {"model": exp.model, "method": "tsb_backbone",
                                    "state": result.snapshots[early], "epochs": early, "seconds": at})
            for row in result.curve:
                rows.append({"model": exp.model, "method": method, **row})
    io.write_csv(paths.result("training.csv"), rows,
                 ["model", "method", "epoch", "seconds", "loss", "clean_acc", "var_acc_mean",
                  "var_acc_ci95"])


def finetune_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Fine-tune the TSB per chip (or once, shared-noise) for every variant and sigma."""
    device = configure(profile.runtime)
    rows = []
    for exp in profile.experiments:
        if not _needs(exp, "tsb"):
            continue
        data = _data(paths, exp)
        backbone, _ = load_trained_model(paths, exp, "tsb_backbone", device)
        for variant in tqdm(tsb_variants(exp), desc=f"{exp.model} TSB variants", disable=not progress):
            model = _tsb_model(backbone, variant.cfg)
            if model is None:
                continue
            per_sigma = {}
            for sigma in _sigmas_for(variant, exp):
                blocks, seconds, tuned = _finetune_sigma(model, data, exp, variant.cfg, sigma,
                                                         profile, device, progress)
                per_sigma[sigma] = blocks
                rows.append({"model": exp.model, "method": variant.name, "sigma": sigma,
                             "chips": tuned, "mode": variant.cfg.mode.value,
                             "epochs": variant.cfg.epochs, "seconds": seconds,
                             "seconds_per_chip": seconds / tuned})
            io.save_checkpoint(paths.finetune_checkpoint(exp.model, variant.name),
                               {"model": exp.model, "variant": variant.name,
                                "blocks": {repr(s): b for s, b in per_sigma.items()}})
    io.write_csv(paths.result("finetune.csv"), rows,
                 ["model", "method", "sigma", "chips", "mode", "epochs", "seconds",
                  "seconds_per_chip"])


def _finetune_sigma(model: nn.Module, data: PreparedData, exp: ExperimentConfig, cfg: TSBConfig,
                    sigma: float, profile: ProfileConfig, device: torch.device,
                    progress: bool) -> tuple[dict[str, torch.Tensor], float, int]:
    """Blocks for every chip at `sigma` ([chips, c, c] per block name; [1, c, c] in shared-noise
    mode), seconds spent, and the number of chips that cost serves."""
    chips = exp.evaluation.tsb_chips
    if cfg.mode is FinetuneMode.SHARED_NOISE:
        result = finetune(model, data, cfg, sigma, profile.device, profile.write_verify,
                          chip_params=None, seed=chip_seed(exp.evaluation.seed, sigma, 0, "ft"),
                          device=device, runtime=profile.runtime, progress=progress)
        # one block serves every chip: its cost per chip is the total over the chips it serves
        return {n: w.cpu() for n, w in result.blocks.items()}, result.seconds, chips
    parts: dict[str, list[torch.Tensor]] = {}
    seconds = 0.0
    for index in _chip_batches(chips, cfg.chip_batch):
        seeds = [chip_seed(exp.evaluation.seed, sigma, k, "chip") for k in index]
        programmed = programmed_backbones(model, sigma, profile.device, seeds)
        seen = read_back(programmed, cfg.sigma_read, seeds)
        result = finetune(model, data, cfg, sigma, profile.device, profile.write_verify,
                          chip_params=seen, seed=seeds[0], device=device,
                          runtime=profile.runtime, progress=progress)
        seconds += result.seconds
        for n, w in result.blocks.items():
            parts.setdefault(n, []).append(w.cpu())
    return {n: torch.cat(ws) for n, ws in parts.items()}, seconds, chips


def evaluate_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Monte Carlo accuracy of every method over the sigma sweep (and ablations at the
    operating point); writes chips.csv (one row per chip) and evaluation.csv (statistics)."""
    device = configure(profile.runtime)
    chip_rows, stat_rows = [], []
    for exp in profile.experiments:
        for method, p, sigma, clean_acc, stats in _evaluate_experiment(profile, paths, exp, device,
                                                                        progress):
            base = {"model": exp.model, "method": method, "swim_p_percent": p, "sigma": sigma}
            chip_rows += [{**base, "chip": k, "acc": a} for k, a in enumerate(stats.accuracies)]
            stat_rows.append({**base, "chips": stats.chips, "clean_acc": clean_acc,
                              "acc_mean": stats.mean, "acc_std": stats.std, "acc_ci95": stats.ci95})
    io.write_csv(paths.result("chips.csv"), chip_rows,
                 ["model", "method", "swim_p_percent", "sigma", "chip", "acc"])
    io.write_csv(paths.result("evaluation.csv"), stat_rows,
                 ["model", "method", "swim_p_percent", "sigma", "chips", "clean_acc", "acc_mean",
                  "acc_std", "acc_ci95"])


def _evaluate_experiment(profile: ProfileConfig, paths: ProfilePaths, exp: ExperimentConfig,
                         device: torch.device, progress: bool):
    """Yield (method, swim_p, sigma, noise-free accuracy, ChipStats) for every evaluated point."""
    ev = exp.evaluation
    cl = use_channels_last(profile.runtime, device)
    data = _data(paths, exp)
    test = evaluation_batches(data, exp, device, cl)
    common = dict(device=profile.device, batches=test, seed=ev.seed, chip_batch=ev.chip_batch,
                  wv=profile.write_verify, runtime=profile.runtime, progress=progress, tag="chip")

    def mc(model: nn.Module, sigma: float, chips: int, desc: str, **kw) -> ChipStats:
        return monte_carlo(model, mapped_weight_names(model), sigma, chips=chips, desc=desc,
                           **common, **kw)

    nit = None
    for method in _trained_methods(exp):
        model, _ = load_trained_model(paths, exp, method, device)
        clean = accuracy(model, test, profile.runtime)
        if method == "nit":
            nit, nit_clean = model, clean
        for sigma in ev.sigmas:
            yield method, None, sigma, clean, mc(model, sigma, ev.chips, f"{method} s={sigma}")

    if nit is None:  # NIT-based methods selected without NIT itself
        nit, _ = load_trained_model(paths, exp, "nit", device)
        nit_clean = accuracy(nit, test, profile.runtime)
    names = mapped_weight_names(nit)
    if _needs(exp, "full_wv"):
        for sigma in ev.sigmas:
            yield "full_wv", None, sigma, nit_clean, mc(nit, sigma, ev.chips, f"full_wv s={sigma}",
                                                        verify={n: True for n in names})
    if _needs(exp, "nit_bnrecal"):
        recal = _bn_recalibration(nit, data, exp, device, profile.runtime)
        for sigma in ev.sigmas:
            yield "nit_bnrecal", None, sigma, nit_clean, mc(nit, sigma, ev.chips,
                                                            f"bn recal s={sigma}", per_chip=recal)
    if _needs(exp, "swim"):
        calib = _calibration_batches(data, exp.methods.sensitivity_batches * 250, device, cl)
        sens = swim.fisher_sensitivity(nit, names, calib, profile.device)
        masks = {p: swim.top_fraction_mask(sens, p) for p in exp.methods.swim_p_percent}
        for p in exp.methods.swim_p_percent:
            sigmas = ev.sigmas if p == exp.methods.swim_default_p else (ev.operating_sigma,)
            for sigma in sigmas:
                yield "swim", p, sigma, nit_clean, mc(nit, sigma, ev.chips, f"swim p={p} s={sigma}",
                                                      verify=masks[p])
    if _needs(exp, "tsb"):
        yield from _evaluate_tsb(profile, paths, exp, device, data, test, common, progress)


def _bn_recalibration(model: nn.Module, data, exp: ExperimentConfig, device: torch.device,
                      runtime) -> Callable:
    """The `per_chip` hook of `monte_carlo` that re-estimates each chip's BatchNorm statistics
    on `exp.methods.bnrecal_images` training images."""
    calib = _calibration_batches(data, exp.methods.bnrecal_images, device,
                                 use_channels_last(runtime, device))
    return lambda index, stacked: (stacked, bnrecal.recalibrate_chips(model, stacked, calib, runtime))


def _evaluate_tsb(profile, paths, exp, device, data, test, common, progress):
    """TSB variants: each chip's programmed backbone (the same draw the fine-tuning saw) plus
    its fine-tuned block written with write-verify; and the early backbone alone / with BN recal."""
    ev = exp.evaluation
    backbone, _ = load_trained_model(paths, exp, "tsb_backbone", device)
    backbone_clean = accuracy(backbone, test, profile.runtime)
    sigma = ev.operating_sigma
    names = mapped_weight_names(backbone)
    yield "tsb_backbone_only", None, sigma, backbone_clean, monte_carlo(
        backbone, names, sigma, chips=ev.tsb_chips, desc="backbone only", **common)
    recal = _bn_recalibration(backbone, data, exp, device, profile.runtime)
    yield "tsb_backbone_bnrecal", None, sigma, backbone_clean, monte_carlo(
        backbone, names, sigma, chips=ev.tsb_chips, desc="backbone + BN recal", per_chip=recal,
        **common)
    for variant in tsb_variants(exp):
        model = _tsb_model(backbone, variant.cfg)
        if model is None:
            continue
        ckpt = io.load_checkpoint(paths.finetune_checkpoint(exp.model, variant.name), "finetune")
        block_names = tsb_weight_names(model)
        bb_names = backbone_names(model)
        for sigma in _sigmas_for(variant, exp):
            key = repr(sigma)
            if key not in ckpt["blocks"]:
                raise io.StageInputError(f"{paths.finetune_checkpoint(exp.model, variant.name)} "
                                         f"has no blocks for sigma {sigma}; rerun the 'finetune' stage")
            blocks = ckpt["blocks"][key]
            shared = variant.cfg.mode is FinetuneMode.SHARED_NOISE

            def per_chip(index, stacked, blocks=blocks, sigma=sigma, shared=shared):
                out = dict(stacked)
                for n in block_names:
                    tuned = blocks[n][[0] * len(index)] if shared else blocks[n][index]
                    written = []
                    for k, w in zip(index, tuned):
                        g = torch.Generator().manual_seed(chip_seed(ev.seed, sigma, k, f"wv/{n}"))
                        err = weight_error(w, sigma, profile.device, g, True, profile.write_verify)
                        written.append(w + err)
                    out[n] = torch.stack(written).to(device)
                return out, {}

            stats = monte_carlo(model, bb_names, sigma, chips=ev.tsb_chips,
                                desc=f"{variant.name} s={sigma}", per_chip=per_chip, **common)
            yield variant.name, None, sigma, backbone_clean, stats


def verify_plan(exp: ExperimentConfig, method: str, swim_p: float | None = None,
                tsb_cfg: TSBConfig | None = None) -> tuple[int, int]:
    """(weights mapped to devices, weights write-verified) of a deployment `method`:
    'full_wv' verifies all, 'swim' the top p %, TSB variants their block; the rest none."""
    model = build_model(exp.model, exp.num_classes)
    n_backbone = count_weights(model)
    if method == "full_wv":
        return n_backbone, n_backbone
    if method == "swim":
        return n_backbone, int(round(float(swim_p) / 100 * n_backbone))
    if method.startswith("tsb") and not method.startswith("tsb_backbone"):
        with_block = insert_tsb(model, tsb_cfg or exp.tsb)
        n_block = count_weights(with_block, tsb_weight_names(with_block))
        return n_backbone + n_block, n_block
    return n_backbone, 0


def mapping_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Expected weights-to-device mapping cost of every deployment plan at every sigma."""
    rows = []
    for exp in profile.experiments:
        plans = [("no_verify", None), ("full_wv", None), ("tsb", None)]
        plans += [("swim", p) for p in exp.methods.swim_p_percent]
        for plan, p in plans:
            total, verified = verify_plan(exp, plan, p)
            for sigma in exp.evaluation.sigmas:
                cost = writeverify.mapping_cost(total, verified, sigma, profile.device,
                                                profile.write_verify, profile.mapping)
                rows.append({"model": exp.model, "plan": plan, "swim_p_percent": p, "sigma": sigma,
                             "weights": total, "verified_weights": verified,
                             "devices": cost.devices, "verified_devices": cost.verified_devices,
                             "write_pulses": cost.write_pulses, "reads": cost.reads,
                             "time_s": cost.time_s, "energy_j": cost.energy_j})
    io.write_csv(paths.result("mapping.csv"), rows,
                 ["model", "plan", "swim_p_percent", "sigma", "weights", "verified_weights",
                  "devices", "verified_devices", "write_pulses", "reads", "time_s", "energy_j"])


def overhead_rows(profile: ProfileConfig) -> list[dict]:
    """Block overhead (weights, MACs, fraction) of every model's default TSB."""
    rows = []
    for exp in profile.experiments:
        model = insert_tsb(build_model(exp.model, exp.num_classes), exp.tsb)
        o = tsb_overhead(model, INPUT_SHAPES[exp.model])
        rows.append({"model": exp.model, "tsb_width": exp.tsb.width, **dataclasses.asdict(o)})
    return rows
