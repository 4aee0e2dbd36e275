"""dvc.yaml: every stage's code dependencies cover every tsblib module the stage imports, so a
change to any of them reruns the stage (a stale result cannot survive a code change)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

from tsblib.pipeline import STAGES

STAGE_ENTRY = {**{s.name: s.entry.split(":")[0] for s in STAGES},
               "validate": "tsblib.pipeline", "figure": "tsblib.plots"}
"""The module holding each stage's entry point (`tsblib.cli` dispatches to it)."""

CLI_MODULES = ("tsblib.__main__", "tsblib.cli")
"""What `python -m tsblib <stage>` runs before the stage itself (module-level imports only)."""


def _file(module: str) -> Path | None:
    path = ROOT / (module.replace(".", "/") + ".py")
    if path.is_file():
        return path
    path = ROOT / module.replace(".", "/") / "__init__.py"
    return path if path.is_file() else None


def _imports(module: str, top_level_only: bool = False) -> set[str]:
    """tsblib modules `module` imports (anywhere in the file, or at module level only), its
    parent packages, and, for the method registry, every module of tsblib.methods (it imports
    them all when first read)."""
    path = _file(module)
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tsblib")}
        elif isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join(parts + ([name] if name else []))
            if name.startswith("tsblib"):
                found.add(name)
                found |= {f"{name}.{a.name}" for a in node.names if _file(f"{name}.{a.name}")}
    if module == "tsblib.methods.registry":
        found |= {f"tsblib.methods.{p.stem}" for p in (ROOT / "tsblib" / "methods").glob("*.py")}
    if module == "tsblib.devices.base":  # the device registry imports every device module too
        found |= {f"tsblib.devices.{p.stem}" for p in (ROOT / "tsblib" / "devices").glob("*.py")}
    parts = module.split(".")
    found |= {".".join(parts[:i]) for i in range(1, len(parts))}
    return {m for m in found if _file(m)}


def imported_modules(entry: str) -> set[str]:
    """Transitive tsblib imports of stage entry module `entry`, plus what the CLI imports."""
    seen: set[str] = set(CLI_MODULES)  # the CLI's own function-local imports are other stages'
    todo = [entry] + [m for cli in CLI_MODULES for m in _imports(cli, top_level_only=True)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += sorted(_imports(module))
    return seen


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


def _stages() -> dict[str, list[str]]:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in spec.items():
        body = stage.get("do", stage)
        out[name] = [d if isinstance(d, str) else next(iter(d)) for d in body.get("deps", [])]
    return out


def test_every_stage_has_a_known_entry_point():
    assert set(_stages()) == set(STAGE_ENTRY)


@pytest.mark.parametrize("stage", sorted(STAGE_ENTRY))
def test_stage_code_dependencies_cover_its_imports(stage):
    deps = _stages()[stage]
    missing = sorted(str(_file(m).relative_to(ROOT)) for m in imported_modules(STAGE_ENTRY[stage])
                     if not _covered(_file(m), deps))
    assert not missing, f"dvc.yaml stage {stage!r} imports these tsblib files without depending " \
                        f"on them: {missing}"


def test_import_closure_follows_local_imports_and_the_registry():
    # the check itself must see a function-local import and the registry's package scan
    closure = imported_modules("tsblib.report")
    assert "tsblib.methods.tsb_finetune" in closure
    assert "tsblib.methods.correctnet" in closure  # only reachable through the registry scan
    assert "tsblib.bootstrap" in closure
    assert "tsblib.devices.stuck_at" in closure  # only reachable through the device registry scan


def test_a_missing_dependency_is_reported():
    deps = [d for d in _stages()["train"] if d != "tsblib/variation.py"]
    path = _file("tsblib.variation")
    assert "tsblib.variation" in imported_modules("tsblib.stages")
    assert not _covered(path, deps)
