"""The one results schema: every results file the stages write and the summary, the figures, the
claims table and users read, with its columns and the stage that writes it; the claim keys of
claims.json with their wording; and which columns hold wall-clock time rather than a result.

Writers take their columns from here and readers their names, so a column is spelled once. This
module imports nothing of tsblib (DESIGN section 8: it sits under every layer).
"""
from __future__ import annotations

from dataclasses import dataclass

WALL_CLOCK_COLUMNS = ("seconds", "seconds_per_chip")
"""CSV columns holding wall-clock seconds (they differ between any two runs)."""

MACHINE_KEYS = ("provenance", "machine", "date_utc")
"""JSON and checkpoint keys that describe the machine and the time of a run."""


def is_wall_clock(name: str) -> bool:
    """Whether a column or key holds wall-clock time (every name with 'seconds' in it)."""
    return "seconds" in name


TIMING_FOLDER = "timing"
"""The folder, beside a results table (results/<profile>/ and each model's folder), that holds
the timing files: each stage's seconds (<stage>.json) and the timing tables."""


@dataclass(frozen=True)
class Table:
    """One results table: a CSV file under results/<profile>/models/<model>/ (a per-model table)
    or results/<profile>/ (a profile table)."""

    name: str
    """Its file name."""
    stage: str
    """The stage that writes it (`dvc repro <stage>@<model>` remakes a per-model table)."""
    columns: tuple[str, ...]
    """Its columns, in order, as the stage writes them (with the wall-clock ones of a timed table,
    which go to the timing table beside it: `result_columns`, `timing_columns`)."""
    doc: str
    """What one row is."""
    per_model: bool = True
    """Written per model (results/<profile>/models/<model>/<name>)."""
    merged: bool = True
    """A per-model table that `summarize` concatenates into results/<profile>/<name>, the file
    figures and users read (False: it stays per model)."""
    optional: bool = False
    """A run without DVC may lack it (the demo skips the validation sweeps and the robustness
    stage); summarize and the figures then read it as empty."""
    keys: tuple[str, ...] = ()
    """The columns that identify a row in its timing table (a timed table: one with wall-clock
    columns, which go to results/.../timing/<name> so that a rerun changes only that file)."""
    exact: bool = False
    """Floats written with every digit (a table that later stages join and compute with), not
    to 10 decimals."""

    @property
    def result_columns(self) -> tuple[str, ...]:
        """The columns the results file keeps: every one that is not wall-clock time."""
        return tuple(c for c in self.columns if not is_wall_clock(c))


TRAINING_CURVE = ("model", "method", "recipe", "epoch", "seconds", "loss", "val_clean_acc",
                  "val_chip_acc_mean", "val_chip_acc_ci95", "selected")
"""Columns of a training curve: one row per epoch, validation accuracy noise-free and on chips
at sigma_train; `selected` marks the deployed (validation-selected) epoch."""

TRAINING = Table("training.csv", "train", TRAINING_CURVE,
                 "one row per (training run, epoch): the per-epoch validation curves",
                 keys=("model", "method", "recipe", "epoch"))
TRAINING_EXTRA = Table("training_extra.csv", "train", TRAINING_CURVE,
                       "one row per (extra NIT-objective run, epoch): the annealed TSB backbone "
                       "('tsb_backbone_annealed') and the further training seeds ('nit_seed<s>'), "
                       "kept out of training.csv, whose readers know only registered methods",
                       merged=False,
                       keys=("model", "method", "recipe", "epoch"))
RECIPES = Table("recipes.csv", "recipes", ("model", "method", "candidate") + TRAINING_CURVE[2:],
                "one row per (method, candidate recipe or beta, epoch) of the validation sweeps",
                optional=True, keys=("model", "method", "candidate", "recipe", "epoch"))
FINETUNE = Table("finetune.csv", "finetune",
                 ("model", "method", "sigma", "chips", "mode", "lr", "epochs", "images",
                  "bn_images", "seconds", "seconds_per_chip"),
                 "one row per (per-chip method, sigma): `epochs` as used (chosen on validation "
                 "with tsb.select_epochs), `images` the training images per fine-tuning epoch "
                 "per chip, `bn_images` the BatchNorm-recalibration images per chip",
                 keys=("model", "method", "sigma"))
TSB_LR = Table("tsb_lr.csv", "finetune",
               ("model", "width", "lr", "epochs", "sigma", "chips", "val_acc_mean",
                "val_acc_ci95", "selected"),
               "one row per (block width, learning rate, epochs) fine-tuned on validation chips")
EVALUATION = Table("evaluation.csv", "evaluate",
                   ("model", "method", "swim_p_percent", "sigma", "chips", "clean_acc",
                    "acc_mean", "acc_std", "acc_ci95"),
                   "one row per (deployment, swim p, sigma): accuracy over the chips")
