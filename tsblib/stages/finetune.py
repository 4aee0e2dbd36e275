"""The finetune stage: the block's fine-tuning settings chosen on validation, then every selected
method's per-chip block fine-tuning and the studies' (finetune.csv, tsb_lr.csv)."""
from __future__ import annotations

from tsblib import io, schema
from tsblib.config import ProfileConfig
from tsblib.execution.context import FinetuneContext, load_trained_model
from tsblib.execution.tsb_finetune import check_finetune_images, select_settings
from tsblib.methods.registry import ordered
from tsblib.methods.studies import studies_of
from tsblib.paths import ProfilePaths
from tsblib.runtime import configure
from tsblib.stages.common import prepared_data


def finetune_stage(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Choose the block's learning rate and epochs on validation (`tsb.lr` x
    `tsb.select_epochs` candidates), once per model, then run every listed method's own block
    fine-tuning with that choice (`MethodSpec.finetune`: TSB per chip, or once in shared-noise
    mode, for every variant and sigma; the BN-recalibrated block methods), and the default TSB on
    every backbone age and seed of the training-cost trajectory (`tsblib.methods.studies`)."""
    device = configure(profile.runtime)
    for exp in profile.experiments:  # a corrupt input is named now, not minutes into the stage
        io.check_checkpoints([paths.train_checkpoint_dir(exp.model)], "train")
    rows, lr_rows = [], []
    for exp in profile.experiments:
        finetuned = [spec for spec in ordered(exp.methods.methods) if spec.finetune is not None]
        if not finetuned:
            continue
        data = prepared_data(paths, exp)
        check_finetune_images(data, exp.tsb, exp.model)
        backbone, _ = load_trained_model(paths, exp, "tsb_backbone", device)
        chosen = select_settings(backbone, data, exp, profile.device, profile.write_verify,
                                 device, profile.runtime, progress)
        lr, epochs = chosen.lr, chosen.epochs
        lr_rows += chosen.rows
        ctx = FinetuneContext(profile, exp, paths, device, data, backbone, lr, epochs, progress)
        for spec in finetuned:  # in figure order: TSB, then the BN-recalibrated block methods
            rows += spec.finetune(ctx)
        for study in studies_of(exp):  # TSB from every backbone age and seed, the same choice
            if study.finetune is not None:
                study.finetune(ctx)
    io.write_table(paths, schema.FINETUNE, rows)
    io.write_table(paths, schema.TSB_LR, lr_rows)
