"""The figures are discovered: a module of tsblib/figures/ with NAME and ORDER is a figure of
the pipeline (its notebook, its DVC stage, its PNG among dvc.yaml's plots)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import tsblib.figures
from tsblib import registry_files
from tsblib.figures import figure_names
from tsblib.pipeline import FIGURES

FOLDER = Path(tsblib.figures.__file__).parent


def test_the_six_figures_of_design_section_7_in_their_order():
    assert FIGURES == figure_names() == ("accuracy_vs_sigma", "accuracy_gap", "training_cost",
                                         "mapping_cost", "ablations", "robustness")
    for name in FIGURES:
        assert (FOLDER.parents[1] / "notebooks" / f"{name}.ipynb").is_file()


def test_a_toy_figure_is_its_module(tmp_path, monkeypatch):
    folder = tmp_path / "figures"
    shutil.copytree(FOLDER, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "toy.py").write_text('"""test only"""\nNAME = "toy"\nORDER = 4\n')
    notebooks = tmp_path / "notebooks"
    shutil.copytree(FOLDER.parents[1] / "notebooks", notebooks)
    with pytest.raises(ValueError, match=r"toy.py is a figure module without its notebook "
                                         r"template .*notebooks/toy.ipynb"):
        figure_names(folder, notebooks)
    shutil.copy(notebooks / "ablations.ipynb", notebooks / "toy.ipynb")
    names = figure_names(folder, notebooks)
    assert names.index("toy") == names.index("mapping_cost") + 1  # ties keep the name order
    monkeypatch.setattr(registry_files, "figure_names", lambda: names)
    text = registry_files.render_figures((FOLDER.parents[1] / "dvc.yaml").read_text())
    assert "      - toy\n" in text and "  - results/${profile}/figures/toy.png\n" in text
    (folder / "toy.py").write_text('"""test only"""\nNAME = "toy"\n')
    with pytest.raises(ValueError, match="toy.py is a figure module, so it must set"):
        figure_names(folder, notebooks)
