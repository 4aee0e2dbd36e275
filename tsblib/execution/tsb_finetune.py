"""TSB as we read it (DESIGN section 3): per-chip fine-tuning of the Tiny Shared Block, the
backbone frozen at a chip's programmed (read-back) weights and BatchNorm frozen; only the block
is trained, under write-verify noise; at deployment the block is written with write-verify, the
backbone once. Chips are fine-tuned together, stacked along the channels
(`tsblib.execution.chipbatch`). Its spec, variants and checks: `tsblib.methods.tsb_finetune`.

Also here: the per-chip BatchNorm statistics the fuller readings fine-tune with
(`finetune_chip_runs(calibration=...)`, used by `tsblib.execution.tsb_bnrecal`), and the
validation search of the fine-tuning settings (`select_settings`: block width, learning rate and
epochs; `tsblib.methods.tsb_finetune.selection_edges` says whether each choice lies at the edge
of its searched range)."""
from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import torch
from torch import nn
from torch.func import functional_call
from tqdm.auto import tqdm

from tsblib import io
from tsblib.execution.chipbatch import chip_batched
from tsblib.config import (ConfigError, DeviceConfig, ExperimentConfig, FinetuneMode, RuntimeConfig,
                           TSBConfig, WriteVerifyConfig)
from tsblib.data import Batches, PreparedData, Split
from tsblib.devices.base import train_stack_of
from tsblib.devices.drift import at_programming
from tsblib.execution.evaluate import monte_carlo
from tsblib.execution import bnrecal
from tsblib.execution.context import (Deployed, EvalContext, FinetuneContext, Point, RobustContext,
                                      split_batches)
from tsblib.runtime import autocast, use_channels_last
from tsblib.tsb import insert_tsb, tsb_weight_names
from tsblib.variation import (chip_seed, error_std_factor, mapped_weight_names, read_hook,
                              sample_chips, training_noise, weight_error)
from tsblib.methods.tsb_finetune import (Variant, _best, selection_epochs, selection_widths,
                                         tsb_variants)

log = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    """Fine-tuned block weights of a batch of chips and the cost."""

    blocks: dict[str, torch.Tensor]
    """Block weights per chip, stacked: {name: [K, c, c]} (K = 1 in shared-noise mode)."""
    seconds: float
    """Wall-clock seconds spent fine-tuning these chips."""
    epochs: int
    """Fine-tuning epochs."""
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    """Block weights after each epoch of `snapshot_epochs` (stacked like `blocks`)."""


def backbone_names(model: nn.Module) -> list[str]:
    """Mapped weights of the backbone (everything on devices except the block)."""
    block = set(tsb_weight_names(model))
    return [n for n in mapped_weight_names(model) if n not in block]


def read_back(stacked: dict[str, torch.Tensor], sigma_read: float, seeds: list[int],
              device: DeviceConfig | None = None, sigma: float = 0.0) -> dict[str, torch.Tensor]:
    """What the fine-tuning sees of the programmed weights: one read with Gaussian read noise
    of std `error_std_factor * sigma_read * max|W|` (device-range convention), per chip; and,
    when the chips' device models have read noise (`device`, at `sigma`), one read of it."""
    out = stacked
    if sigma_read != 0:
        read_device = DeviceConfig()
        out = {}
        for name, weights in stacked.items():
            noisy = []
            for k, seed in enumerate(seeds):
                g = torch.Generator().manual_seed(chip_seed(seed, sigma_read, 0, f"read/{name}"))
                w = weights[k]
                std = error_std_factor(read_device) * sigma_read * w.abs().max().cpu()
                noisy.append(w + (std * torch.randn(w.shape, generator=g)).to(w.device, w.dtype))
            out[name] = torch.stack(noisy)
    read = None if device is None else read_hook(
        device, sigma, [chip_seed(s, sigma, 0, "read-back") for s in seeds], {})
    return out if read is None else read(out)


