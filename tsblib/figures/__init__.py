"""The figures of DESIGN section 7, one module per figure (its drawing, tables and sentences),
with what they share apart: `loader` (the results of a profile, read once), `common` (labels,
colours, captions, saving and showing, tables and sentences) and `notebook` (runs a figure
notebook with papermill).

A figure module declares `NAME` (its notebook `notebooks/<NAME>.ipynb` and DVC stage
`figure@<NAME>`) and `ORDER` (its number); `figure_names` finds them without importing them, so
the pipeline's list of figures is whatever this folder holds.
"""
from __future__ import annotations

import ast
from pathlib import Path

SUPPORT = ("common", "loader", "notebook")
"""Modules of this package that are not figures."""


def _constant(tree: ast.Module, name: str) -> object:
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name):
            return ast.literal_eval(node.value)
    return None


def figure_names(folder: Path | None = None, notebooks: Path | None = None) -> tuple[str, ...]:
    """The figure modules' `NAME`s in `ORDER`, read from their source (nothing is imported).
    Each must have its notebook template `<NAME>.ipynb` in `notebooks` (default: the
    repository's notebooks/, checked where that folder exists: not in an installed copy of
    tsblib without the repository)."""
    folder = folder or Path(__file__).parent
    notebooks = notebooks or Path(__file__).resolve().parents[2] / "notebooks"
    found = []
    for path in sorted(folder.glob("*.py")):
        if path.stem.startswith("_") or path.stem in SUPPORT:
            continue
        tree = ast.parse(path.read_text())
        name, order = _constant(tree, "NAME"), _constant(tree, "ORDER")
        if name != path.stem or not isinstance(order, int):
            raise ValueError(f"{path} is a figure module, so it must set NAME = {path.stem!r} "
                             f"and ORDER = <its number>, an integer")
        if notebooks.is_dir() and not (notebooks / f"{name}.ipynb").is_file():
            raise ValueError(f"{path} is a figure module without its notebook template "
                             f"{notebooks / f'{name}.ipynb'}: add one (a `parameters` cell, "
                             f"then cells that call tsblib.figures; docs/extending.md), or "
                             f"remove the module")
        found.append((order, name))
    return tuple(name for _, name in sorted(found))
