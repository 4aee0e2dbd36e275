"""The fuller readings of TSB with BatchNorm recalibration (DESIGN sections 3 and 5).

- `tsb_bnrecal` (TSB + BN recalibration): the early TSB backbone (`tsb_backbone` run) is
  programmed once per chip; each chip's BatchNorm statistics are first re-estimated on its
  programmed backbone (as NIT + BN recalibration does, on `methods.nit_bnrecal.images` training
  images), then the chip's block is fine-tuned with those statistics frozen.
- `nit_block_bnrecal` (NIT + block + BN recalibration): the same procedure on the converged NIT
  model (`nit` run) plus a block.

Deployment: the programmed backbone (the same chip draw the fine-tuning saw, chip k =
`chip_seed(evaluation.seed, sigma, k, "chip")` like every method), its recalibrated statistics
and the block written with write-verify. The statistics the evaluation uses are exactly those the
fine-tuning used: they are stored in the finetune checkpoint (and can be recomputed bit for bit
with `tsb_finetune.bn_statistics`: the block is residual and zero-initialised, so it is at zero
during recalibration). Learning rate and epochs: the one TSB selection on validation
(`tsb_finetune.select_settings`); every other fine-tuning setting is `tsb`'s, per chip.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from tsblib import io
from tsblib.config import ExperimentConfig, FinetuneMode, ProfileConfig, TSBConfig
from tsblib.data import PreparedData
from tsblib.execution.context import (EvalContext, FinetuneContext, Point, calibration_batches,
                                      load_trained_model)
from tsblib.execution.tsb_finetune import (backbone_names, chips_at, finetune_chip_runs,
                                           finetune_images, tsb_model, written_blocks_hook)
from tsblib.runtime import use_channels_last
from tsblib.methods.tsb_bnrecal import TRAINED_FROM


def block_cfg(exp: ExperimentConfig, epochs: int) -> TSBConfig:
    """The block and fine-tuning settings of these methods: `tsb`'s, per chip, for `epochs`."""
    return dataclasses.replace(exp.tsb, mode=FinetuneMode.PER_CHIP, epochs=epochs)


def method_sigmas(name: str, exp: ExperimentConfig) -> tuple[float, ...]:
    """Sigma 0 (the own-gap reference) and the sigmas `evaluation.sigmas_for(name)` gives the
    method: every sigma of `evaluation.sigmas`, like tsb, or only `secondary_sigmas` when it is
    one of `evaluation.secondary_methods`."""
    return (0.0,) + tuple(s for s in exp.evaluation.sigmas_for(name) if s != 0.0)


def finetune_method(name: str, trained: nn.Module, data: PreparedData, exp: ExperimentConfig,
                    lr: float, epochs: int, profile: ProfileConfig, device: torch.device,
                    progress: bool = True) -> tuple[list[dict], dict]:
    """Fine-tune method `name`'s blocks for every chip and sigma, each chip with its
    recalibrated BatchNorm statistics: (finetune.csv rows, checkpoint payload with 'blocks' and
    'buffers' per repr(sigma))."""
    cfg = block_cfg(exp, epochs)
    model = tsb_model(trained, cfg)
    images = exp.methods.of("nit_bnrecal").images
    calibration = calibration_batches(data, images, device,
                                      use_channels_last(profile.runtime, device))
    rows, blocks, buffers = [], {}, {}
    for sigma in method_sigmas(name, exp):
        runs = finetune_chip_runs(model, data, exp, cfg, sigma, profile.device,
                                  profile.write_verify, device, profile.runtime, lr,
                                  progress=progress, calibration=calibration)
        blocks[repr(sigma)], buffers[repr(sigma)] = runs.blocks, runs.buffers
        rows.append({"model": exp.model, "method": name, "sigma": sigma, "chips": runs.chips,
                     "mode": cfg.mode.value, "lr": lr, "epochs": epochs,
                     "images": finetune_images(data, cfg), "bn_images": runs.bn_images,
                     "seconds": runs.seconds, "seconds_per_chip": runs.seconds / runs.chips})
    ckpt = {"model": exp.model, "variant": name, "trained_from": TRAINED_FROM[name], "lr": lr,
            "epochs": epochs, "bn_images": rows[0]["bn_images"], "blocks": blocks,
            "buffers": buffers}
    return rows, ckpt


def _finetuner(name: str):
    def finetune(ctx: FinetuneContext) -> list[dict]:
        run = TRAINED_FROM[name]
        trained = ctx.backbone if run == "tsb_backbone" else \
            load_trained_model(ctx.paths, ctx.exp, run, ctx.device)[0]
        rows, ckpt = finetune_method(name, trained, ctx.data, ctx.exp, ctx.lr, ctx.epochs,
                                     ctx.profile, ctx.device, ctx.progress)
        io.save_checkpoint(ctx.paths.finetune_checkpoint(ctx.exp.model, name), ckpt)
        if run == "tsb_backbone":  # on the stated backbone: the trajectory reuses it
            op = repr(ctx.exp.evaluation.operating_sigma)
            ctx.reuse[name] = (ckpt["blocks"][op], ckpt["buffers"][op])
        return rows

    finetune.__doc__ = (f"The finetune stage's {name}: its blocks for every chip and sigma, "
                        f"each chip with its recalibrated BatchNorm statistics.")
    return finetune


def _evaluator(name: str):
    def evaluate(ctx: EvalContext):
        exp, profile = ctx.exp, ctx.profile
        ev = exp.evaluation
        trained, _ = ctx.trained(TRAINED_FROM[name])
        path = ctx.paths.finetune_checkpoint(exp.model, name)
        ckpt = io.load_checkpoint(path, "finetune")
        model = tsb_model(trained, block_cfg(exp, int(ckpt.get("epochs", exp.tsb.epochs))))
        reference = None
        for s in method_sigmas(name, exp):
            if repr(s) not in ckpt.get("blocks", {}) or repr(s) not in ckpt.get("buffers", {}):
                raise io.StageInputError(f"{path} has no blocks or BatchNorm statistics for "
                                         f"sigma {s}; rerun the 'finetune' stage")
            hook = written_blocks_hook(model, ckpt["blocks"][repr(s)], s, ev.seed, profile.device,
                                       profile.write_verify, False, ctx.device,
                                       buffers=ckpt["buffers"][repr(s)])
            stats = ctx.monte_carlo(model, s, chips=chips_at(s, exp), desc=f"{name} s={s}",
                                    names=backbone_names(model), per_chip=hook)
            reference = stats.mean if reference is None else reference
            yield Point(name, s, reference, stats)

    evaluate.__doc__ = (f"{name}: each chip's programmed backbone, its recalibrated BatchNorm "
                        f"statistics and its block written with write-verify; own-gap reference "
                        f"at sigma = 0.")
    return evaluate


finetune_tsb_bnrecal = _finetuner("tsb_bnrecal")
evaluate_tsb_bnrecal = _evaluator("tsb_bnrecal")
finetune_nit_block_bnrecal = _finetuner("nit_block_bnrecal")
evaluate_nit_block_bnrecal = _evaluator("nit_block_bnrecal")
