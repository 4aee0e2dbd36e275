"""What `dvc repro` would do, on any checkout: the stages it would run, restore or skip, and why.

`dvc repro --dry` answers the same question only where every stage's inputs are present: it
hashes the inputs of each stage it plans, so on a fresh clone (where the DVC-cached prepared data
and checkpoints are absent) it stops at the first stage downstream of one that has not run yet
(treeverse/dvc#9818, open in DVC 3.67). `dvc status` reads the lock instead and works on any
checkout; this module turns its answer into a plan, stage by stage in pipeline order:

- `run`: the stage has a change of its own (a parameter, its code or data, its command, an
  output missing from the workspace and from DVC's cache, an output edited by hand);
- `restore`: only outputs are missing from the workspace, and DVC's cache holds them
  (`dvc repro` checks them out instead of running the stage);
- `follows`: nothing of its own changed, but a stage it reads from runs; DVC reruns it only if
  that stage writes outputs that differ from the locked ones;
- `up to date`: nothing to do.

A stage planned to `run` whose exact inputs ran before in this workspace is restored from DVC's
run cache instead; that needs the inputs' contents, so the plan does not predict it.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

RUN, RESTORE, FOLLOWS, UP_TO_DATE = "run", "restore", "follows", "up to date"
"""The four verdicts of a plan, from most to least work."""


@dataclass(frozen=True)
class StagePlan:
    """What `dvc repro` would do with one stage."""

    stage: str
    """The stage's DVC address (`train@lenet3`)."""
    verdict: str
    """One of RUN, RESTORE, FOLLOWS, UP_TO_DATE."""
    reasons: tuple[str, ...] = field(default=())
    """Why, one short phrase each (empty when up to date)."""


def _inside(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies under it (paths relative to the repository, POSIX)."""
    p, f = PurePosixPath(path), PurePosixPath(folder)
    return p == f or f in p.parents


def _producer(path: str, outputs: dict[str, str]) -> str | None:
    """The stage whose output is `path` or holds it (or lies under it), if any."""
    for out, stage in outputs.items():
        if _inside(path, out) or _inside(out, path):
            return stage
    return None


def classify(order: list[str], upstream: dict[str, set[str]], status: dict[str, list],
             outputs: dict[str, str], cached_outputs: set[str]) -> list[StagePlan]:
    """The plan of a pipeline from `dvc status`, without DVC.

    order: the stages, every stage after the stages it reads from.
    upstream: for each stage, the stages whose outputs it reads.
    status: `dvc status --json`'s answer (stage -> list of changes; unchanged stages absent).
    outputs: every stage output's path -> the stage that writes it.
    cached_outputs: the outputs that DVC keeps in its cache (`cache: true`).
    """
    plans: dict[str, StagePlan] = {}
    for name in order:
        moving = {up for up in upstream.get(name, ()) if plans[up].verdict in (RUN, FOLLOWS)}
        own: list[str] = []
        restore: list[str] = []
        for change in status.get(name, []):
            if isinstance(change, str):  # "changed command", "always changed"
                own.append(change)
                continue
            for kind, entries in change.items():
                for path, what in sorted(entries.items()):
                    if isinstance(what, dict):  # parameters: {key: "modified"}
                        own.extend(f"parameter {key} {state}" for key, state in what.items())
                    elif kind == "changed deps":
                        producer = _producer(path, outputs)
                        if producer is None or producer == name:
                            own.append(f"input {path} {what}")
                        elif plans[producer].verdict == UP_TO_DATE:
                            own.append(f"input {path} {what} (its stage {producer} is up to date)")
                        # else: written again (or restored) by its stage before this one runs
                    elif what == "deleted" and path in cached_outputs:
                        restore.append(path)
                    elif what == "not in cache":
                        own.append(f"output {path} missing (not in DVC's cache)")
                    else:
                        own.append(f"output {path} {what}")
        if own:
            plans[name] = StagePlan(name, RUN, tuple(own))
        elif moving:
            plans[name] = StagePlan(name, FOLLOWS, (f"after {', '.join(sorted(moving))}",))
        elif restore:
            plans[name] = StagePlan(name, RESTORE,
                                    tuple(f"output {path} from DVC's cache" for path in restore))
        else:
            plans[name] = StagePlan(name, UP_TO_DATE)
    return [plans[name] for name in order]


def plan(root: Path) -> list[StagePlan]:
    """The plan of `dvc repro` for the pipeline at `root` (a DVC repository), from `dvc status`."""
    from tsblib.config import ConfigError

    try:
        import networkx as nx
        from dvc.exceptions import DvcException
        from dvc.repo import Repo
    except ImportError as exc:
        raise ConfigError(f"the plan reads DVC's state, and {exc.name} is not installed; install "
                          f"the project's environment (scripts/setup.sh)") from exc
    try:
        return _plan(root, Repo, nx)
    except DvcException as exc:
        raise ConfigError(f"DVC cannot read the pipeline at {root}: {exc}. Run the command from "
                          f"the repository root (or pass --params ROOT/params.yaml), and "
                          f"`python -m tsblib validate` to check params.yaml") from exc


def _plan(root: Path, Repo, nx) -> list[StagePlan]:
    with contextlib.chdir(root), Repo(".") as repo:  # stage addresses relative to the root
        graph = repo.index.graph  # edge: stage -> a stage it reads from
        status = repo.status()
        position = {stage: i for i, stage in enumerate(repo.index.stages)}  # dvc.yaml order
        stages = list(nx.lexicographical_topological_sort(graph.reverse(), key=position.get))
        order = [stage.addressing for stage in stages]
        upstream = {stage.addressing: {up.addressing for up in graph.successors(stage)}
                    for stage in stages}
        outputs = {str(out.def_path): stage.addressing for stage in stages for out in stage.outs}
        cached = {str(out.def_path) for stage in stages for out in stage.outs if out.use_cache}
    return classify(order, upstream, status, outputs, cached)


def render(plans: list[StagePlan], profile: str | None = None) -> str:
    """The plan as a table, one line per stage, and a count per verdict."""
    width = max((len(p.stage) for p in plans), default=5)
    head = "`dvc repro` plan" + (f" for profile {profile!r}" if profile else "") + ":"
    lines = [head]
    for p in plans:
        why = f": {'; '.join(p.reasons)}" if p.reasons else ""
        lines.append(f"  {p.stage:<{width}}  {p.verdict}{why}")
    counts = {v: sum(p.verdict == v for p in plans) for v in (RUN, RESTORE, FOLLOWS, UP_TO_DATE)}
    lines.append(", ".join(f"{n} {v}" for v, n in counts.items() if n) + ". 'follows': rerun only "
                 "if the stages before it write outputs that differ from the locked ones.")
    return "\n".join(lines)
