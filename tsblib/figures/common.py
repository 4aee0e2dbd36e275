"""What every figure shares: labels, colours and markers (from the method registry), captions
naming the device-model convention and data source, saving and showing a figure at its own size,
and the tables and sentences helpers of the notebooks."""
from __future__ import annotations

import functools
import html
import importlib
import math
import os
import re
import tempfile
import textwrap
import warnings
from pathlib import Path
from typing import Any, Callable, TypeVar

import matplotlib
import matplotlib.lines
import matplotlib.ticker
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from tqdm import TqdmWarning

with warnings.catch_warnings():
    # The method modules (loaded by the registry) import tqdm.auto, which warns once, on first
    # import, inside a notebook kernel without ipywidgets. The figure notebooks show no progress
    # bar, and the warning (naming the site-packages path) would land in every executed notebook.
    warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
    importlib.import_module("tqdm.auto")

from tsblib.config import DeviceConfig
from tsblib.figures.loader import Results
from tsblib.headline import ratio_number
from tsblib.methods import registry


MODEL_LABELS = {"lenet3": "LeNet-3", "vgg8": "VGG-8", "resnet18": "ResNet-18"}
"""Readable model names."""


CONVENTION_LABELS = {
    "device_range": "sigma relative to device range",
    "level_step": "sigma relative to one level step",
}
"""How each device-variation convention (DESIGN.md section 2) is written on figures."""


ABLATION_LABELS = {
    "width": "block width c",
    "placement": "block placement",
    "sharing": "sharing",
    "mode": "fine-tuning mode",
    "read_noise": "read-back noise sigma_read",
    "no_block": "no block (backbone alone)",
}
"""Titles of the ablation families in ablations.csv."""


_ABLATION_DEFAULT_KEY = {"width": "width", "placement": "placement", "sharing": "sharing",
                         "mode": "mode", "read_noise": "sigma_read"}


VARIED_COLOUR = sns.color_palette("tab10")[0]
"""Colour of the varied (non-default) settings in the ablation figure."""


F = TypeVar("F", bound=Callable[..., Any])


def _styled(fn: F) -> F:
    """Draw inside seaborn's whitegrid style and notebook context, leaving global state alone."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=1.0):
            return fn(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


def _chips_text(results: Results, model: str) -> str:
    entry = results.claims_of(model)
    base, tsb = entry["chips_baseline"], entry["chips_tsb"]
    if tsb == base:
        text = f"{base} chips per point"
    else:
        text = f"{base} chips per point (TSB and its variants: {tsb}, the first {tsb} of them)"
    return text + _budget_text(results, model)


def _budget_text(results: Results, model: str) -> str:
    """The per-chip data budget of the per-chip methods (claims.json, the configuration)."""
    speed = results.claims_of(model)["training_speedup"]
    images, passes = speed["tsb_finetune_images"], speed["tsb_finetune_passes"]
    recal = results.experiment(model).methods.of("nit_bnrecal").images
    return (f"; per chip: block fine-tuning on {images} training images x {passes} passes"
            + (f", BN recalibration on {recal} images" if recal else ""))


def device_model_text(device: DeviceConfig) -> str:
    """'<models> device error, ' from a profile's device configuration."""
    return f"{device.label} device error, "


def caption(results: Results, model: str | None = None) -> str:
    """One line for the bottom of a figure: device-variation convention, data source, chips per
    point, what the shading means, and that these are our measurements, not the paper's."""
    models = [model] if model is not None else results.models
    conv = CONVENTION_LABELS.get(results.convention, f"sigma convention '{results.convention}'")
    dev = results.config.device
    bits = f"{dev.weight_bits}-bit weights on {dev.device_bits}-bit devices, " + device_model_text(dev)
    parts = []
    for m in models:
        parts.append(f"{MODEL_LABELS.get(m, m)} on {results.dataset_name(m)}, {_chips_text(results, m)}")
    return (f"Device model: {bits}{conv}. Data: {'; '.join(parts)}. shaded: 95 % CI (bands and error bars). "
            f"Profile '{results.profile}': our measurements under our reading of TSB "
            f"(DESIGN.md s.3), not the paper's numbers.")


def _finish(fig: Figure, results: Results, right: float = 1.0,
            legend: tuple[list, list, int] | None = None, note: str = "",
            caption_text: str | None = None) -> None:
    """Add the caption (after `note`, if any; `caption_text` instead of the profile's caption)
    at the bottom of `fig` (and, if given, a legend of (handles, labels, columns) just above it)
    and lay the panels out above both."""
    width_in, height_in = fig.get_size_inches()
    text = textwrap.fill((note + " " if note else "") + (caption_text or caption(results)),
                         width=max(60, int(width_in * 14)))
    lines = text.count("\n") + 1
    fig.text(0.01, 0.01, text, ha="left", va="bottom", fontsize=8.5, color="0.25")
    bottom_in = 0.2 + 0.16 * lines
    if legend is not None:
        handles, labels, ncol = legend
        rows = math.ceil(len(labels) / ncol)
        fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=9.5, frameon=True,
                   bbox_to_anchor=(0.5, bottom_in / height_in))
        bottom_in += 0.27 * rows + 0.1
    fig.tight_layout(rect=(0, bottom_in / height_in, right, 1))


