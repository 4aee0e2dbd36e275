"""Files that list what the code declares, written from it: the `y` lists of the DVC plots in
dvc.yaml (the method columns of each plot's CSVs, `tsblib.report.plot_methods`), the colour
scale of the DVC plot template `.dvc/plots/by_method.json` (each method's colour in the
figures), each dvc.yaml stage's code dependencies (the files it imports,
`tsblib.pipeline.code_deps`), and the figures: the `figure` stage's `foreach` list and the
figure PNGs among dvc.yaml's plots (`tsblib.figures.figure_names`). A new method, module or
figure is picked up by

    python -m tsblib sync-registry          # rewrite both files
    python -m tsblib sync-registry --check  # exit 1 when either is out of date

and tests/test_registry_files.py and tests/pipeline/test_code_deps.py fail while they are out of date."""
from __future__ import annotations

import json
import re
from pathlib import Path

from tsblib import io
from tsblib.figures import figure_names
from tsblib.methods.registry import ordered
from tsblib.pipeline import code_deps
from tsblib.report import PLOT_DATA, plot_methods

DVC_YAML = Path("dvc.yaml")
TEMPLATE = Path(".dvc") / "plots" / "by_method.json"
_Y_LIST = re.compile(r"(  - results/\$\{profile\}/plots/(\w+):\n(?:      (?!y:).*\n)*)"
                     r"      y: \[[^\]]*\]\n")
_WIDTH = 98


def _y_list(names: list[str]) -> str:
    """`      y: [a, b, ...]` wrapped at `_WIDTH` columns, continuation lines aligned under '['."""
    lines, line = [], "      y: ["
    for i, name in enumerate(names):
        item = name + ("]" if i == len(names) - 1 else ",")
        if len(line) + len(item) + 1 > _WIDTH and not line.endswith("["):
            lines.append(line)
            line = " " * len("      y: ")
        line += ("" if line.endswith("[") or not line.strip() else " ") + item
    return "\n".join(lines + [line]) + "\n"


def render_dvc_yaml(text: str) -> str:
    """dvc.yaml with the `y` list of every DVC plot in `PLOT_DATA` written from the registry."""
    def replace(match: re.Match) -> str:
        plot = match.group(2)
        if plot not in PLOT_DATA:
            return match.group(0)
        return match.group(1) + _y_list(plot_methods(plot))
    return _Y_LIST.sub(replace, text)


_FIGURE_FOREACH = re.compile(r"(  figure:\n    foreach:\n)((?:      - \w+\n)+)")
_FIGURE_PNGS = re.compile(r"((?:  - results/\$\{profile\}/figures/\w+\.png\n)+)")


def render_figures(text: str) -> str:
    """dvc.yaml with the figure stage's `foreach` list and the figure PNGs among its plots
    written from the figure modules (`tsblib.figures.figure_names`), in figure order."""
    names = figure_names()
    text = _FIGURE_FOREACH.sub(lambda m: m.group(1) + "".join(f"      - {n}\n" for n in names),
                               text)
    return _FIGURE_PNGS.sub(lambda m: "".join(f"  - results/${{profile}}/figures/{n}.png\n"
                                              for n in names), text)


def render_template(text: str) -> str:
    """by_method.json with its colour scale (domain: method names, range: colours) written from
    the registry, in figure order."""
    template = json.loads(text)
    scale = template["encoding"]["color"]["scale"]
    scale["domain"] = [s.name for s in ordered()]
    scale["range"] = [s.color for s in ordered()]
    return json.dumps(template, indent=2) + "\n"


def sync(root: Path, write: bool = True) -> list[Path]:
    """The files under `root` whose registry lists are out of date (rewritten when `write`)."""
    stale = []
    def dvc_yaml(text: str) -> str:
        return code_deps.render_dvc_yaml(render_figures(render_dvc_yaml(text)), root)

    for rel, render in ((DVC_YAML, dvc_yaml), (TEMPLATE, render_template)):
        path = root / rel
        text = path.read_text()
        new = render(text)
        if new != text:
            stale.append(path)
            if write:
                io.write_text(path, new)
    return stale
