"""The method registry: one `MethodSpec` per training or deployment method, declared in the
method's own module. Config, stages, report and figures read it instead of lists of names.

Adding a method = one module under `tsblib/methods/` that calls `register(MethodSpec(...))`;
every module of this package is imported when the registry is first read. A spec names what
it runs (its training objective, its deployment, its fine-tuning) as `Hook`s into its
module under `tsblib/execution/` (the same name), which is imported only when a stage runs the
hook: parsing a profile, pricing a mapping plan or drawing a figure loads no training or
deployment code, so those stages' dvc.yaml code dependencies leave it out.
"""
from __future__ import annotations

import ast
import importlib
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from tsblib.package_scan import PackageScan, RegistryError

if TYPE_CHECKING:  # pragma: no cover - type names only
    from tsblib.config import ExperimentConfig, TrainConfig
    from tsblib.deployment import DeployPlan
    from tsblib.execution.context import (Deployed, EvalContext, FinetuneContext, Point,
                                          RobustContext, TrainContext)
    from tsblib.execution.training import Objective

EXECUTION = "tsblib.execution"
"""The package of the methods' training and deployment code (what `Hook`s call)."""


@dataclass(frozen=True)
class Hook:
    """A function of a method's module under `tsblib.execution`, imported when first called (so
    a stage that only reads the spec never loads it)."""

    module: str
    """Dotted name of the module under `tsblib.execution`."""
    name: str
    """The function (or callable) in it."""

    def resolve(self) -> Callable[..., Any]:
        """The function itself. A stage runs hooks only after importing `tsblib.execution`
        (dvc.yaml then lists that package among its code dependencies); a hook called before is
        refused, as is a name its module lacks."""
        if EXECUTION not in sys.modules:
            raise RuntimeError(f"method hook {self.module}.{self.name} was called before "
                               f"{EXECUTION} was imported: a stage that runs method code "
                               f"imports that package, so its dvc.yaml code dependencies list it")
        module = importlib.import_module(self.module)
        if not callable(getattr(module, self.name, None)):
            raise RegistryError(f"method hook {self.module}.{self.name}: module {self.module} "
                                f"defines no function {self.name!r}; define it there or fix the "
                                f"name in the method's spec")
        return getattr(module, self.name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def check(self, owner: str) -> None:
        """Refuse, when the registry loads, a hook whose module file is missing or does not
        define its name at top level (read from the file, without importing it). `owner` names
        the spec in the message."""
        file = _EXECUTION_DIR.joinpath(*self.module.split(".")[2:]).with_suffix(".py")
        if not self.module.startswith(EXECUTION + ".") or not file.is_file():
            raise RegistryError(f"{owner}: its hook {self.module}.{self.name} names no module of "
                                f"{EXECUTION} ({file} is missing); add the module or fix "
                                f"the Implementation(...) name")
        if self.name not in _top_level_names(file):
            raise RegistryError(f"{owner}: its hook {self.module}.{self.name} is not defined in "
                                f"{file}; define {self.name} there or fix the name in the spec")


_EXECUTION_DIR = Path(__file__).resolve().parents[1] / "execution"
"""The folder of `tsblib.execution`."""


@lru_cache(maxsize=None)
def _top_level_names(file: Path) -> frozenset[str]:
    """Names a module file defines at top level (functions, classes, assignments)."""
    names: set[str] = set()
    for node in ast.parse(file.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for n in targets if isinstance(n, ast.Name)}
    return frozenset(names)


def check_hooks(owner: str, functions: Iterable[Any]) -> None:
    """`Hook.check` every hook among `functions` (plain callables and None are left alone)."""
    for hook in functions:
        if isinstance(hook, Hook):
            hook.check(owner)


class Implementation:
    """The hooks of one module of `tsblib.execution`: `Implementation("nit").evaluate` is
    `Hook("tsblib.execution.nit", "evaluate")`."""

    def __init__(self, module: str) -> None:
        self.module = f"{EXECUTION}.{module}"
        """Dotted name of the module."""

    def __getattr__(self, name: str) -> Hook:
        if name.startswith("__"):
            raise AttributeError(name)
        return Hook(self.module, name)


@dataclass(frozen=True)
class RobustSpec:
    """A deployment the robustness stage compares under every scenario's device model (DESIGN
    figure 6), declared by the method it belongs to (`MethodSpec.robustness`)."""

    name: str
    """Row name in robustness.csv and the name `robustness.methods` in params.yaml selects."""
    deploy: Callable[[RobustContext], Deployed]
    """Makes the deployment ready once per model (a `Hook`: trained models, fine-tuned blocks);
    what it returns evaluates chips under a device model and, if it has one, a per-scenario
    step."""
    plan: Callable[[ExperimentConfig], DeployPlan]
    """Its mapping plan (`tsblib.deployment`), for the mapping cost of robustness.csv."""
    label: str | None = None
    """Legend text of the robustness figure; None = the method's label."""
    color: str | None = None
    """Matplotlib colour; None = the method's."""
    marker: str | None = None
    """Matplotlib marker; None = the method's."""


@dataclass(frozen=True)
class MethodSpec:
    """Everything the pipeline needs to know about one method."""

    name: str
    """Name in params.yaml and in the results files."""
    label: str
    """Readable name on figures and tables."""
    color: str
    """Matplotlib colour, the same in every figure."""
    marker: str
    """Matplotlib marker."""
    order: int
    """Position in figures and tables (DESIGN section 5 order)."""
    description: str
    """One line: what the method trains and how it deploys."""
    trained_from: str
    """Training run whose model the method deploys: its own name when it trains, 'nit', or
    'tsb_backbone' (the early NIT snapshot)."""
    objective: Callable[[TrainContext], Objective] | None = None
    """Training objective factory (a `Hook` into the method's `tsblib.execution` module, like
    the other functions that run method code); set exactly when the method has its own training
    run."""
    recipe: Callable[[ExperimentConfig], TrainConfig] | None = None
    """The method's own training recipe from the experiment (e.g. clean training's optimiser
    from `methods.clean`); None = the profile's `train`."""
    evaluate: Callable[[EvalContext], Iterator[Point]] | None = None
    """Deployment and Monte Carlo evaluation (a `Hook`); yields one `Point` per (variant,
    sigma)."""
    params: type | None = None
    """Parameters dataclass (`methods: {<name>: {...}}` in params.yaml), or None."""
    check: Callable[[ExperimentConfig], None] | None = None
    """Validation that needs the whole experiment (e.g. a beta that must be known for the model)."""
    claims_baseline: bool = False
    """Reported as a baseline in the headline claims (gap improvement against it)."""
    write_verify: bool = False
    """Deploys with write-verify on the backbone (excluded from the 'strongest baseline without
    write-verify')."""
    forwards_per_step: Callable[[ExperimentConfig], float] | None = None
    """Forward passes per training step relative to one plain forward (training FLOPs); None = 1."""
    plan: Callable[..., DeployPlan] | None = None
    """Its mapping plan, called as plan(exp, swim_p, tsb_cfg): how many weights it maps,
    write-verifies and reads back (the shapes of `tsblib.deployment`); None = programmed once,
    nothing verified (`tsblib.deployment.programmed_once`)."""
    variants: Callable[[ExperimentConfig], dict[str, Any]] | None = None
    """The results rows its `evaluate` yields under other names (its ablation variants) -> the
    setting its `plan` is called with as tsb_cfg for that row; None = none."""
    plan_percents: Callable[[ExperimentConfig], tuple[float, ...]] | None = None
    """The write-verify percentages its plan is priced and evaluated at, passed to `plan` as
    swim_p (SWIM's p sweep); None = one plan without a percentage."""
    robustness: tuple[RobustSpec, ...] = ()
    """The deployments it adds to the robustness stage (none: it does not join it)."""
    finetune: Callable[[FinetuneContext], list[dict]] | None = None
    """Its per-chip block fine-tuning in the finetune stage (a `Hook`): saves its blocks
    (`paths.finetune_checkpoint`) and returns its finetune.csv rows; None = nothing to fine-tune."""
    selects_epoch_on: str = "chips"
    """What picks the deployed epoch on validation: 'chips' (mean accuracy of validation chips
    at sigma_train) or 'clean' (noise-free accuracy)."""

    @property
    def trains(self) -> bool:
        """Whether the method has its own training run."""
        return self.objective is not None

    def train_config(self, exp: ExperimentConfig) -> TrainConfig:
        """The recipe the method trains with (`recipe`, else `exp.train`)."""
        return exp.train if self.recipe is None else self.recipe(exp)

    def forwards(self, exp: ExperimentConfig) -> float:
        """Forward passes per training step (1 for a plain forward)."""
        return 1.0 if self.forwards_per_step is None else float(self.forwards_per_step(exp))


METHODS: dict[str, MethodSpec] = {}
"""Registered methods by name (filled when `tsblib.methods` is imported)."""

EXTRA_LABELS: dict[str, tuple[str, str, str]] = {}
"""Results rows that are not methods of their own (e.g. the TSB backbone without its block):
name -> (label, colour, marker)."""


def register(spec: MethodSpec) -> MethodSpec:
    """Add `spec` to the registry; a second method with the same name is an error."""
    if spec.name in METHODS and METHODS[spec.name] is not spec:
        raise ValueError(f"method {spec.name!r} is registered twice")
    if (spec.objective is None) == (spec.trained_from == spec.name):
        raise ValueError(f"method {spec.name!r}: trained_from must be its own name exactly when "
                         f"it has a training objective")
    missing = [f for f in ("label", "color", "marker", "description") if not getattr(spec, f)]
    if spec.evaluate is None:
        missing.append("evaluate (how it deploys onto chips)")
    if missing:
        raise ValueError(f"method {spec.name!r}: its MethodSpec lacks {', '.join(missing)}; "
                         f"every field is documented in tsblib/methods/registry.py")
    if spec.plan_percents is not None and spec.plan is None:
        raise ValueError(f"method {spec.name!r}: plan_percents without a plan; set plan= too")
    check_hooks(f"method {spec.name!r}",
                [spec.objective, spec.evaluate, spec.finetune, *(r.deploy for r in spec.robustness)])
    METHODS[spec.name] = spec
    return spec


def register_extra(name: str, label: str, color: str, marker: str) -> None:
    """Label and style of a results row that is not a method of its own."""
    EXTRA_LABELS[name] = (label, color, marker)


_load_all = PackageScan(__package__, Path(__file__).parent)
"""Imports every module of `tsblib.methods` (each registers its method) on first use."""


def all_methods() -> dict[str, MethodSpec]:
    """Every registered method by name (imports the method modules on first use)."""
    _load_all()
    return METHODS


def get_method(name: str) -> MethodSpec:
    """The spec of method `name`; an unknown name lists the known ones."""
    _load_all()
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {sorted(METHODS)}. Add a module "
                         f"under tsblib/methods/ that registers it.")
    return METHODS[name]


def ordered(names: Any = None) -> list[MethodSpec]:
    """Specs of `names` (default: every registered method) in figure order."""
    _load_all()
    specs = METHODS.values() if names is None else [get_method(n) for n in names]
    return sorted(specs, key=lambda s: s.order)


def label(name: str) -> str:
    """Readable name of a method or extra results row (the name itself when unknown)."""
    _load_all()
    if name in METHODS:
        return METHODS[name].label
    return EXTRA_LABELS.get(name, (name, "", ""))[0]


def robust_deployments() -> dict[str, RobustSpec]:
    """Every deployment the methods add to the robustness stage, by name, in the methods' figure
    order (the default of `robustness.methods`)."""
    return {r.name: r for spec in ordered() for r in spec.robustness}


def style(name: str) -> tuple[str, str]:
    """(colour, marker) of a method or extra results row."""
    _load_all()
    if name in METHODS:
        return METHODS[name].color, METHODS[name].marker
    label_, color, marker = EXTRA_LABELS.get(name, (name, "#7f7f7f", "o"))
    return color, marker