def _residual_noise(blocks: dict[str, torch.Tensor], sigma: float, device: DeviceConfig,
                    wv: WriteVerifyConfig, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Blocks with a fresh write-verify residual error, per chip, from the training device
    models (`train_stack_of(device)`; Gaussian: the residual's std)."""
    if sigma == 0:
        return blocks
    stack = train_stack_of(device)
    return {n: stack.perturb(w, sigma, generator, verified=True, wv=wv, batch_dims=1)
            for n, w in blocks.items()}


FINETUNE_SUBSET_SEED = 4242
"""Seed of the fixed training subset of `tsb.images` images (the same for every chip)."""


def finetune_split(data: PreparedData, cfg: TSBConfig) -> Split:
    """The training images the fine-tuning sees: all of `data.train`, or a fixed seeded subset
    of `cfg.images` of them."""
    if not cfg.images or cfg.images >= len(data.train):
        return data.train
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(FINETUNE_SUBSET_SEED))
    return data.train.subset(order[:cfg.images].sort().values)


def finetune_images(data: PreparedData, cfg: TSBConfig) -> int:
    """Training images each chip's fine-tuning actually uses per epoch: the `finetune_split`
    in whole mini-batches of `cfg.batch_size` (the last partial batch is dropped)."""
    return len(finetune_split(data, cfg)) // cfg.batch_size * cfg.batch_size


def check_finetune_images(data: PreparedData, cfg: TSBConfig, model: str | None = None) -> None:
    """Refuse a `tsb.images` larger than the training split (checked where the data is known:
    the start of the finetune stage); warn when not one mini-batch of it is seen."""
    where = f"models.{model}: " if model else ""
    n = len(data.train)
    if cfg.images > n:
        raise ConfigError(f"{where}tsb.images = {cfg.images} is larger than the training split "
                          f"({n} images); allowed: 0 (all) or 1..{n}. Fix it in params.yaml.")
    used = len(finetune_split(data, cfg))
    if used < cfg.batch_size:  # legal (tiny test profiles), but no fine-tuning step is taken
        log.warning("%stsb.batch_size = %d is larger than the %d images the fine-tuning sees: the "
                    "block takes no step (finetune.csv images = 0)", where, cfg.batch_size, used)


def finetune(model: nn.Module, data: PreparedData, cfg: TSBConfig, sigma: float,
             device_model: DeviceConfig, wv: WriteVerifyConfig, *, chip_params: dict[str, torch.Tensor] | None,
             seed: int, device: torch.device, runtime: RuntimeConfig,
             progress: bool = True, lr: float | None = None,
             chip_buffers: dict[str, torch.Tensor] | None = None,
             snapshot_epochs: Iterable[int] = ()) -> FinetuneResult:
    """Fine-tune the block of `model` (which carries an inserted, zero-initialised TSB).

    per-chip mode: `chip_params` holds K chips' read-back backbone weights [K, ...]; one block
    per chip is trained against its chip. shared-noise mode: `chip_params` is None; one block is
    trained against a fresh backbone error at `sigma` every step. `lr` overrides `cfg.lr[0]`.
    `chip_buffers` (per-chip mode only) gives each chip's BatchNorm statistics [K, C], frozen,
    in place of the model's. `snapshot_epochs` (each in 1..cfg.epochs) also returns the blocks
    after those epochs: the learning rate is constant, so they equal runs of that many epochs.
    """
    snapshot_epochs = set(snapshot_epochs)
    if any(not 1 <= e <= cfg.epochs for e in snapshot_epochs):
        raise ValueError(f"snapshot_epochs {sorted(snapshot_epochs)} must lie in 1..{cfg.epochs}")
    if chip_buffers is not None and chip_params is None:
        raise ValueError("per-chip BatchNorm statistics need per-chip weights (per-chip mode)")
    model.eval()  # BatchNorm statistics frozen
    names = tsb_weight_names(model)
    params = {n: p.detach() for n, p in model.named_parameters()}
    k = 1 if chip_params is None else next(iter(chip_params.values())).shape[0]
    blocks = {n: torch.zeros(k, *params[n].shape, device=device, requires_grad=True) for n in names}
    opt = torch.optim.Adam(list(blocks.values()), lr=lr if lr is not None else cfg.lr[0])
    order = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=device).manual_seed(seed)
    cl = use_channels_last(runtime, device)
    batches = Batches(finetune_split(data, cfg), cfg.batch_size, mean=data.mean, std=data.std,
                      device=device, shuffle=True, generator=order, drop_last=True,
                      channels_last=cl)
    backbone = backbone_names(model)
    batched = None if chip_params is None else chip_batched(model, chip_params, chip_buffers)
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    start = time.perf_counter()
    for epoch in tqdm(range(cfg.epochs), desc=f"tsb fine-tune ({k} chips)", disable=not progress, leave=False):
        for x, y in batches:
            noisy_blocks = _residual_noise(blocks, sigma, device_model, wv, noise)
            with autocast(runtime, device):
                if batched is None:  # shared noise: one block against a fresh backbone error
                    fresh = training_noise(params, backbone, sigma, device_model, noise)
                    single = {n: w[0] for n, w in noisy_blocks.items()}
                    logits = functional_call(model, {**params, **fresh, **single}, (x,)).unsqueeze(0)
                else:
                    batched.set_blocks(noisy_blocks)
                    logits = batched(x)
            loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), y.repeat(k)) * k
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch + 1 in snapshot_epochs:
            snapshots[epoch + 1] = {n: w.detach().clone() for n, w in blocks.items()}
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return FinetuneResult(blocks={n: w.detach() for n, w in blocks.items()}, seconds=seconds,
                          epochs=cfg.epochs, snapshots=snapshots)


