"""Command-line entry points: one sub-command per pipeline stage (what dvc.yaml calls), plus
`all` (every stage without DVC), `demo` and `check-repro`.

    python -m tsblib <stage> [--params params.yaml] [--profile NAME]
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path
from typing import Callable

from tsblib import io
from tsblib.config import ConfigError, ProfileConfig, load_profile
from tsblib.paths import ProfilePaths
from tsblib.provenance import machine_info

FIGURES = ("accuracy_vs_sigma", "accuracy_gap", "training_cost", "mapping_cost", "ablations",
           "robustness")
"""Figure notebooks in notebooks/, in the order of DESIGN section 7."""


def _stage_fns() -> dict[str, Callable[..., None]]:
    from tsblib import report, robustness, stages

    return {"prepare": stages.prepare, "recipes": stages.recipes_stage,
            "train": stages.train_stage,
            "finetune": stages.finetune_stage, "evaluate": stages.evaluate_stage,
            "mapping": stages.mapping_stage, "robustness": robustness.robustness_stage,
            "summarize": report.summarize_stage}


STAGE_HELP = {
    "prepare": "load every model's data set, carve the validation split (data/prepared/<profile>/)",
    "recipes": "validation sweeps: NIT under each candidate recipe, NFT beta where the authors "
               "give none (recipes.csv)",
    "train": "train every method with a training run (clean, NIT + early TSB backbone, NFT, "
             "CorrectNet); each deploys its best validation epoch",
    "finetune": "fine-tune the Tiny Shared Block per chip, for every variant and sigma (learning "
                "rate chosen on validation)",
    "evaluate": "Monte Carlo accuracy of every method over the sigma sweep (with robustness, the "
                "only stages that read the test split)",
    "mapping": "expected weights-to-device mapping cost of every deployment plan",
    "robustness": "every deployment at the operating sigma under device models beyond the "
                  "Gaussian (level-dependent, stuck-at, read noise, drift vs time)",
    "summarize": "merge results into summary.csv, ablations.csv, claims.json, provenance.json",
}


def run_stage(name: str, profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> float:
    """Run stage `name` and record its wall-clock seconds in results/<profile>/timing/."""
    start = time.perf_counter()
    _stage_fns()[name](profile, paths, progress=progress)
    seconds = time.perf_counter() - start
    io.write_json(paths.results / "timing" / f"{name}.json",
                  {"stage": name, "seconds": round(seconds, 3), "machine": machine_info()})
    return seconds


def run_figure(name: str, profile: str, paths: ProfilePaths) -> None:
    """Execute notebooks/<name>.ipynb with papermill; the executed copy and the figure go
    under results/<profile>/."""
    import papermill

    if name not in FIGURES:
        raise ConfigError(f"figure = {name!r} is unknown; known figures: {list(FIGURES)}")
    source = paths.root / "notebooks" / f"{name}.ipynb"
    paths.notebooks.mkdir(parents=True, exist_ok=True)
    with io.atomic_path(paths.notebooks / f"{name}.ipynb", suffix=".ipynb") as tmp:
        papermill.execute_notebook(str(source), str(tmp), parameters={"profile": profile},
                                   cwd=str(paths.root / "notebooks"), progress_bar=False,
                                   kernel_name="python3")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tsblib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
        p.add_argument("--profile", default=None, help="profile in the parameter file "
                       "(default: its `profile:` key)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                       help="run only these models of the profile (outputs then hold only them)")

    for name, text in STAGE_HELP.items():
        common(sub.add_parser(name, help=text, description=text))
    p = sub.add_parser("validate", help="check params.yaml and exit",
                       description="Validate the parameter file; the first stage of the pipeline.")
    common(p)
    p = sub.add_parser("figure", help="execute one figure notebook with papermill",
                       description="Execute notebooks/<name>.ipynb for a profile.")
    common(p)
    p.add_argument("name", choices=FIGURES)
    p = sub.add_parser("all", help="run every stage and figure in order (no DVC needed)",
                       description="Run prepare ... summarize and, unless --no-figures, the figures.")
    common(p)
    p.add_argument("--no-figures", action="store_true", help="skip the figure notebooks")
    p = sub.add_parser("demo", help="LeNet-3 on the embedded digits: clean, NIT, NIT+BN recal, TSB",
                       description="A few-minute CPU demonstration that prints accuracy, both gaps, "
                                   "write-verify fraction and mapping cost at one sigma.")
    p.add_argument("--out", default=None, help="folder for the demo's files (default: a temp dir)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p = sub.add_parser("check-repro", help="regenerate a profile in a temporary copy and compare "
                       "its summary.csv with the committed one")
    common(p)
    p.add_argument("--workdir", default=None, help="where to regenerate (default: a temp dir)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tsblib`."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    progress = not getattr(args, "quiet", False)
    try:
        if args.command == "demo":
            from tsblib.demo import run_demo
            print(run_demo(Path(args.out) if args.out else None, progress=progress))
            return 0
        if args.command == "check-repro":
            from tsblib.reproduce import check_reproduction
            ok, text = check_reproduction(Path(args.params), args.profile,
                                          Path(args.workdir) if args.workdir else None)
            print(text)
            return 0 if ok else 1
        profile = load_profile(args.params, args.profile)
        if getattr(args, "models", None):
            profile = dataclasses.replace(
                profile, experiments=tuple(profile.experiment(m) for m in args.models))
        paths = ProfilePaths(profile.name, Path(args.params).resolve().parent)
        if args.command == "validate":
            print(f"{args.params}: profile {profile.name!r} is valid "
                  f"({', '.join(e.model for e in profile.experiments)})")
        elif args.command == "figure":
            run_figure(args.name, profile.name, paths)
        elif args.command == "all":
            for name in STAGE_HELP:
                print(f"[{name}] {run_stage(name, profile, paths, progress):.1f} s", flush=True)
            if not args.no_figures:
                for name in FIGURES:
                    run_figure(name, profile.name, paths)
        else:
            seconds = run_stage(args.command, profile, paths, progress)
            print(f"[{args.command}] done in {seconds:.1f} s")
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