def method_label(method: str, results: Results | None = None, model: str | None = None,
                 swim_p: float | None = None) -> str:
    """Readable name of a method or extra results row (registry), SWIM with its percentage."""
    text = registry.label(method)
    if method == "swim":
        p = swim_p if swim_p is not None else (
            results.swim_default_p(model) if results is not None and model is not None else None)
        if p is not None and not (isinstance(p, float) and math.isnan(p)):
            text += f" p={p:g} %"
    return text


def _style(method: str) -> tuple[Any, str]:
    return registry.style(method)


def method_order() -> list[str]:
    """Every registered method in figure order, then the block-less TSB backbone rows."""
    return [s.name for s in registry.ordered()] + ["tsb_backbone_only", "tsb_backbone_bnrecal"]


def _rows_at(results: Results, model: str, sigma: float) -> pd.DataFrame:
    s = results.summary
    return s[(s["model"] == model) & np.isclose(s["sigma"], sigma)]


def _method_row(results: Results, model: str, method: str, sigma: float,
                swim_p: float | None = None) -> pd.Series | None:
    rows = _rows_at(results, model, sigma)
    rows = rows[rows["method"] == method]
    if method == "swim":
        p = results.swim_default_p(model) if swim_p is None else swim_p
        rows = rows[np.isclose(rows["swim_p_percent"], p)]
    return rows.iloc[0] if len(rows) else None


def _deployed_methods(results: Results, model: str, sigma: float) -> list[str]:
    """Registered methods (not the block-less backbone rows) with a row at `sigma`, in order."""
    present = set(_rows_at(results, model, sigma)["method"])
    return [s.name for s in registry.ordered() if s.name in present]


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or (
        not isinstance(x, str) and pd.isna(x))


def _ci(x: Any) -> float:
    """A CI half-width for drawing: 0 where there is none (one chip, e.g. TSB at sigma = 0)."""
    return 0.0 if _missing(x) else float(x)


def _improvement(base_gap: float, tsb_gap: float) -> str:
    """Baseline gap / TSB gap as text; a ratio with a gap <= 0 is not meaningful and is named."""
    if tsb_gap <= 0:
        return "TSB gap <= 0" if base_gap > 0 else "both gaps <= 0"
    if base_gap <= 0:
        return "gap <= 0, no ratio"
    return f"{ratio_number(base_gap / tsb_gap)}x"


def _early_epoch(results: Results, model: str) -> int:
    """The epoch of NIT's snapshot that TSB uses as its backbone (claims.json)."""
    return int(results.claims_of(model)["training_speedup"]["tsb_backbone_epochs"])


def _finetune_epochs(results: Results, model: str) -> int:
    """Epochs of one chip's block fine-tuning, as used (claims.json; chosen on validation)."""
    return int(results.claims_of(model)["training_speedup"]["tsb_finetune_passes"])


