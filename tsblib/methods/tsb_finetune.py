"""TSB as we read it (DESIGN section 3): per-chip fine-tuning of the Tiny Shared Block, the
backbone frozen at a chip's programmed (read-back) weights and BatchNorm frozen; only the block
is trained, under write-verify noise; at deployment the block is written with write-verify, the
backbone once.

Here: its spec, its ablation variants, the check that every block layout fits the model, and
`selection_edges` (whether each fine-tuning setting chosen on validation lies at the edge of its
searched range). Its code (fine-tuning, deployment, the validation search):
`tsblib.execution.tsb_finetune`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable

from tsblib.config import (ConfigError, ExperimentConfig, FinetuneMode, Placement, Sharing,
                           TSBConfig)
from tsblib.deployment import DeployPlan, verified_block
from tsblib.methods.registry import (Implementation, MethodSpec, RobustSpec, register,
                                     register_extra)
from tsblib.methods.studies import SnapshotSpec, early_epoch, register_snapshot
from tsblib.models import experiment_model
from tsblib.tsb import insertion_widths

IMPL = Implementation("tsb_finetune")


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

    def plan(self, exp: ExperimentConfig) -> DeployPlan:
        """Its mapping plan: TSB's, with this variant's block."""
        return verified_block(exp, tsb_cfg=self.cfg)


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


def selection_widths(exp: ExperimentConfig) -> tuple[int, ...]:
    """Block widths fine-tuned on validation by the finetune stage: the stated `tsb.width`, and
    with `tsb.select_width` every width of `ablation.widths` too."""
    widths = {exp.tsb.width} | (set(exp.ablation.widths) if exp.tsb.select_width else set())
    return tuple(sorted(widths))


def selection_epochs(cfg: TSBConfig) -> tuple[int, ...]:
    """Fine-tuning epoch counts searched on validation: `tsb.select_epochs`, or `tsb.epochs`."""
    return tuple(sorted(cfg.select_epochs)) if cfg.select_epochs else (cfg.epochs,)


def _best(rows: list[dict]) -> dict:
    """Best mean validation accuracy; ties: fewer epochs, then smaller lr."""
    return min(rows, key=lambda r: (-float(r["val_acc_mean"]), int(r["epochs"]), float(r["lr"])))


def _edge(chosen: Any, searched: list) -> str | None:
    if len(searched) < 2:
        return None
    if chosen == searched[0]:
        return "lower"
    if chosen == searched[-1]:
        return "upper"
    return None


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def selection_edges(rows: Iterable[dict], exp: ExperimentConfig) -> dict[str, dict[str, Any]]:
    """Whether each TSB fine-tuning setting chosen on validation lies at the edge of its
    searched range (DESIGN section 6), from `exp.model`'s tsb_lr.csv rows (dicts as written or
    as read back from the CSV, values as numbers or text).

    Returns {'lr': {...}, 'epochs': {...}} and, with `tsb.select_width`, 'width': {...}; each
    {'chosen': value, 'searched': sorted list of candidates, 'at_edge': 'lower' | 'upper' |
    None} (None: one candidate, or an interior choice). lr and epochs: the row marked
    `selected` (the stated width's best). width: the width with the best validation accuracy
    over all its (lr, epochs) (ties: smaller width), with 'stated': tsb.width beside it. With
    no rows (nothing searched) every setting is its single configured value."""
    cfg = exp.tsb
    rows = [r for r in rows if r.get("model", exp.model) == exp.model]
    out: dict[str, dict[str, Any]] = {}
    if not rows:
        lr_range, epoch_range = list(cfg.lr), list(selection_epochs(cfg))
        out["lr"] = {"chosen": lr_range[0], "searched": lr_range, "at_edge": None}
        out["epochs"] = {"chosen": epoch_range[0], "searched": epoch_range, "at_edge": None}
        if cfg.select_width:
            widths = list(selection_widths(exp))
            out["width"] = {"chosen": cfg.width, "stated": cfg.width, "searched": widths,
                            "at_edge": None}
        return out
    lr_of = lambda r: float(r["lr"])  # noqa: E731
    epochs_of = lambda r: int(r.get("epochs") or cfg.epochs)  # noqa: E731 (old files: no column)
    width_of = lambda r: int(r["width"])  # noqa: E731
    stated = [r for r in rows if width_of(r) == cfg.width] or rows
    picked = [r for r in stated if _truthy(r.get("selected"))]
    best = picked[0] if picked else _best([{**r, "epochs": epochs_of(r)} for r in stated])
    for key, of in (("lr", lr_of), ("epochs", epochs_of)):
        searched = sorted({of(r) for r in stated})
        out[key] = {"chosen": of(best), "searched": searched, "at_edge": _edge(of(best), searched)}
    if cfg.select_width:
        acc: dict[int, float] = {}
        for r in rows:
            acc[width_of(r)] = max(acc.get(width_of(r), float("-inf")), float(r["val_acc_mean"]))
        searched = sorted(acc)
        chosen = min(searched, key=lambda w: (-acc[w], w))
        out["width"] = {"chosen": chosen, "stated": cfg.width, "searched": searched,
                        "at_edge": _edge(chosen, searched)}
    return out


def _check(exp: ExperimentConfig) -> None:
    if 0.0 not in exp.evaluation.sigmas:
        raise ConfigError(f"models.{exp.model}.evaluation.sigmas = {list(exp.evaluation.sigmas)} is "
                          f"not allowed with method 'tsb': expected 0.0 among them (TSB's own gap "
                          f"is measured from its accuracy at sigma = 0). Fix it in params.yaml.")
    # Every block layout the pipeline will build must fit the model: checked here, before any
    # stage runs, rather than minutes into `finetune`.
    backbone = experiment_model(exp)
    for variant in tsb_variants(exp):
        widths = insertion_widths(backbone, variant.cfg.placement)
        bad = sorted({c for c in widths if c % variant.cfg.width})
        if bad:
            w, p = variant.cfg.width, variant.cfg.placement.value
            key = {"width": f"ablation.widths contains {w}",
                   "placement": f"ablation.placements contains {p!r} (with tsb.width = {w})",
                   }.get(variant.ablation, f"tsb.width = {w} (placement {p!r})")
            fits = [d for d in range(1, min(widths) + 1) if all(c % d == 0 for c in widths)]
            raise ConfigError(
                f"models.{exp.model}: {key}, but a block of width {w} does not divide the channel "
                f"counts {bad} of its insertion points; allowed: a common divisor of "
                f"{sorted(set(widths))}, i.e. one of {fits}. Fix it in params.yaml.")


SPEC = register(MethodSpec(
    name="tsb", label="TSB (our reading)", color="#d62728", marker="*", order=9,
    description="early NIT backbone programmed once + per-chip Tiny Shared Block, write-verified",
    trained_from="tsb_backbone", evaluate=IMPL.evaluate, check=_check, plan=verified_block,
    variants=lambda exp: {v.name: v.cfg for v in tsb_variants(exp) if v.name != "tsb"},
    finetune=IMPL.finetune_step,
    robustness=(
        RobustSpec("tsb", IMPL.robust_per_chip, verified_block,
                   label="TSB (a): fine-tuned per chip on the chip as programmed"),
        RobustSpec("tsb_gaussian", IMPL.robust_gaussian, verified_block,
                   label="TSB (b): one block knowing only a Gaussian model",
                   color="#ff9896", marker="X"))))


BACKBONE = register_snapshot(SnapshotSpec(
    run="tsb_backbone", source="nit",
    epoch=lambda exp, cfg: early_epoch(exp.train.epochs, exp.methods.tsb_early_fraction)))
"""TSB's backbone is NIT's state after its early epoch (`methods.tsb_early_fraction`)."""


register_extra("tsb_backbone_only", "TSB backbone, no block", "#ff7f0e", "h")


register_extra("tsb_backbone_bnrecal", "TSB backbone + BN recalibration", "#e377c2", "d")