def programmed_backbones(model: nn.Module, sigma: float, device_model: DeviceConfig,
                         seeds: list[int]) -> dict[str, torch.Tensor]:
    """The programmed backbone weights of chips `seeds` (stacked), as deployment sees them."""
    return sample_chips(dict(model.named_parameters()), backbone_names(model), sigma,
                        device_model, seeds)


# ----------------------------------------------------------------------------- variants


def tsb_model(backbone: nn.Module, cfg: TSBConfig) -> nn.Module:
    """A copy of `backbone` with the block inserted (`validate` has checked that it fits)."""
    return insert_tsb(copy.deepcopy(backbone), cfg)


def variant_sigmas(variant: Variant, exp: ExperimentConfig) -> tuple[float, ...]:
    """Sigmas a variant is fine-tuned and evaluated at: sigma = 0 (the deployed model's
    noise-free accuracy, the own-gap reference) and the sweep for the default TSB, the operating
    point for ablation variants."""
    ev = exp.evaluation
    sigmas = ev.sigmas if variant.name == "tsb" else (ev.operating_sigma,)
    return (0.0,) + tuple(s for s in sigmas if s != 0.0)


def chips_at(sigma: float, exp: ExperimentConfig) -> int:
    """Per-chip TSB chips at `sigma`: one at sigma = 0 (every chip is the same), else tsb_chips."""
    return 1 if sigma == 0 else exp.evaluation.tsb_chips


def chip_groups(chips: int, size: int) -> Iterator[list[int]]:
    """Chip indices 0..chips-1 in groups of at most `size`."""
    for start in range(0, chips, size):
        yield list(range(start, min(start + size, chips)))


@dataclass
class ChipRuns:
    """Fine-tuned blocks of every chip at one sigma (`finetune_chip_runs`)."""

    blocks: dict[str, torch.Tensor]
    """Block weights per chip, on the CPU: {name: [chips, c, c]} ([1, c, c] in shared-noise mode)."""
    seconds: float
    """Seconds spent (fine-tuning, plus BatchNorm recalibration when there is one)."""
    chips: int
    """Chips that cost serves."""
    snapshots: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    """Blocks after each snapshot epoch (like `blocks`)."""
    buffers: dict[str, torch.Tensor] | None = None
    """Per-chip BatchNorm statistics the fine-tuning used (on the CPU, [chips, C]), or None."""
    bn_images: int = 0
    """Images each chip's BatchNorm recalibration used (0: none)."""


def bn_statistics(model: nn.Module, sigma: float, device_model: DeviceConfig, seeds: list[int],
                  calibration: list[tuple[torch.Tensor, torch.Tensor]],
                  runtime: RuntimeConfig | None = None) -> dict[str, torch.Tensor]:
    """Each chip's re-estimated BatchNorm statistics ([K, C] per buffer), as NIT + BN
    recalibration computes them: on chip `seeds`' programmed backbone with the block at zero
    (`model` carries its zero-initialised, residual block, so it changes nothing), on
    `calibration` (training images). Deterministic: the same chips give the same statistics."""
    zero = {n: torch.zeros_like(p) for n, p in model.named_parameters()
            if n in set(tsb_weight_names(model))}
    programmed = programmed_backbones(model, sigma, device_model, seeds)
    stacked = {**programmed, **{n: z.unsqueeze(0).expand(len(seeds), *z.shape)
                                for n, z in zero.items()}}
    return bnrecal.recalibrate_chips(model, stacked, calibration, runtime)