CHIPS = Table("chips.csv", "evaluate",
              ("model", "method", "swim_p_percent", "sigma", "chip", "acc"),
              "one row per (deployment, swim p, sigma, chip); chip k is the same device draw for "
              "every deployment", merged=False)
MAPPING = Table("mapping.csv", "mapping",
                ("model", "plan", "swim_p_percent", "sigma", "weights", "verified_weights",
                 "read_back_weights", "devices", "verified_devices", "write_pulses", "reads",
                 "time_s", "energy_j"),
                "one row per (deployment plan, swim p, sigma): the expected cost of writing the "
                "model onto devices; `plan` is 'no_verify' (programmed once), a method with a "
                "plan of its own or a TSB ablation variant; `time_s` and `energy_j` exact",
                exact=True)
OVERHEAD = Table("overhead.csv", "mapping",
                 ("model", "tsb_width", "block_weights", "backbone_weights", "fraction",
                  "added_macs", "backbone_macs", "insertion_points"),
                 "one row per model: the weights and MACs of the backbone and of its default "
                 "block (`tsblib.tsb.TSBOverhead`)")
FLOPS = Table("flops.csv", "mapping",
              ("model", "run", "forwards_per_step", "macs_per_image", "train_images",
               "flops_per_epoch"),
              "one row per training run: forward MACs of one image, forwards per step, training "
              "images and the FLOPs of one epoch (2 x MACs x 3 (forward and backward) x images x "
              "forwards per step); deterministic, unlike wall-clock seconds")
ROBUSTNESS = Table("robustness.csv", "robustness",
                   ("model", "scenario", "device_model", "time_s", "compensation", "method",
                    "sigma", "chips", "clean_acc", "acc_mean", "acc_std", "acc_ci95", "gap_own",
                    "acc_p01", "acc_p05", "acc_p50", "yield_1pt", "yield_2pt", "wv_fraction",
                    "mapping_time_s", "mapping_energy_j", "convention"),
                   "one row per (scenario, drift time and compensation, deployment) at the "
                   "operating sigma; `device_model` names the composed device models",
                   optional=True)
TRAJECTORY = Table("trajectory.csv", "evaluate",
                   ("model", "curve", "backbone", "epochs", "sigma", "chips", "acc_mean",
                    "acc_std", "acc_ci95", "clean_acc"),
                   "one row per (curve, backbone): curve 'nit' (NIT's state after `epochs` "
                   "epochs, programmed once), 'nit_bnrecal' (the same with per-chip BN "
                   "recalibration), 'tsb' (the default TSB fine-tuned per chip on a backbone) or, "
                   "with `methods.tsb_ages_bnrecal`, 'tsb_bnrecal'; backbone 'epoch' (NIT's state "
                   "after `epochs` epochs) or 'annealed' (the short annealed run of `epochs` "
                   "epochs); at the operating sigma on the first `evaluation.tsb_chips` chips; "
                   "clean_acc: the noise-free test accuracy of the state (for 'tsb', of its "
                   "backbone without a block)", optional=True)
TRAJECTORY_CHIPS = Table("trajectory_chips.csv", "evaluate",
                         ("model", "curve", "backbone", "epochs", "chip", "acc"),
                         "one row per (curve, backbone, chip); chip k is chip k of every other "
                         "method (paired)", merged=False)
SEEDS = Table("seeds.csv", "evaluate",
              ("model", "seed", "method", "sigma", "chips", "acc_mean", "acc_std", "acc_ci95",
               "clean_acc"),
              "one row per (training seed of NIT and its early snapshot, method 'nit', "
              "'nit_bnrecal' or 'tsb') at the operating sigma on the first "
              "`evaluation.tsb_chips` chips (paired with every other method); clean_acc: the "
              "noise-free test accuracy of the deployed model (TSB: its backbone without a "
              "block)", merged=False)
SEEDS_CHIPS = Table("seeds_chips.csv", "evaluate", ("model", "seed", "method", "chip", "acc"),
                    "one row per (seed, method, chip)", optional=True)
SUMMARY = Table("summary.csv", "summarize",
                ("profile", "dataset", "model", "method", "swim_p_percent", "sigma", "chips",
                 "clean_acc", "acc_mean", "acc_std", "acc_ci95", "gap_own", "gap_ideal",
                 "wv_fraction", "train_epochs", "train_flops", "mapping_time_s",
                 "mapping_energy_j", "convention", "acc_p01", "acc_p05", "acc_p50", "yield_1pt",
                 "yield_2pt"),
                "one row per (model, deployment, swim p, sigma): evaluation.csv joined with "
                "mapping.csv (the deployment's plan) and flops.csv (its training run up to the "
                "deployed epoch); `clean_acc` is the deployed model's noise-free accuracy (TSB: "
                "backbone plus block at sigma = 0); chip yield (`tsblib.chipstats.chip_yield`): "
                "`acc_p01/p05/p50` the 1st, 5th and 50th percentile of chip accuracy, "
                "`yield_1pt/2pt` the fraction of chips within 1 and 2 points of `clean_acc`",
                per_model=False)
