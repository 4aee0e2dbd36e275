"""Each DVC stage's code dependencies, from what it imports: the tsblib files that
`python -m tsblib <stage>` loads (the CLI's module-level imports, then the stage's entry module
and everything it imports, at module level or inside a function, and every module a registry
imports when it is first read). dvc.yaml lists exactly these, so a change to any of them reruns
the stage and a change to any other file does not:

    python -m tsblib sync-registry          # rewrites them, with the registries' lists
    python -m tsblib sync-registry --check  # exit 1 when dvc.yaml is out of date
    python -m tsblib code-deps              # what each stage's list covers (files, lines)

A package whose every module is imported is listed as its folder (a new module in it then
reruns the stage too, as the registries would import it).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository (the folder holding `tsblib/`)."""

CLI_MODULES = ("tsblib.__main__", "tsblib.cli")
"""What `python -m tsblib <stage>` runs before the stage itself (module-level imports only: the
CLI's function-local imports belong to other sub-commands)."""

REGISTRIES = {"tsblib.methods.registry": "tsblib.methods",
              "tsblib.devices.base": "tsblib.devices",
              "tsblib.datasets.base": "tsblib.datasets",
              "tsblib.figures.notebook": "tsblib.figures",
              "tsblib.execution": "tsblib.execution"}
"""Modules that load every module of a package: the registries, when first read; the
notebook runner, whose notebooks import the figure modules; and the execution package, whose
modules the method specs' hooks import when called (a hook runs only in a process
that has imported the package, `tsblib.methods.registry.Hook`)."""


def stage_entries() -> dict[str, str]:
    """The module holding each dvc.yaml stage's entry point (`tsblib.cli` dispatches to it)."""
    from tsblib.pipeline import STAGES

    return {**{s.name: s.entry.split(":")[0] for s in STAGES},
            "validate": "tsblib.pipeline", "figure": "tsblib.figures.notebook"}


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The file of tsblib module `module` under `root`, or None."""
    path = root / (module.replace(".", "/") + ".py")
    if path.is_file():
        return path
    path = root / module.replace(".", "/") / "__init__.py"
    return path if path.is_file() else None


def library_modules(root: Path = ROOT) -> list[str]:
    """Every module of tsblib under `root`, by dotted name."""
    out = []
    for path in sorted((root / "tsblib").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def _package_modules(package: str, root: Path) -> set[str]:
    folder = root / package.replace(".", "/")
    return {f"{package}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"}


def _type_checking_only(node: ast.AST) -> bool:
    """An `if TYPE_CHECKING:` block (imports for type names only, never run)."""
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of `tree` outside `if TYPE_CHECKING:` blocks (their `else` branch included)."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if _type_checking_only(node):
            todo += node.orelse
            continue
        todo += ast.iter_child_nodes(node)
    return out


def imports(module: str, root: Path = ROOT, top_level_only: bool = False,
            statements_only: bool = False) -> set[str]:
    """tsblib modules `module` imports (anywhere in its file, or at module level only), its
    parent packages, and, for a registry, every module of its package; with `statements_only`,
    only what its import statements name (the edges of the library's import graph)."""
    path = module_file(module, root)
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = tree.body if top_level_only else _runtime_nodes(tree)
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
                found |= {f"{name}.{a.name}" for a in node.names
                          if module_file(f"{name}.{a.name}", root)}
    if statements_only:
        return {m for m in found if module_file(m, root) and m != module}
    if module in REGISTRIES:
        found |= _package_modules(REGISTRIES[module], root)
    parts = module.split(".")
    found |= {".".join(parts[:i]) for i in range(1, len(parts))}
    return {m for m in found if module_file(m, root)}


def imported_modules(entry: str, root: Path = ROOT) -> set[str]:
    """Every tsblib module `python -m tsblib` loads to run the stage whose entry module is
    `entry`: the CLI's module-level imports and the transitive imports of `entry`."""
    seen: set[str] = set(CLI_MODULES)
    todo = [entry] + [m for cli in CLI_MODULES for m in imports(cli, root, top_level_only=True)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += sorted(imports(module, root))
    return seen


def code_deps(entry: str, root: Path = ROOT) -> list[str]:
    """The dvc.yaml code dependencies of a stage with entry module `entry`: its imported files,
    relative to `root`, a fully imported package as its folder."""
    modules = imported_modules(entry, root)
    files = {module_file(m, root).relative_to(root).as_posix() for m in modules}
    for package in sorted({m for m in modules if module_file(m, root).name == "__init__.py"}):
        if package == "tsblib":
            continue
        members = _package_modules(package, root) | {package}
        if members <= modules:
            folder = package.replace(".", "/")
            files = {f for f in files if not f.startswith(folder + "/")} | {folder}
    return sorted(files)


def _source_lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def coverage(root: Path = ROOT) -> list[dict[str, int | str]]:
    """What each stage's code dependencies cover: its dvc.yaml entries, the tsblib files they
    name (a folder: every module in it) and their source lines, beside the whole library's."""
    library = sorted((root / "tsblib").rglob("*.py"))
    total = sum(_source_lines(f) for f in library)
    rows = []
    for stage, entry in stage_entries().items():
        deps = code_deps(entry, root)
        files = {f for d in deps for f in ((root / d).rglob("*.py") if (root / d).is_dir()
                                           else [root / d])}
        lines = sum(_source_lines(f) for f in files)
        rows.append({"stage": stage, "entries": len(deps), "files": len(files),
                     "lines": lines, "library_files": len(library), "library_lines": total})
    return rows


def render_coverage(rows: list[dict[str, int | str]]) -> str:
    """`coverage` as a table: a stage per line, then the totals."""
    head = rows[0]
    out = [f"{'stage':<11} {'entries':>7} {'files':>5} {'lines':>6}  share of the library's lines"]
    out += [f"{r['stage']:<11} {r['entries']:>7} {r['files']:>5} {r['lines']:>6}  "
            f"{100 * int(r['lines']) / int(r['library_lines']):.0f} %" for r in rows]
    out.append(f"{'all stages':<11} {sum(int(r['entries']) for r in rows):>7}  (library: "
               f"{head['library_files']} files, {head['library_lines']} lines)")
    return "\n".join(out)


_STAGE = re.compile(r"^  (\w+):\n((?:(?:    .*)?\n)*)", re.MULTILINE)
_CODE_DEP = re.compile(r"^( +)- tsblib/\S*\n", re.MULTILINE)


def render_dvc_yaml(text: str, root: Path = ROOT) -> str:
    """dvc.yaml with each stage's `tsblib/...` dependencies replaced by `code_deps` (at the place
    and indentation of the first one; the stage's other dependencies as they are)."""
    entries = stage_entries()

    def stage(match: re.Match) -> str:
        name, body = match.group(1), match.group(2)
        first = _CODE_DEP.search(body)
        if name not in entries or first is None:
            return match.group(0)
        indent = first.group(1)
        new = "".join(f"{indent}- {dep}\n" for dep in code_deps(entries[name], root))
        rest = _CODE_DEP.sub("", body)
        at = first.start()
        return f"  {name}:\n" + rest[:at] + new + rest[at:]

    head, sep, stages = text.partition("\nstages:\n")
    return head + sep + _STAGE.sub(stage, stages) if sep else text