def finetune_chip_runs(model: nn.Module, data: PreparedData, exp: ExperimentConfig,
                       cfg: TSBConfig, sigma: float, device_model: DeviceConfig,
                       wv: WriteVerifyConfig, device: torch.device, runtime: RuntimeConfig,
                       lr: float, *, chips: int | None = None, eval_seed: int | None = None,
                       progress: bool = True, snapshot_epochs: Iterable[int] = (),
                       calibration: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> ChipRuns:
    """Blocks for every chip at `sigma`, fine-tuned for `cfg.epochs` epochs (and after each of
    `snapshot_epochs`). Chip k is `chip_seed(eval_seed, sigma, k, "chip")`, the draw the
    evaluation deploys on. With `calibration` (training images; per-chip mode only), each chip's
    BatchNorm statistics are first re-estimated on its programmed backbone (`bn_statistics`) and
    the block is fine-tuned with them frozen (TSB + BN recalibration)."""
    chips = chips_at(sigma, exp) if chips is None else chips
    seed = exp.evaluation.seed if eval_seed is None else eval_seed
    snapshot_epochs = tuple(snapshot_epochs)
    if cfg.mode is FinetuneMode.SHARED_NOISE:
        if calibration is not None:
            raise ValueError("BatchNorm recalibration is per chip: not with shared-noise mode")
        result = finetune(model, data, cfg, sigma, device_model, wv, chip_params=None,
                          seed=chip_seed(seed, sigma, 0, "ft"), device=device, runtime=runtime,
                          progress=progress, lr=lr, snapshot_epochs=snapshot_epochs)
        # one block serves every chip: its cost per chip is the total over the chips it serves
        return ChipRuns({n: w.cpu() for n, w in result.blocks.items()}, result.seconds, chips,
                        {e: {n: w.cpu() for n, w in b.items()} for e, b in result.snapshots.items()})
    parts: dict[str, list[torch.Tensor]] = {}
    snaps: dict[int, dict[str, list[torch.Tensor]]] = {}
    bufs: dict[str, list[torch.Tensor]] = {}
    seconds = 0.0
    for index in chip_groups(chips, cfg.chip_batch):
        seeds = [chip_seed(seed, sigma, k, "chip") for k in index]
        buffers = None
        if calibration is not None:
            t0 = time.perf_counter()
            buffers = bn_statistics(model, sigma, device_model, seeds, calibration, runtime)
            seconds += time.perf_counter() - t0
            for n, b in buffers.items():
                bufs.setdefault(n, []).append(b.cpu())
        programmed = programmed_backbones(model, sigma, device_model, seeds)
        seen = read_back(programmed, cfg.sigma_read, seeds, device_model, sigma)
        result = finetune(model, data, cfg, sigma, device_model, wv, chip_params=seen,
                          seed=seeds[0], device=device, runtime=runtime, progress=progress, lr=lr,
                          chip_buffers=buffers, snapshot_epochs=snapshot_epochs)
        seconds += result.seconds
        for n, w in result.blocks.items():
            parts.setdefault(n, []).append(w.cpu())
        for e, b in result.snapshots.items():
            for n, w in b.items():
                snaps.setdefault(e, {}).setdefault(n, []).append(w.cpu())
    return ChipRuns(blocks={n: torch.cat(ws) for n, ws in parts.items()}, seconds=seconds,
                    chips=chips,
                    snapshots={e: {n: torch.cat(ws) for n, ws in b.items()} for e, b in snaps.items()},
                    buffers=None if calibration is None else {n: torch.cat(b) for n, b in bufs.items()},
                    bn_images=0 if calibration is None else sum(int(y.numel()) for _, y in calibration))


def finetune_chips(model: nn.Module, data: PreparedData, exp: ExperimentConfig, cfg: TSBConfig,
                   sigma: float, device_model: DeviceConfig, wv: WriteVerifyConfig,
                   device: torch.device, runtime: RuntimeConfig, lr: float, *,
                   chips: int | None = None, eval_seed: int | None = None,
                   progress: bool = True) -> tuple[dict[str, torch.Tensor], float, int]:
    """Blocks for every chip at `sigma` ([chips, c, c] per block name; [1, c, c] in shared-noise
    mode), seconds spent, and the number of chips that cost serves (`finetune_chip_runs`)."""
    runs = finetune_chip_runs(model, data, exp, cfg, sigma, device_model, wv, device, runtime, lr,
                              chips=chips, eval_seed=eval_seed, progress=progress)
    return runs.blocks, runs.seconds, runs.chips


def written_blocks_hook(model: nn.Module, blocks: dict[str, torch.Tensor], sigma: float,
                        seed: int, device_model: DeviceConfig, wv: WriteVerifyConfig,
                        shared: bool, device: torch.device,
                        buffers: dict[str, torch.Tensor] | None = None):
    """The `per_chip` hook of `monte_carlo` that adds each chip's fine-tuned block, written with
    write-verify (its residual error drawn per chip), to the chip's programmed backbone; with
    `buffers` ({name: [chips, C]}, per chip), it also gives each chip those BatchNorm statistics
    (the ones its block was fine-tuned with)."""
    names = tsb_weight_names(model)

    def hook(index: list[int], stacked: dict[str, torch.Tensor]):
        out = dict(stacked)
        for n in names:
            tuned = blocks[n][[0] * len(index)] if shared else blocks[n][index]
            written = []
            for k, w in zip(index, tuned):
                g = torch.Generator().manual_seed(chip_seed(seed, sigma, k, f"wv/{n}"))
                written.append(w + weight_error(w, sigma, device_model, g, True, wv))
            out[n] = torch.stack(written).to(device)
        if buffers is None:
            return out, {}
        return out, {n: b[index].to(device) for n, b in buffers.items()}

    return hook


@dataclass(frozen=True)
class Selection:
    """The fine-tuning settings chosen on validation for the stated block width."""

    lr: float
    """Adam learning rate of the block."""
    epochs: int
    """Fine-tuning epochs."""
    rows: list[dict]
    """Evidence (tsb_lr.csv rows); empty when nothing was searched."""


def select_settings(backbone: nn.Module, data: PreparedData, exp: ExperimentConfig,
                    device_model: DeviceConfig, wv: WriteVerifyConfig, device: torch.device,
                    runtime: RuntimeConfig, progress: bool = True) -> Selection:
    """The fine-tuning learning rate (`tsb.lr`) and epochs (`selection_epochs`) with the best
    mean validation accuracy of one chip batch at the operating sigma (chips seeded apart from
    the evaluation's: evaluation.seed + 1) for the stated block width; ties: fewer epochs, then
    smaller lr. Every width of `selection_widths` is fine-tuned with every lr for
    max(epochs) epochs, evaluated after each candidate epoch count (the same blocks as separate
    shorter runs: the block's Adam has a constant learning rate). One candidate of each is
    returned as is, with no rows."""
    cfg = exp.tsb
    widths = selection_widths(exp)
    epochs = selection_epochs(cfg)
    if len(cfg.lr) == 1 and len(widths) == 1 and len(epochs) == 1:
        return Selection(cfg.lr[0], epochs[0], [])
    sigma = exp.evaluation.operating_sigma
    chips = min(cfg.chip_batch, exp.evaluation.tsb_chips)
    seed = exp.evaluation.seed + 1  # validation chips are not the evaluation's chips
    val = split_batches(data, data.val, exp.evaluation.batch_size, device,
                        use_channels_last(runtime, device))
    rows = []
    for width in widths:
        wcfg = dataclasses.replace(cfg, width=width, epochs=max(epochs))
        model = tsb_model(backbone, wcfg)
        for lr in cfg.lr:
            runs = finetune_chip_runs(model, data, exp, wcfg, sigma, device_model, wv, device,
                                      runtime, lr, chips=chips, eval_seed=seed,
                                      progress=progress, snapshot_epochs=epochs)
            for e in epochs:
                hook = written_blocks_hook(model, runs.snapshots[e], sigma, seed, device_model, wv,
                                           cfg.mode is FinetuneMode.SHARED_NOISE, device)
                stats = monte_carlo(model, backbone_names(model), sigma, device_model, val,
                                    chips=chips, seed=seed, chip_batch=chips, wv=wv,
                                    runtime=runtime, progress=False, tag="chip", per_chip=hook)
                rows.append({"model": exp.model, "width": width, "lr": lr, "epochs": e,
                             "sigma": sigma, "chips": chips, "val_acc_mean": stats.mean,
                             "val_acc_ci95": stats.ci95})
    best = _best([r for r in rows if r["width"] == cfg.width])
    for r in rows:
        r["selected"] = r is best
    return Selection(best["lr"], best["epochs"], rows)


def select_lr(backbone: nn.Module, data: PreparedData, exp: ExperimentConfig,
              device_model: DeviceConfig, wv: WriteVerifyConfig, device: torch.device,
              runtime: RuntimeConfig, progress: bool = True) -> tuple[float, list[dict]]:
    """The learning rate and evidence rows of `select_settings` (which also chooses epochs)."""
    chosen = select_settings(backbone, data, exp, device_model, wv, device, runtime, progress)
    return chosen.lr, chosen.rows


# ----------------------------------------------------------------------------- evaluation

def evaluate(ctx: EvalContext):
    """TSB variants: each chip's programmed backbone (the same draw the fine-tuning saw) plus
    its fine-tuned block written with write-verify; and the early backbone alone / with BN recal.
    The own-gap reference of a variant is its accuracy at sigma = 0 (backbone plus block)."""
    exp, profile = ctx.exp, ctx.profile
    ev = exp.evaluation
    backbone, backbone_clean = ctx.trained("tsb_backbone")
    sigma = ev.operating_sigma
    names = mapped_weight_names(backbone)
    yield Point("tsb_backbone_only", sigma, backbone_clean, ctx.monte_carlo(
        backbone, sigma, chips=ev.tsb_chips, desc="backbone only", names=names))
    hook = bnrecal.recalibration_hook(
        backbone, ctx.calibration(exp.methods.of("nit_bnrecal").images), profile.runtime)
    yield Point("tsb_backbone_bnrecal", sigma, backbone_clean, ctx.monte_carlo(
        backbone, sigma, chips=ev.tsb_chips, desc="backbone + BN recal", names=names,
        per_chip=hook))
    for variant in tsb_variants(exp):
        model = tsb_model(backbone, variant.cfg)
        path = ctx.paths.finetune_checkpoint(exp.model, variant.name)
        ckpt = io.load_checkpoint(path, "finetune")
        reference = None
        for s in variant_sigmas(variant, exp):
            if repr(s) not in ckpt["blocks"]:
                raise io.StageInputError(f"{path} has no blocks for sigma {s}; rerun the "
                                         f"'finetune' stage")
            hook = written_blocks_hook(model, ckpt["blocks"][repr(s)], s, ev.seed, profile.device,
                                       profile.write_verify,
                                       variant.cfg.mode is FinetuneMode.SHARED_NOISE, ctx.device)
            stats = ctx.monte_carlo(model, s, chips=chips_at(s, exp), desc=f"{variant.name} s={s}",
                                    names=backbone_names(model), per_chip=hook)
            reference = stats.mean if reference is None else reference
            yield Point(variant.name, s, reference, stats)


def finetune_step(ctx: FinetuneContext) -> list[dict]:
    """The finetune stage's TSB: every variant (the default and the ablations) at its sigmas,
    with the learning rate and epochs chosen on validation; one checkpoint per variant."""
    exp, profile, rows = ctx.exp, ctx.profile, []
    for variant in tqdm(tsb_variants(exp), desc=f"{exp.model} TSB variants",
                        disable=not ctx.progress):
        cfg = dataclasses.replace(variant.cfg, epochs=ctx.epochs)
        model = tsb_model(ctx.backbone, cfg)
        per_sigma = {}
        for sigma in variant_sigmas(variant, exp):
            blocks, seconds, tuned = finetune_chips(model, ctx.data, exp, cfg, sigma,
                                                    profile.device, profile.write_verify,
                                                    ctx.device, profile.runtime, ctx.lr,
                                                    progress=ctx.progress)
            per_sigma[sigma] = blocks
            rows.append({"model": exp.model, "method": variant.name, "sigma": sigma,
                         "chips": tuned, "mode": cfg.mode.value, "lr": ctx.lr,
                         "epochs": ctx.epochs, "images": finetune_images(ctx.data, cfg),
                         "bn_images": 0, "seconds": seconds, "seconds_per_chip": seconds / tuned})
        io.save_checkpoint(ctx.paths.finetune_checkpoint(exp.model, variant.name),
                           {"model": exp.model, "variant": variant.name, "lr": ctx.lr,
                            "epochs": ctx.epochs,
                            "blocks": {repr(s): b for s, b in per_sigma.items()}})
        if variant.name == "tsb":  # the default block: the trajectory's stated backbone reuses it
            ctx.reuse["tsb"] = (per_sigma[exp.evaluation.operating_sigma], None)
    return rows


@dataclass
class _Deployable:
    """The fine-tuned TSB of the robustness stage, shared by its two deployments."""

    model: nn.Module
    """The backbone with its block inserted."""
    cfg: TSBConfig
    """The block's settings, with the epochs chosen on validation (as the finetune stage used)."""
    lr: float
    """The learning rate chosen on validation."""
    clean_acc: float
    """Noise-free accuracy with the block fine-tuned at sigma = 0 (the yield reference)."""


def _deployable(ctx: RobustContext) -> _Deployable:
    exp, ev, profile = ctx.eval.exp, ctx.eval.exp.evaluation, ctx.eval.profile
    backbone, _ = ctx.eval.trained("tsb_backbone")
    model = tsb_model(backbone, exp.tsb)
    ckpt = io.load_checkpoint(ctx.eval.paths.finetune_checkpoint(exp.model, "tsb"), "finetune")
    cfg = dataclasses.replace(exp.tsb, epochs=int(ckpt.get("epochs", exp.tsb.epochs)))
    reference = written_blocks_hook(model, ckpt["blocks"][repr(0.0)], 0.0, ev.seed,
                                    profile.device, profile.write_verify, False, ctx.eval.device)
    clean = ctx.eval.monte_carlo(model, 0.0, chips=1, names=backbone_names(model),
                                 per_chip=reference, desc="tsb s=0").mean
    return _Deployable(model, cfg, ckpt["lr"], clean)


def robust_per_chip(ctx: RobustContext) -> Deployed:
    """TSB as deployed: each scenario's chips programmed, read back at programming, and their
    blocks fine-tuned on them; then evaluated under the scenario's device model (drift: later)."""
    tsb = ctx.shared("tsb", lambda: _deployable(ctx))
    e, profile, blocks = ctx.eval, ctx.eval.profile, {}

    def on_scenario(scenario) -> None:
        blocks["chips"], _, _ = finetune_chips(
            tsb.model, e.data, e.exp, tsb.cfg, ctx.sigma, at_programming(scenario.device),
            profile.write_verify, e.device, profile.runtime, tsb.lr, chips=ctx.chips,
            progress=False)

    def chips(device: DeviceConfig):
        hook = written_blocks_hook(tsb.model, blocks["chips"], ctx.sigma, e.exp.evaluation.seed,
                                   device, profile.write_verify, False, e.device)
        return ctx.monte_carlo(tsb.model, device, "tsb", names=backbone_names(tsb.model),
                               per_chip=hook)

    return Deployed(chips, tsb.clean_acc, on_scenario)


def robust_gaussian(ctx: RobustContext) -> Deployed:
    """TSB knowing only a Gaussian model: one block for every chip, fine-tuned against fresh
    Gaussian backbone noise (shared-noise mode); the same block serves every scenario."""
    tsb = ctx.shared("tsb", lambda: _deployable(ctx))
    e, profile, ev = ctx.eval, ctx.eval.profile, ctx.eval.exp.evaluation
    gaussian = dataclasses.replace(profile.device, model=("gaussian",), train_model=(), params={})
    result = finetune(tsb.model, e.data, dataclasses.replace(tsb.cfg, mode=FinetuneMode.SHARED_NOISE),
                      ctx.sigma, gaussian, profile.write_verify, chip_params=None,
                      seed=chip_seed(ev.seed, ctx.sigma, 0, "ft-gaussian"), device=e.device,
                      runtime=profile.runtime, progress=e.progress, lr=tsb.lr)
    blocks = {n: w.cpu() for n, w in result.blocks.items()}

    def chips(device: DeviceConfig):
        hook = written_blocks_hook(tsb.model, blocks, ctx.sigma, ev.seed, device,
                                   profile.write_verify, True, e.device)
        return ctx.monte_carlo(tsb.model, device, "tsb_gaussian",
                               names=backbone_names(tsb.model), per_chip=hook)

    return Deployed(chips, tsb.clean_acc)