ABLATIONS = Table("ablations.csv", "summarize",
                  ("model", "ablation", "setting", "method", "sigma", "chips", "acc_mean",
                   "acc_std", "acc_ci95", "wv_fraction"),
                  "one row per TSB ablation variant and block-less backbone at the operating "
                  "sigma", per_model=False)

TABLES: dict[str, Table] = {t.name: t for t in (
    RECIPES, TRAINING, TRAINING_EXTRA, FINETUNE, TSB_LR, EVALUATION, CHIPS, MAPPING, OVERHEAD,
    FLOPS, ROBUSTNESS, TRAJECTORY, TRAJECTORY_CHIPS, SEEDS, SEEDS_CHIPS, SUMMARY, ABLATIONS)}
"""Every results table by file name."""

MERGED_TABLES: tuple[Table, ...] = tuple(t for t in TABLES.values() if t.per_model and t.merged)
"""The per-model tables `summarize` concatenates into results/<profile>/, in this order."""

TIMED_TABLES: dict[str, tuple[str, ...]] = {t.name: t.keys for t in TABLES.values() if t.keys}
"""Results tables whose rows carry wall-clock seconds -> the columns that identify a row. The
results table keeps every other column (`result_columns`); its timing table, the file of the
same name under `timing/` beside it, holds the identifying columns and the wall-clock ones
(`timing_columns`). So a rerun on the same machine changes only the timing files."""


def result_columns(columns: list[str]) -> list[str]:
    """The columns a results table keeps: every one that is not wall-clock time."""
    return [c for c in columns if not is_wall_clock(c)]


def timing_columns(name: str, columns: list[str]) -> list[str]:
    """The columns of results table `name`'s timing table: its identifying columns
    (`TIMED_TABLES`) and its wall-clock ones, in the table's order."""
    keys = TIMED_TABLES[name]
    return [c for c in columns if c in keys or is_wall_clock(c)]


DATA_FILE = "data.json"
"""Per model (prepare) and merged (summarize): name, source, checksum and split sizes of the data."""
CLAIMS_FILE = "claims.json"
"""Profile (summarize): the headline claims measured per model (`tsblib.verdicts`)."""
PROVENANCE_FILE = "provenance.json"
"""Profile (summarize): configuration, data sources, machine and per-stage seconds."""


@dataclass(frozen=True)
class Claim:
    """One headline claim of the paper as claims.json records it (`models.<model>.<key>`)."""

    key: str
    """Its key in claims.json."""
    op: str
    """How the measured value meets the paper's threshold: '>' or '<'."""
    threshold: float
    """The paper's threshold."""
    wording: str
    """The paper's words (abstract of arXiv:2406.06544)."""
    label: str
    """Its row label in the figures' claims table."""
    terminal: str
    """Its row label in `python -m tsblib claims` ({nit} and {strongest}: the baselines' labels)."""
    unit: str
    """Suffix of its measured value ('x' for a ratio, ' %')."""


_GAP = "over 20x inference accuracy gap improvement"
CLAIMS: tuple[Claim, ...] = (
    Claim("gap_improvement_ideal", ">", 20.0, _GAP,
          "accuracy-gap improvement (ideal gap, the headline)",
          "gap improvement vs {nit}, ideal gap", "x"),
    Claim("gap_improvement_own", ">", 20.0, _GAP,
          "accuracy-gap improvement (own gap, second reading)",
          "gap improvement vs {nit}, own gap", "x"),
    Claim("gap_improvement_ideal_vs_strongest", ">", 20.0, _GAP,
          "accuracy-gap improvement (ideal gap), strongest baseline",
          "gap improvement vs {strongest}, ideal gap", "x"),
    Claim("gap_improvement_own_vs_strongest", ">", 20.0, _GAP,
          "accuracy-gap improvement (own gap), strongest baseline",
          "gap improvement vs {strongest}, own gap", "x"),
    Claim("training_speedup", ">", 5.0, "over 5x training speedup",
          "training speed-up at equal accuracy (FLOPs, 1 chip)",
          "training speed-up, equal accuracy (FLOPs)", "x"),
    Claim("wv_fraction_percent", "<", 0.4, "under 0.4 % of the original weights write-verified",
          "write-verified weights (%)", "write-verified weights (%)", " %"),
    Claim("mapping_cost_reduction", ">", 1.0, "reduced weights-to-device mapping cost",
          "mapping-cost reduction at equal accuracy (time)",
          "mapping cost reduction, equal accuracy", "x"),
)
"""The paper's headline claims in the order of its abstract. The ideal gap (one reference for
every method) is the headline reading of the gap claim, the own gap the second; each is read
against NIT (the paper's comparison) and against the most accurate baseline without
write-verify (DESIGN section 6)."""

CLAIM_BY_KEY: dict[str, Claim] = {c.key: c for c in CLAIMS}
"""`CLAIMS` by key."""
