"""Runs a figure notebook with papermill (`execute_notebook`): one parameters cell, the kernel
importing this repository's tsblib, the executed copy without execution times."""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

from tsblib.figures.common import _write_atomically


NOTEBOOK_KERNEL = "python3"
"""The Jupyter kernel that executes the figure notebooks: the environment's own Python."""


VOLATILE_CELL_METADATA = ("execution", "papermill")
"""Cell metadata written by nbclient (`execution`: iopub timestamps) and papermill (start and end
times, duration, status); dropped from executed notebooks."""


_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=")
"""A parameter assignment line of a parameters cell (`name = value`)."""


def fold_parameters(parameters_source: str, injected_source: str) -> str:
    """The source of a parameters cell with papermill's injected values folded in: each
    assignment of an injected name takes the injected line, injected names the cell lacks are
    appended, and papermill's '# Parameters' comment is dropped."""
    injected = {}
    for line in injected_source.splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            injected[match.group(1)] = line
    lines = []
    for line in parameters_source.splitlines():
        match = _ASSIGNMENT.match(line)
        lines.append(injected.pop(match.group(1)) if match and match.group(1) in injected else line)
    return "\n".join(lines + list(injected.values()))


def _fold_injected_cell(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`cells` with papermill's injected-parameters cell folded into the parameters cell
    (`fold_parameters`) and removed, so the executed notebook has one parameters cell stating
    the values it ran with; code cells' execution counts are then renumbered 1, 2, ..."""
    tags = [c.get("metadata", {}).get("tags", ()) for c in cells]
    injected = next((i for i, t in enumerate(tags) if "injected-parameters" in t), None)
    target = next((i for i, t in enumerate(tags) if "parameters" in t), None)
    if injected is None:
        return cells
    if target is None:  # a notebook without a parameters cell: papermill's cell takes its place
        cells[injected]["metadata"]["tags"] = ["parameters"]
    else:
        cells[target]["source"] = fold_parameters(_source(cells[target]), _source(cells[injected]))
        cells = cells[:injected] + cells[injected + 1:]
    count = 0
    for cell in cells:
        if cell.get("cell_type") == "code" and cell.get("execution_count") is not None:
            count += 1
            cell["execution_count"] = count
            for output in cell.get("outputs", []):
                if output.get("output_type") == "execute_result":
                    output["execution_count"] = count
    return cells


def _source(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def kernelspec_metadata(kernel_name: str = NOTEBOOK_KERNEL) -> dict[str, str]:
    """The notebook metadata `kernelspec` of installed kernel `kernel_name` (its name, display
    name and language), exactly what JupyterLab writes into a notebook when it starts that
    kernel: a notebook that already holds it opens without being marked modified."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(kernel_name)
    return {"display_name": spec.display_name, "language": spec.language, "name": kernel_name}


def normalise_notebook(nb: dict[str, Any], kernel_name: str = NOTEBOOK_KERNEL) -> Any:
    """A copy of executed notebook `nb` (an nbformat NotebookNode or plain dict) that holds no
    wall-clock time or machine path and that JupyterLab opens unmodified: nbformat 4 at the
    current minor version with a valid id on every cell, one parameters cell holding the values
    it ran with (papermill's injected cell folded into it, `_fold_injected_cell`), the cell
    metadata of `VOLATILE_CELL_METADATA` and empty tag lists dropped, papermill's notebook
    metadata reduced to the injected parameters, and the kernelspec of the installed kernel
    (`kernelspec_metadata`). Returns a validated NotebookNode."""
    import nbformat
    from nbformat.validator import normalize

    out = copy.deepcopy(dict(nb))
    out["nbformat"], out["nbformat_minor"] = nbformat.v4.nbformat, nbformat.v4.nbformat_minor
    meta = out.setdefault("metadata", {})
    run = meta.pop("papermill", None) or {}
    if run.get("parameters"):
        meta["papermill"] = {"parameters": run["parameters"]}
    meta["kernelspec"] = kernelspec_metadata(kernel_name)
    for cell in out.get("cells", []):
        cell.setdefault("metadata", {})
    out["cells"] = _fold_injected_cell(out.get("cells", []))
    for i, cell in enumerate(out["cells"]):
        cell_meta = cell["metadata"]
        for key in VOLATILE_CELL_METADATA:
            cell_meta.pop(key, None)
        if not cell_meta.get("tags", True):
            del cell_meta["tags"]
        if not cell.get("id"):
            cell["id"] = f"cell-{i}"
    _, out = normalize(out)
    node = nbformat.from_dict(out)
    nbformat.validate(node)
    return node


def kernel_config() -> object:
    """Kernel-manager settings for papermill: CurveZMQ-encrypted kernel sockets where
    jupyter_client and pyzmq support them, which also silences ipykernel's 'Kernel is running
    over TCP without encryption' warning on every figure; empty (the defaults) otherwise."""
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    if zmq.has("curve") and KernelManager.class_traits().get("transport_encryption") is not None:
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config()


def execute_notebook(source: str | os.PathLike, target: str | os.PathLike,
                     parameters: dict[str, Any], cwd: str | os.PathLike,
                     kernel_name: str = NOTEBOOK_KERNEL,
                     library_root: str | os.PathLike | None = None) -> Path:
    """Execute notebook `source` with papermill (injecting `parameters`, running in `cwd`) and
    write the executed copy to `target` atomically, normalised by `normalise_notebook` and
    serialised as Jupyter saves notebooks: executing it again on the same results gives the same
    bytes, and opening it in JupyterLab does not mark it modified. With `library_root`, the
    kernel imports tsblib from that folder (put first on its PYTHONPATH) rather than from
    wherever the environment installed it. A failing cell raises papermill's
    PapermillExecutionError and leaves `target` as it was. Returns `target`."""
    import nbformat
    import papermill

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    saved = os.environ.get("PYTHONPATH")
    if library_root is not None:  # the kernel inherits this process's environment
        os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(library_root).resolve())]
                                                   + ([saved] if saved else []))
    try:
        nb = papermill.execute_notebook(str(source), None, parameters=parameters, cwd=str(cwd),
                                        progress_bar=False, kernel_name=kernel_name,
                                        config=kernel_config())
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    text = nbformat.writes(normalise_notebook(nb, kernel_name))
    _write_atomically(target, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return target
