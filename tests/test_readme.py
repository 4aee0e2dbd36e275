"""The result tables of the documentation (README.md and docs/) are generated from the committed
claims.json (`python -m tsblib claims --write-docs` rewrites them all), and a drift between the
two fails here."""
import re
from pathlib import Path

import pytest

from tsblib.headline import DOC_BLOCK as BLOCK
from tsblib.headline import claims_markdown, doc_files

ROOT = Path(__file__).resolve().parents[1]
DOCS = doc_files(ROOT)


def _blocks() -> list[tuple[str, str]]:
    return [(m["profile"], m["body"]) for doc in DOCS for m in BLOCK.finditer(doc.read_text())]


def test_the_docs_carry_the_claims_of_every_committed_profile():
    profiles = {p for p, _ in _blocks()}
    committed = {p.parent.name for p in (ROOT / "results").glob("*/claims.json")}
    assert profiles == committed


@pytest.mark.parametrize("profile, body", _blocks(), ids=[p for p, _ in _blocks()])
def test_readme_claims_tables_match_claims_json(profile, body):
    expected = claims_markdown(ROOT / "results" / profile).strip()
    assert body.strip() == expected, (
        f"the documented claims of profile {profile!r} differ from results/{profile}/claims.json: "
        f"regenerate them with `python -m tsblib claims --write-docs`")


def test_a_changed_number_is_caught(tmp_path):
    body = dict(_blocks())["embedded"]
    changed = re.sub(r"\d+\.\d+x", "9.999x", body, count=1)
    assert changed != body and changed.strip() != claims_markdown(ROOT / "results" / "embedded").strip()


def test_write_docs_restores_a_drifted_table(tmp_path):
    import shutil

    from tsblib.cli import main
    from tsblib.headline import write_docs

    (tmp_path / "docs").mkdir()
    shutil.copytree(ROOT / "results" / "embedded", tmp_path / "results" / "embedded",
                    ignore=lambda folder, names: [n for n in names if n not in
                                                  ("claims.json",) and "." in n])
    body = dict(_blocks())["embedded"]
    drifted = re.sub(r"\d+\.\d+x", "9.999x", body, count=1)
    doc = f"# doc\n\n<!-- claims-markdown: embedded -->\n{drifted}<!-- /claims-markdown -->\n"
    (tmp_path / "README.md").write_text(doc)
    assert write_docs(tmp_path) == [tmp_path / "README.md"]
    assert dict((m["profile"], m["body"]) for m in BLOCK.finditer(
        (tmp_path / "README.md").read_text()))["embedded"].strip() == body.strip()
    assert main(["claims", "--write-docs", "--params", str(tmp_path / "params.yaml")]) == 0
    assert write_docs(tmp_path) == []