def _write_atomically(target: Path, write: Callable[[str], None]) -> None:
    """Call `write(tmp)` on a temporary file next to `target`, then rename it into place (mode
    0644); on failure the temporary file is removed and `target` is left as it was."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_figure(fig: Figure, results: Results, name: str) -> list[Path]:
    """Write results/<profile>/figures/<name>.png (150 dpi) and .pdf atomically, without dates
    or version stamps, so the same figure gives the same bytes; returns the two paths."""
    folder = Path(results.results_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt, metadata in (("png", {"Software": None}),
                          ("pdf", {"Creator": None, "Producer": None, "CreationDate": None})):
        target = folder / f"{name}.{fmt}"

        def write(tmp: str, fmt: str = fmt, metadata: dict = metadata) -> None:
            with matplotlib.rc_context({"svg.hashsalt": "tsb", "pdf.compression": 6}):
                fig.savefig(tmp, format=fmt, dpi=150, metadata=metadata)

        _write_atomically(target, write)
        written.append(target)
    return written


NOTEBOOK_DPI = 100
"""Resolution of a figure shown in a notebook (`show_figure`): 8-point text is 11 pixels high."""


MIN_FONT_PT = 8.0
"""Smallest text size in the figures (tests/figures/test_figures.py checks every text of every figure)."""


def show_figure(fig: Figure) -> None:
    """Show `fig` in a notebook at its own size, NOTEBOOK_DPI pixels per inch (JupyterLab's
    'unconfined' image: never scaled down to the panel, scrolled sideways where the panel is
    narrower), so that its smallest text (at least MIN_FONT_PT) is readable at 100 % zoom; then
    close it. The PNG carries no date or version, so the notebook's bytes depend on the figure
    alone."""
    import io as bytes_io

    from IPython.display import Image, display

    buffer = bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=NOTEBOOK_DPI, bbox_inches="tight",
                metadata={"Software": None})
    plt.close(fig)
    display(Image(data=buffer.getvalue(), format="png", unconfined=True))


_NUMERIC_CELL = re.compile(r"^[<>=~]*\s*[-+]?\.?\d|^unbounded")
"""A table cell that holds a number (possibly with a unit, ± CI or interval): '0.894 ± 0.008',
'2.60x [2.09, 3.31]', '> 20x', '1.823e+11', '12 / 1000', 'unbounded [2.1, unbounded]'."""


_PLACEHOLDERS = ("", "-", "n/a")


_CELL_STYLE = "padding: 0.25em 0.6em; vertical-align: top; border-bottom: 1px solid #ddd; "


def _numeric_column(values: pd.Series) -> bool:
    cells = [str(v) for v in values if str(v) not in _PLACEHOLDERS]
    return bool(cells) and all(_NUMERIC_CELL.match(c) for c in cells)


def table_html(table: pd.DataFrame) -> str:
    """`table` as an HTML table for the notebooks: one header row, no index, every cell in full,
    text columns left-aligned and wrapped between words, number columns right-aligned and never
    wrapped inside a value (a newline in a cell is a line break, so a long value can take two
    lines where it says so, e.g. an accuracy and its 5th percentile). Styles are inline
    attributes, because JupyterLab drops <style> blocks from notebooks it has not run itself
    (every executed notebook opened from the repository); the text is escaped and the output is
    the same bytes for the same table."""
    numeric = {c: _numeric_column(table[c]) for c in table.columns}
    align = {c: "right" if numeric[c] else "left" for c in table.columns}
    cell = {c: _CELL_STYLE + (f"text-align: {align[c]}; white-space: nowrap;" if numeric[c]
                              else f"text-align: {align[c]}; min-width: 9em;")
            for c in table.columns}
    head = "".join(f'<th style="{_CELL_STYLE}text-align: {align[c]}; vertical-align: bottom; '
                   f'border-bottom: 2px solid #888;">{html.escape(str(c))}</th>'
                   for c in table.columns)
    rows = ["<tr>" + "".join(f'<td style="{cell[c]}">'
                             f'{html.escape(str(v)).replace(chr(10), "<br>")}</td>'
                             for c, v in zip(table.columns, row)) + "</tr>"
            for row in table.itertuples(index=False)]
    return ('<table class="tsb-table" style="border-collapse: collapse; margin: 0;">\n'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>")


def table_text(table: pd.DataFrame) -> str:
    """`table` as plain text (no index, every cell in full): the twin of `table_html` that
    viewers without HTML show and that `pytest --nbval` compares as well (a line break in a cell
    becomes a space)."""
    if not len(table):
        return "(no rows)"
    flat = table.map(lambda v: v.replace("\n", " ") if isinstance(v, str) else v)
    return flat.to_string(index=False, max_colwidth=None)


def transposed(table: pd.DataFrame, key: str = "model", label: str = "") -> pd.DataFrame:
    """`table` turned on its side for a notebook panel: one column per value of `key` (e.g. one
    per model) and one row per other column, named in a first column headed `label`. A table of
    few rows and many columns becomes narrow enough to read without scrolling."""
    if not len(table):
        return table
    side = table.set_index(key).T.reset_index()
    side.columns = [label] + [str(c) for c in side.columns[1:]]
    return side


def show(table: pd.DataFrame) -> None:
    """Display `table` in a notebook as an HTML table (`table_html`) with a plain-text twin
    (`table_text`); JupyterLab shows the HTML."""
    from IPython.display import display

    display({"text/html": table_html(table), "text/plain": table_text(table)}, raw=True)


def say(*sentences: str) -> None:
    """Display conclusion sentences in a notebook as paragraphs (HTML, the text escaped, with the
    plain text as twin): JupyterLab wraps a paragraph between words, whereas it wraps printed
    text anywhere, even inside a number."""
    from IPython.display import display

    display({"text/html": "\n".join(f"<p>{html.escape(s)}</p>" for s in sentences),
             "text/plain": "\n".join(sentences)}, raw=True)


def _acc(mean: float, ci: Any) -> str:
    if _missing(ci):
        return f"{mean:.3f} ± n/a"
    return f"{mean:.3f} ± {float(ci):.3f}"


def _num(x: Any, fmt: str = ".3f", missing: str = "-") -> str:
    if _missing(x):
        return missing
    return format(float(x), fmt)


def _describe(row: pd.Series | None, label: str) -> str:
    if row is None:
        return f"{label}: not measured"
    return f"{label} {_acc(row['acc_mean'], row['acc_ci95'])} ({int(row['chips'])} chips)"


def _overlap(a: pd.Series, b: pd.Series) -> bool:
    return abs(a["acc_mean"] - b["acc_mean"]) <= _ci(a["acc_ci95"]) + _ci(b["acc_ci95"])


def _compare(name: str, row: pd.Series, other_name: str, other: pd.Series) -> str:
    """'<name> is 0.123 above/below <other_name> (confidence intervals (do not) overlap)'."""
    diff = float(row["acc_mean"] - other["acc_mean"])
    if diff == 0:
        return f"{name} and {other_name} have the same mean accuracy"
    return (f"{name} is {abs(diff):.3f} {'above' if diff > 0 else 'below'} {other_name} "
            f"(confidence intervals {'overlap' if _overlap(row, other) else 'do not overlap'})")
