"""`python -m tsblib claims`: the headline claims of a profile as a compact terminal table, one
block per model (claim, the paper's threshold, our measured value, verdict), read from the
committed results/<profile>/claims.json alone, so it works without rerunning anything.

`scripts/reproduce.sh` ends with it. The figure notebooks draw the same claims with more detail
(`tsblib.figures.accuracy_gap.claims_table`); the verdicts are claims.json's own (`meets_claim`).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from tsblib import io
from tsblib.schema import CLAIMS

VERDICTS = {True: "pass", False: "falls short", None: "undecided"}
"""claims.json's `meets_claim` in words (the same words as the figures')."""

COLUMNS = ("claim", "paper", "measured [95 % interval]", "verdict")


class ClaimsNotFound(FileNotFoundError):
    """The profile has no claims.json yet."""


def _missing(value: Any) -> bool:
    """None, NaN, or anything that is not a number (pandas' NA included, without pandas)."""
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return True


def ratio_number(x: float) -> str:
    """Three significant digits, no exponent (how figures, tables and the terminal write
    ratios)."""
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:#.3g}".rstrip(".")


def ratio_text(value: Any, unbounded: bool = False) -> str:
    """A ratio as '12.3x'; 'unbounded' when its denominator is <= 0, 'n/a' when missing."""
    if unbounded:
        return "unbounded"
    if _missing(value):
        return "n/a"
    return f"{ratio_number(float(value))}x"


def interval_text(interval: dict[str, Any] | None) -> str:
    """A gap ratio with its 95 % bootstrap interval, e.g. '12.3x [8.10, 19.0]'; an unbounded
    end (a TSB gap <= 0 in too many resamples) is written 'unbounded'."""
    if not interval:
        return "n/a"

    def end(key: str) -> str:
        if interval.get(f"{key}_unbounded"):
            return "unbounded"
        value = interval.get(key)
        return "n/a" if _missing(value) else ratio_number(float(value))

    point = ("undefined" if interval.get("point_unbounded")
             else ratio_text(interval.get("point")))
    return f"{point} [{end('low')}, {end('high')}]"


def verdict_text(meets: bool | None, reason: str | None = None) -> str:
    """claims.json's `meets_claim` in words: gap ratios pass only when the lower end of their
    95 % interval clears the threshold; None = undecided, with claims.json's reason when it
    gives one (e.g. TSB at or above its own reference)."""
    if meets is None and reason:
        return reason
    return VERDICTS[meets]


def _bound_text(value: Any, lower_bound: bool) -> str:
    if value is None:
        return "unbounded"
    return (">= " if lower_bound else "") + ratio_number(float(value))


def measured_text(key: str, claim: dict[str, Any]) -> str:
    """Our measured value of claim `key`: ratios as '2.60x', gap ratios with their interval,
    equal-accuracy ratios with theirs ('>=' where NIT or SWIM never reached TSB: a lower bound)."""
    if "interval95" in claim and key.startswith("gap_"):
        return interval_text(claim["interval95"])
    if key == "wv_fraction_percent":
        if claim.get("measured") is None:
            return "n/a"
        return f"{float(claim['measured']):.3f} (width {claim.get('chosen_width', '?')})"
    ends = claim.get("equal_accuracy")
    if ends is not None:
        point = _bound_text(claim.get("measured"), bool(ends.get("measured_lower_bound")))
        return (f"{point}x [{_bound_text(ends.get('low'), bool(ends.get('low_lower_bound')))}, "
                f"{_bound_text(ends.get('high'), bool(ends.get('high_lower_bound')))}]")
    return ratio_text(claim.get("measured"), bool(claim.get("unbounded")))


def claim_rows(entry: dict[str, Any], notes: list[str] | None = None) -> list[tuple[str, str, str, str]]:
    """(claim, paper's threshold, measured, verdict) of every claim in a claims.json model entry.
    With `notes`, an undecided verdict's reason becomes a numbered footnote (appended to `notes`
    once per distinct reason) so that the table stays narrow; without, it is written in full."""
    names = {"nit": "NIT", "strongest": entry.get("strongest_baseline") or "?"}
    rows = []
    for c in CLAIMS:
        claim, label = entry.get(c.key), c.terminal
        if claim is None:
            continue
        meets, reason = claim.get("meets_claim"), claim.get("verdict_reason")
        if notes is None or meets is not None or not reason:
            verdict = verdict_text(meets, reason)
        else:
            if reason not in notes:
                notes.append(reason)
            verdict = f"{verdict_text(meets)} ({notes.index(reason) + 1})"
        rows.append((label.format(**names), claim.get("paper_claim", "?"),
                     measured_text(c.key, claim), verdict))
    return rows


def _acc(part: dict[str, Any]) -> str:
    ci = part.get("acc_ci95")
    return f"{part['acc_mean']:.3f}" + ("" if ci is None else f" ± {ci:.3f}")


def _model_header(model: str, entry: dict[str, Any]) -> list[str]:
    strongest = entry.get("strongest_baseline")
    best = entry.get("per_baseline", {}).get(strongest)
    head = (f"{model} on {entry.get('dataset', '?')} at sigma {entry.get('operating_sigma', '?')}; "
            f"TSB on {entry.get('chips_tsb', '?')} chips, baselines on "
            f"{entry.get('chips_baseline', '?')}")
    accs = f"  mean accuracy ± 95 % CI: TSB {_acc(entry['tsb'])}, NIT {_acc(entry['nit'])}"
    if best is not None and strongest != "nit":
        head += f"; strongest baseline {strongest}"
        accs += f", {strongest} {_acc(best)}"
    lines = [head]
    for loss in entry.get("loses_to", []):
        low, high = loss["interval95"]
        lines.append(f"  TSB LOSES to {loss['baseline']} at no more mapping time: "
                     f"{100 * loss['tsb_minus_baseline']:+.1f} points [{100 * low:+.1f}, "
                     f"{100 * high:+.1f}] on the same chips")
    lines.append(accs)
    diffs = [f"{name} {_points(b['tsb_minus_baseline'])}"
             for name, b in entry.get("per_baseline", {}).items()
             if "@" not in name and b.get("tsb_minus_baseline")]
    if diffs:
        lines.append(f"  TSB minus baseline on {entry.get('paired_chips', '?')} paired chips, "
                     f"points [95 % interval]:")
        lines += _wrapped(diffs, "    ")
    spread = entry.get("seed_spread")
    if spread:
        seeds = spread["seeds"]
        parts = [f"{name} " + " / ".join(f"{v:.3f}" for v in m["per_seed"].values())
                 for name, m in spread["methods"].items()]
        parts += [f"{key.replace('_minus_', ' - ')} " + " / ".join(
                  f"{100 * d['mean']:+.1f}" for d in per.values()) + " points"
                  for key, per in spread["differences"].items()]
        lines.append(f"  training seeds {', '.join(map(str, seeds))} on {spread['chips']} chips:")
        lines += _wrapped(parts, "    ")
    return lines


def _points(d: dict[str, Any]) -> str:
    return f"{100 * d['mean']:+.1f} [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}]"


def _wrapped(items: list[str], indent: str, width: int = 100) -> list[str]:
    lines, line = [], indent
    for item in items:
        piece = item if line == indent else f", {item}"
        if len(line) + len(piece) > width and line != indent:
            lines.append(line + ",")
            line, piece = indent, item
        line += piece
    return lines + [line]


def _table(rows: list[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths))).rstrip() for r in rows]


