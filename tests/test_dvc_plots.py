"""The DVC plots draw one line per method: the plot data (results/<profile>/plots/) is wide, one
column per method and one row per x, the plot definitions in dvc.yaml name those columns, and the
template colours every method as the figures do."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict

import pytest
import yaml

from tsblib.cli import FIGURES
from tsblib.methods.registry import ordered
from tsblib.report import PLOT_DATA, plot_methods

from conftest import ROOT
from test_dvc_metrics import _dvc_available

PROFILES = ("embedded", "paper", "cifar-cpu")
"""Profiles with committed results."""


def _plot_definitions() -> dict[str, dict]:
    out = {}
    for entry in yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]:
        if isinstance(entry, str):
            out[entry] = {}
        else:
            (path, props), = entry.items()
            out[path] = props or {}
    return out


def _read(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_plot_data_folder_is_defined_with_one_y_per_method():
    defs = _plot_definitions()
    for plot, (x, _) in PLOT_DATA.items():
        props = defs[f"results/${{profile}}/plots/{plot}"]
        assert props["x"] == x
        assert props["y"] == plot_methods(plot)
        assert props["template"] == "by_method"
    data_defs = [p for p in defs if p.startswith("results/${profile}/plots/")]
    assert len(data_defs) == len(PLOT_DATA)


def test_every_figure_is_an_image_plot():
    # the figure PNGs display in `dvc plots show`'s page without the network
    defs = _plot_definitions()
    for name in FIGURES:
        assert f"results/${{profile}}/figures/{name}.png" in defs


@pytest.mark.parametrize("profile", PROFILES)
def test_plot_data_has_one_series_per_method(profile):
    claims = json.loads((ROOT / "results" / profile / "claims.json").read_text())
    for plot, (x, value) in PLOT_DATA.items():
        files = sorted((ROOT / "results" / profile / "plots" / plot).glob("*.csv"))
        assert [f.stem for f in files] == sorted(claims["models"])
        for path in files:
            rows = _read(path)
            assert list(rows[0]) == [x, *plot_methods(plot)], path
            xs = [float(r[x]) for r in rows]
            assert xs == sorted(set(xs)), f"{path}: one row per {x}, in order (no zig-zag)"
            drawn = [m for m in plot_methods(plot) if any(r[m] for r in rows)]
            assert "nit" in drawn and len(drawn) >= 2, path


def test_plot_data_matches_summary_csv():
    summary = _read(ROOT / "results" / "embedded" / "summary.csv")
    wide = _read(ROOT / "results" / "embedded" / "plots" / "accuracy_vs_sigma" / "lenet3.csv")
    for row in wide:
        for method in plot_methods("accuracy_vs_sigma"):
            match = [r for r in summary if r["model"] == "lenet3" and r["method"] == method
                     and float(r["sigma"]) == float(row["sigma"])
                     and r["swim_p_percent"] in ("", "1.0")]
            assert len(match) == (1 if row[method] else 0), (method, row["sigma"])
            if match:
                assert float(match[0]["acc_mean"]) == pytest.approx(float(row[method]))


def test_template_colours_each_method_as_the_figures_do():
    template = json.loads((ROOT / ".dvc" / "plots" / "by_method.json").read_text())
    color = template["encoding"]["color"]
    assert color["field"] == "field"  # DVC puts the column (the method) of each point here
    assert color["scale"]["domain"] == [s.name for s in ordered()]
    assert color["scale"]["range"] == [s.color for s in ordered()]
    assert template["encoding"]["strokeDash"]["field"] == "rev"  # revisions in `dvc plots diff`


def test_dvc_plots_output_is_ignored():
    assert "/dvc_plots/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.skipif(not _dvc_available(), reason="needs dvc and the git checkout")
def test_dvc_plots_show_draws_one_line_per_method(tmp_path):
    command = [sys.executable, "-m", "dvc", "plots", "show", "--json", "-o", str(tmp_path)]
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    assert not data.get("errors")
    plots = {k: v for k, v in data["data"].items() if "/plots/" in k}
    models = json.loads((ROOT / "results" / "embedded" / "claims.json").read_text())["models"]
    assert len(plots) == len(PLOT_DATA) * len(models)
    for name, renders in plots.items():
        (render,) = renders
        assert render["type"] == "vega"
        plot = name.split("/")[-2]
        x = PLOT_DATA[plot][0]
        series = defaultdict(list)
        for point in render["content"]["data"]["values"]:
            if point[point["field"]] != "":
                series[point["field"]].append(float(point[x]))
        assert set(series) <= set(plot_methods(plot)) and "nit" in series
        for method, xs in series.items():
            assert xs == sorted(set(xs)), (name, method)
    images = [k for k, v in data["data"].items() if v and v[0]["type"] == "image"]
    assert len(images) == len(FIGURES)
