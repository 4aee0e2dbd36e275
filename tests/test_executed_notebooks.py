"""The executed figure notebooks in results/<profile>/notebooks/ (what `pytest --nbval` runs and
what a reader opens): in the form JupyterLab keeps, so opening one does not mark it modified,
without execution times, in step with their templates in notebooks/, and collected once, never
through a JupyterLab checkpoint copy."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.validator import normalize

from tsblib.figures import notebook

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = sorted(ROOT.glob("results/*/notebooks/*.ipynb"))


def _id(path: Path) -> str:
    return f"{path.parents[1].name}/{path.stem}"


def test_every_profile_has_every_executed_figure_notebook() -> None:
    templates = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    for profile in ("embedded", "paper", "cifar-cpu"):
        assert sorted(p.name for p in EXECUTED if p.parents[1].name == profile) == templates


@pytest.mark.parametrize("path", EXECUTED, ids=_id)
def test_executed_notebook_is_already_normalised(path: Path) -> None:
    """Nothing that nbformat or JupyterLab would change on opening, nothing time-dependent."""
    text = path.read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    assert (nb.nbformat, nb.nbformat_minor) == (4, nbformat.v4.nbformat_minor)
    nbformat.validate(nb)
    changes, _ = normalize(json.loads(text))
    assert changes == 0
    assert all(cell.get("id") for cell in nb.cells)
    # JupyterLab writes the kernelspec of the kernel it starts; a different one marks it modified
    assert nb.metadata.kernelspec == notebook.kernelspec_metadata(), (
        f"{path} was executed with another kernelspec than this machine's "
        f"'{notebook.NOTEBOOK_KERNEL}' kernel; rerun `python -m tsblib figure {path.stem}`")
    assert set(nb.metadata) == {"kernelspec", "language_info", "papermill"}
    assert nb.metadata.papermill == {"parameters": {"profile": path.parents[1].name}}
    for cell in nb.cells:
        assert not set(cell.metadata) & set(notebook.VOLATILE_CELL_METADATA), cell.id
    # the bytes Jupyter itself writes when it saves the notebook unchanged
    assert nbformat.writes(notebook.normalise_notebook(nb)) + "\n" == text


@pytest.mark.parametrize("path", EXECUTED, ids=_id)
def test_executed_notebook_is_clean_and_in_step_with_its_template(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], "a warning reached the notebook"
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert html and all("<style" not in h for h in html)  # JupyterLab drops <style> when untrusted
    template = nbformat.read(ROOT / "notebooks" / path.name, as_version=4)
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", ())]
    assert len(parameters) == 1, "one parameters cell, papermill's injected values folded in"
    assert not [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", ())]
    assert parameters[0].source.startswith(f'profile = "{path.parents[1].name}"')
    executed = [c.source for c in nb.cells if c is not parameters[0]]
    assert executed == [c.source for c in template.cells
                        if "parameters" not in c.metadata.get("tags", ())], (
        f"notebooks/{path.name} changed since {path} was executed; rerun "
        f"`python -m tsblib figure {path.stem} --profile {path.parents[1].name}`")


def test_nbval_skips_jupyterlab_checkpoint_copies(tmp_path: Path) -> None:
    """JupyterLab saves `.ipynb_checkpoints/<name>-checkpoint.ipynb` beside every notebook it
    opens; the test command must not collect (and run) those stale copies."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    folder = tmp_path / "results" / "embedded" / "notebooks"
    (folder / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(nb, folder / "figure.ipynb")
    nbformat.write(nb, folder / ".ipynb_checkpoints" / "figure-checkpoint.ipynb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--nbval",
                          "--nbval-current-env"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    collected = [line for line in run.stdout.splitlines() if "::" in line]
    assert any(line.startswith("results/embedded/notebooks/figure.ipynb::") for line in collected)
    assert any(line.startswith("tests/test_nothing.py::") for line in collected)
    assert not [line for line in collected if "checkpoint" in line], collected