def load_claims(results_dir: Path) -> dict[str, Any]:
    """results/<profile>/claims.json, or ClaimsNotFound naming the command that writes it."""
    path = Path(results_dir) / "claims.json"
    if not path.is_file():
        raise ClaimsNotFound(f"{path} not found: run the pipeline first (dvc repro, or "
                             f"python -m tsblib all --profile {Path(results_dir).name})")
    return json.loads(path.read_text())


def claims_text(results_dir: Path, configured: list[str] | None = None,
                figures: bool = True) -> str:
    """The claims table of every model in results_dir/claims.json, then (with `figures`) a line
    saying where the figures are. Models in `configured` without results are named."""
    results_dir = Path(results_dir)
    doc = load_claims(results_dir)
    if results_dir.is_absolute() and results_dir.is_relative_to(Path.cwd()):
        results_dir = results_dir.relative_to(Path.cwd())  # as the user would type it
    models = doc.get("models", {})
    lines = [f"Headline claims of profile {doc.get('profile', results_dir.name)!r} "
             f"({doc.get('convention', '?')} sigma convention)",
             "Our measurement under our reading of TSB (DESIGN.md section 3), not the paper's "
             "numbers."]
    passed = total = 0
    for model, entry in models.items():
        notes: list[str] = []
        rows = claim_rows(entry, notes)
        passed += sum(r[3] == "pass" for r in rows)
        total += len(rows)
        lines += ["", *_model_header(model, entry), *_table([COLUMNS, *rows])]
        lines += [f"  ({i}) {note}" for i, note in enumerate(notes, 1)]
    missing = [m for m in configured or [] if m not in models]
    if missing:
        lines += ["", f"No results yet for {', '.join(missing)} (configured in params.yaml)."]
    lines += ["", f"{passed} of {total} claims pass. Every claim is read at equal accuracy on "
                  "paired chips: a gap improvement",
              "passes only when the lower end of its 95 % interval (paired bootstrap over chips) "
              "clears the threshold,",
              "and is undecided when TSB's gap or its interval reaches 0."]
    if figures:
        folder = results_dir.as_posix()
        lines.append(f"Figures: {folder}/figures/*.png (PDF beside them); notebooks: "
                     f"{folder}/notebooks/")
    return "\n".join(lines)


