"""Command-line entry points: one sub-command per pipeline stage (what dvc.yaml calls), plus
`all` (every stage without DVC), `demo`, `check-repro`, `claims` and `plan`.

    python -m tsblib <stage> [--params params.yaml] [--profile NAME]
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from pathlib import Path

from tsblib.config import ConfigError, ProfileConfig, read_parameter_file
from tsblib.paths import ProfilePaths
from tsblib.pipeline import (FIGURES, STAGES, check_ready, check_stage_models, finished,
                             record_valid, run_stage)
from tsblib.profiles import load_profile

STAGE_HELP = {stage.name: stage.help for stage in STAGES}
"""One line of help per stage, in pipeline order."""


def run_figure(name: str, profile: str, paths: ProfilePaths) -> None:
    """Execute notebooks/<name>.ipynb with papermill, its kernel importing this repository's
    tsblib; the executed copy (without execution times, `notebook.execute_notebook`) and the figure
    go under results/<profile>/."""
    from tsblib.figures import notebook

    if name not in FIGURES:
        raise ConfigError(f"figure = {name!r} is unknown; known figures: {list(FIGURES)}")
    notebook.execute_notebook(paths.root / "notebooks" / f"{name}.ipynb",
                           paths.notebooks / f"{name}.ipynb", parameters={"profile": profile},
                           cwd=paths.root / "notebooks", library_root=paths.root)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tsblib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def profile_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
        p.add_argument("--profile", default=None, help="profile in the parameter file "
                       "(default: its `profile:` key)")

    def common(p: argparse.ArgumentParser) -> None:
        profile_args(p)
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                       help="run the per-model stages for these models of the profile only; the "
                            "other models' results are left as they are")

    for name, text in STAGE_HELP.items():
        common(sub.add_parser(name, help=text, description=text))
    p = sub.add_parser("validate", help="check params.yaml and the data, and exit",
                       description="Validate the parameter file and check that every model's data "
                                   "are present; the first stage of the pipeline, so bad input "
                                   "stops before any result is written or deleted.")
    common(p)
    p.add_argument("--record", action="store_true",
                   help="on success write data/validated/<profile>.json (the DVC stage's output)")
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
                       "its summary.csv with the committed one",
                       description="Regenerate a profile in a temporary copy and compare its "
                       "summary.csv with the committed one (tolerances) and with this machine's "
                       "record (bit for bit). Exit 0: reproduced; 1: a regression; 3: beyond the "
                       "tolerances on another machine than the committed results' (not a "
                       "regression where this machine's record matches).")
    common(p)
    p.add_argument("--workdir", default=None, help="where to regenerate (default: a temp dir)")
    p.add_argument("--record", action="store_true",
                   help="record the fresh summary's digest as this machine's (run it on the commit "
                        "of the committed results; tests/repro_fingerprints.json)")
    p = sub.add_parser("use", help="select a profile for `dvc repro` (sets `profile:` and "
                       "`models:` in params.yaml)",
                       description="Set the top-level `profile:` and `models:` (the list of the "
                                   "per-model DVC stages) of the parameter file to a profile.")
    p.add_argument("name", help="profile name in the parameter file")
    p.add_argument("--params", default="params.yaml", help="parameter file (default: params.yaml)")
    text = ("compare every results file of a profile with its committed copy (git HEAD), "
            "wall-clock columns left out, and name the columns that differ")
    profile_args(sub.add_parser("compare-committed", help=text, description=text))
    text = ("print what `dvc repro` would do, stage by stage (run, restore from DVC's cache, follow "
            "an earlier stage, or nothing) and why; unlike `dvc repro --dry`, it works on a fresh "
            "clone, from `dvc status`")
    profile_args(sub.add_parser("plan", help=text, description=text))
    text = ("make `dvc plots show` work offline: fetch Vega, Vega-Lite and Vega-Embed once from "
            "the npm registry into an HTML template (.dvc/tmp/offline_plots.html) that the local "
            "DVC config names")
    sub.add_parser("offline-plots", help=text, description=text)
    text = ("rewrite the files written from the code: dvc.yaml's plot columns and the DVC plot "
            "template's colours (from the method registry) and each dvc.yaml stage's code "
            "dependencies (the tsblib files it imports)")
    p = sub.add_parser("sync-registry", help=text, description=text)
    p.add_argument("--check", action="store_true",
                   help="only report the files that are out of date (exit 1 if any)")
    text = ("print what each stage's dvc.yaml code dependencies cover: entries, the tsblib files "
            "they name and their source lines (a change to any other file reruns none of it)")
    sub.add_parser("code-deps", help=text, description=text)
    text = ("run the golden cases (every stage on a tiny profile per model family, fixed seeds) "
            "and compare their hashes with this machine's committed fingerprints")
    p = sub.add_parser("golden", help=text, description=text + " (tests/golden_fingerprints.json"
                       "); unchanged hashes mean a code change moves no result")
    p.add_argument("--write", action="store_true",
                   help="record this machine's fingerprints instead (on the code of the results)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    text = ("print the headline claims of a profile's results, one table per model, from the "
            "committed results/<profile>/claims.json (nothing is rerun)")
    p = sub.add_parser("claims", help=text, description=text)
    profile_args(p)
    p.add_argument("--markdown", action="store_true",
                   help="print the claims and paired comparisons as Markdown tables (those of "
                        "docs/guide.md)")
    p.add_argument("--write-docs", action="store_true",
                   help="rewrite every generated claims table of README.md and docs/*.md "
                        "(<!-- claims-markdown: PROFILE --> blocks) from the committed claims.json "
                        "of its profile")
    return parser


def _summarizable(profile: ProfileConfig, paths: ProfilePaths) -> ProfileConfig:
    """`profile` restricted to the models whose per-model results exist (after `all --models`,
    the other models are summarized from their earlier results, or left out with a note)."""
    from tsblib.report import models_with_results

    ready = models_with_results(profile, paths)
    if not ready:
        raise ConfigError(f"no model of profile {profile.name!r} has results to summarize; run "
                          f"the per-model stages first")
    missing = [e.model for e in profile.experiments if e.model not in ready]
    if missing:
        print(f"note: summarizing {ready} only; {missing} have no results yet (run "
              f"`python -m tsblib all --models {' '.join(missing)}`)", file=sys.stderr)
    return dataclasses.replace(profile, experiments=tuple(profile.experiment(m) for m in ready))


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
            found, text = check_reproduction(Path(args.params), args.profile,
                                             Path(args.workdir) if args.workdir else None,
                                             record=args.record)
            print(text)
            return found.value
        if args.command == "sync-registry":
            from tsblib.registry_files import sync
            stale = sync(Path.cwd(), write=not args.check)
            verb = "out of date" if args.check else "rewritten"
            print("\n".join(f"{p}: {verb}" for p in stale) or "registry files are current")
            return 1 if stale and args.check else 0
        if args.command == "code-deps":
            from tsblib.pipeline.code_deps import coverage, render_coverage
            print(render_coverage(coverage()))
            return 0
        if args.command == "offline-plots":
            from tsblib.offline_plots import install
            print(f"`dvc plots show` now draws offline from {install(Path.cwd())}")
            return 0
        if args.command == "golden":
            return _golden(args.write, progress)
        if args.command == "use":
            from tsblib.pipeline import use_profile
            models = use_profile(Path(args.params), args.name)
            print(f"{args.params}: profile {args.name!r} selected (models: {', '.join(models)}); "
                  f"`dvc repro` now runs it")
            return 0
        if args.command == "plan":
            from tsblib.pipeline.plan import plan, render
            root = Path(args.params).resolve().parent
            name = args.profile or read_parameter_file(args.params).get("profile")
            print(render(plan(root), str(name) if name else None))
            return 0
        if args.command == "compare-committed":  # needs the profile's name only
            from tsblib.committed import compare_results, report
            root = Path(args.params).resolve().parent
            name = args.profile or read_parameter_file(args.params).get("profile")
            ok, text = report(compare_results(root, ProfilePaths(str(name), root).results))
            print(text)
            return 0 if ok else 1
        if args.command == "claims" and args.write_docs:
            from tsblib.headline import write_docs
            changed = write_docs(Path(args.params).resolve().parent)
            print("\n".join(f"{p}: rewritten" for p in changed) or "the claims tables are current")
            return 0
        profile = load_profile(args.params, args.profile)
        if args.command == "claims":
            from tsblib.headline import claims_markdown, claims_text
            paths = ProfilePaths(profile.name, Path(args.params).resolve().parent)
            if args.markdown:
                print(claims_markdown(paths.results))
            else:
                print(claims_text(paths.results, [e.model for e in profile.experiments]))
            return 0
        whole = profile
        if getattr(args, "models", None):
            profile = dataclasses.replace(
                profile, experiments=tuple(profile.experiment(m) for m in args.models))
        paths = ProfilePaths(profile.name, Path(args.params).resolve().parent)
        if args.command in ("validate", "all"):
            check_ready(profile)
        if args.command == "validate":
            if args.params and args.profile is None and not args.models:
                check_stage_models(Path(args.params), whole)
            if args.record:
                record_valid(profile, paths)
            print(f"{args.params}: profile {profile.name!r} is valid "
                  f"({', '.join(e.model for e in profile.experiments)}) and its data are present")
        elif args.command == "figure":
            run_figure(args.name, profile.name, paths)
        elif args.command == "all":
            for stage in STAGES:
                target = profile if stage.per_model else _summarizable(whole, paths)
                print(f"[{stage.name}] {run_stage(stage.name, target, paths, progress):.1f} s",
                      flush=True)
            if not args.no_figures:
                for name in FIGURES:
                    run_figure(name, profile.name, paths)
        else:
            seconds = run_stage(args.command, profile, paths, progress)
            print(f"[{args.command}] done in {seconds:.1f} s")
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted_message(args.command), file=sys.stderr)
        return 130
    return 0


def _golden(write: bool, progress: bool) -> int:
    from tsblib import golden

    found = golden.fingerprints(progress=progress)
    key = golden.machine_key()
    if write:
        golden.record(found)
        print(f"recorded the fingerprints of {len(found)} cases for {key!r} in "
              f"{golden.FINGERPRINTS}")
        return 0
    expected = golden.load().get(key)
    if expected is None:
        print(f"error: no fingerprints recorded for this machine ({key!r}); check out the commit "
              f"of the committed results and run `python -m tsblib golden --write` there",
              file=sys.stderr)
        return 2
    moved = golden.compare(found, expected)
    for line in moved:
        print(line)
    print(f"golden: {len(found)} cases, " + ("every hash unchanged" if not moved
                                              else f"{len(moved)} files moved"))
    return 1 if moved else 0


def interrupted_message(command: str) -> str:
    """The one line printed on Ctrl-C: what finished, and how to resume."""
    done = finished("train")
    saved = (f"; training runs saved complete and reused on a rerun: {', '.join(done)}"
             if done else "")
    return (f"interrupted: `{command}` stopped; every file written so far is complete (outputs "
            f"are written atomically){saved}. To resume, rerun the same command or `dvc repro`.")
