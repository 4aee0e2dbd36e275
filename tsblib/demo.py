"""A few-minute CPU demonstration that the pieces add up: LeNet-3 on the embedded digits,
clean / NIT / NIT + BN recalibration / TSB at one sigma, run through the real pipeline stages."""
from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from tsblib.profiles import profile_from_dict
from tsblib.paths import ProfilePaths
from tsblib.pipeline import run_stage

SIGMA = 0.5
"""The demonstration's operating sigma (device-range convention)."""

DEMO_PROFILE = {
    "runtime": {"device": "cpu"},
    "data": {"dataset": "mnist-embedded"},
    "train": {"epochs": 10, "optimizer": "adam", "lr": 1e-3, "sigma_train": SIGMA, "val_chips": 5},
    "methods": {"methods": ["clean", "nit", "nit_bnrecal", "tsb"], "tsb_early_fraction": 0.2,
                "nit_bnrecal": {"images": 1000}},
    "tsb": {"width": 8, "epochs": 2, "lr": [0.01], "batch_size": 64, "chip_batch": 5},
    "evaluation": {"sigmas": [0.0, SIGMA], "operating_sigma": SIGMA, "chips": 20, "tsb_chips": 10,
                   "chip_batch": 5, "batch_size": 100},
    "ablation": {"widths": [], "placements": [], "sharings": [], "modes": [], "sigma_reads": []},
    "models": {"lenet3": {}},
}
"""The demo's profile (a reduced copy of the embedded profile in params.yaml)."""

DEMO_STAGES = ("prepare", "train", "finetune", "evaluate", "summarize")
"""The pipeline stages the demo runs (no validation sweeps, no mapping table)."""


def run_demo(out: Path | None = None, progress: bool = True) -> str:
    """Run prepare, train, finetune, evaluate and summarize on the demo profile; return the
    table of accuracy, both gaps, write-verify fraction and mapping cost at `SIGMA`."""
    profile = profile_from_dict("demo", DEMO_PROFILE)
    root = Path(out) if out else Path(tempfile.mkdtemp(prefix="tsb-demo-"))
    paths = ProfilePaths("demo", root)
    for stage in DEMO_STAGES:
        run_stage(stage, profile, paths, progress=progress)
    return format_table(paths.result("summary.csv"), SIGMA) + f"\n(files in {root})"


def format_table(summary_csv: Path, sigma: float) -> str:
    """The demo table: one line per method at `sigma`, from a summary.csv."""
    with open(summary_csv) as fh:
        rows = [r for r in csv.DictReader(fh) if float(r["sigma"]) == sigma
                and r["method"] in ("clean", "nit", "nit_bnrecal", "tsb")]
    head = (f"LeNet-3, embedded MNIST digits, sigma = {sigma} (relative to device range), "
            f"{rows[0]['chips']}/{[r for r in rows if r['method'] == 'tsb'][0]['chips']} chips "
            f"(programmed once / TSB)\n")
    cols = f"{'method':<12} {'clean':>6} {'on chips (95% CI)':>18} {'gap own':>8} {'gap ideal':>9} " \
           f"{'verified':>9} {'map time':>10} {'map energy':>11}"
    lines = [head, cols, "-" * len(cols)]
    for r in rows:
        lines.append(f"{r['method']:<12} {float(r['clean_acc']):>6.3f} "
                     f"{float(r['acc_mean']):>9.3f} ± {float(r['acc_ci95']):.3f} "
                     f"{float(r['gap_own']):>8.3f} {float(r['gap_ideal']):>9.3f} "
                     f"{100 * float(r['wv_fraction']):>8.2f}% {float(r['mapping_time_s']) * 1e3:>8.3f}ms "
                     f"{float(r['mapping_energy_j']) * 1e6:>9.3f}uJ")
    return "\n".join(lines)