def claims_markdown(results_dir: Path) -> str:
    """The claims of every model in results_dir/claims.json as Markdown: per model, first where
    TSB loses at no more mapping time, then the claims table (verdict reasons in full), then TSB
    against every baseline on the same chips. The README's result tables are this output."""
    doc = load_claims(Path(results_dir))
    out = []
    for model, entry in doc.get("models", {}).items():
        out += [f"**{model}** on {entry.get('dataset', '?')} at sigma "
                f"{entry.get('operating_sigma', '?')} ({entry.get('convention', doc.get('convention', '?'))} "
                f"convention); TSB on {entry.get('chips_tsb', '?')} chips, the first "
                f"{entry.get('paired_chips', '?')} of the baselines' {entry.get('chips_baseline', '?')}.", ""]
        for loss in entry.get("loses_to", []):
            low, high = loss["interval95"]
            out.append(f"- **TSB loses to {loss['baseline']} at no more mapping time**: "
                       f"{100 * loss['tsb_minus_baseline']:+.1f} points [{100 * low:+.1f}, "
                       f"{100 * high:+.1f}] on the same chips.")
        if entry.get("loses_to"):
            out.append("")
        out += ["| claim | paper | measured [95 % interval] | verdict |", "|---|---|---|---|"]
        for label, paper, measured, verdict in claim_rows(entry):
            out.append(f"| {label} | {paper} | {measured} | {verdict} |")
        out += ["", "| TSB minus | points [95 % interval] | baseline accuracy | mapping time / TSB's |",
                "|---|---|---|---|"]
        tsb_time = entry.get("tsb", {}).get("mapping_time_s")
        for name, b in entry.get("per_baseline", {}).items():
            d = b.get("tsb_minus_baseline")
            if not d or name == "swim":
                continue
            ratio = "-" if not tsb_time else f"{b['mapping_time_s'] / tsb_time:.2f}x"
            out.append(f"| {name} | {_points(d)} | {_acc(b)} | {ratio} |")
        for name, r in entry.get("readings", {}).items():
            out.append(f"| ({name} minus TSB) | {_points(r['minus_tsb'])} | {_acc(r)} | - |")
        out.append("")
    return "\n".join(out)


DOC_BLOCK = re.compile(r"<!-- claims-markdown: (?P<profile>[\w-]+) -->\n(?P<body>.*?)"
                       r"<!-- /claims-markdown -->", re.S)
"""A generated claims table in the documentation: `claims_markdown` of results/<profile>/."""


def doc_files(root: Path) -> list[Path]:
    """The documentation that may carry generated claims tables: README.md and docs/*.md."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def render_doc(text: str, root: Path) -> str:
    """`text` with every generated claims table rewritten from the committed claims.json."""
    def block(match: re.Match) -> str:
        profile = match["profile"]
        body = claims_markdown(root / "results" / profile).strip()
        return f"<!-- claims-markdown: {profile} -->\n{body}\n<!-- /claims-markdown -->"
    return DOC_BLOCK.sub(block, text)


def write_docs(root: Path) -> list[Path]:
    """Rewrite the generated claims tables of README.md and docs/*.md; the files changed."""
    changed = []
    for path in doc_files(root):
        text = path.read_text()
        new = render_doc(text, root)
        if new != text:
            io.write_text(path, new)
            changed.append(path)
    return changed
