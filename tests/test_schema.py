"""The one results schema (tsblib/schema.py): every results table the committed profiles hold is
one the schema names, with exactly its columns, and dvc.yaml declares each as an output of the
stage the schema says writes it."""
from pathlib import Path

import pytest
import yaml

from tsblib import io, schema

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted(p.name for p in (ROOT / "results").iterdir() if (p / "summary.csv").is_file())
NOT_TABLES = {"plots", schema.TIMING_FOLDER, "figures", "notebooks", "metrics"}
"""Folders of results/<profile>/ that hold no schema table (DVC plot data, timing, figures)."""


def _tables(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.csv"))


@pytest.mark.parametrize("profile", PROFILES)
def test_every_committed_table_has_the_schema_columns(profile):
    results = ROOT / "results" / profile
    found = _tables(results) + [p for m in sorted((results / "models").iterdir())
                                for p in _tables(m)]
    assert found
    for path in found:
        table = schema.TABLES.get(path.name)
        assert table is not None, f"{path} is not a table of tsblib.schema.TABLES"
        per_model = path.parent.parent.name == "models"
        assert per_model == table.per_model or (not per_model and table.merged), path
        with open(path) as fh:
            header = fh.readline().strip().split(",")
        assert tuple(header) == table.result_columns, path
    for folder in results.iterdir():
        assert folder.is_file() or folder.name in NOT_TABLES | {"models"}, folder


def test_timed_tables_keep_their_keys_and_wall_clock_columns_apart():
    for name, keys in schema.TIMED_TABLES.items():
        table = schema.TABLES[name]
        assert set(keys) <= set(table.result_columns)
        assert [c for c in table.columns if schema.is_wall_clock(c)], name
        assert schema.timing_columns(name, list(table.columns)) == \
            [c for c in table.columns if c in keys or schema.is_wall_clock(c)]


def test_claims_are_named_once_and_every_committed_claims_file_has_them():
    assert len(schema.CLAIM_BY_KEY) == len(schema.CLAIMS) == 7
    for claim in schema.CLAIMS:
        assert claim.op in ("<", ">") and claim.label and claim.terminal and claim.unit
    for profile in PROFILES:
        doc = io.read_json(ROOT / "results" / profile / schema.CLAIMS_FILE, "summarize")
        for model, entry in doc["models"].items():
            for claim in schema.CLAIMS:
                assert entry[claim.key]["paper_claim"] == f"{claim.op} {claim.threshold:g}", model


def _outs(stage: dict) -> set[str]:
    return {next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])}


def test_dvc_yaml_declares_every_table_as_an_output_of_its_stage():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for table in schema.TABLES.values():
        if table.per_model:
            outs = _outs(stages[table.stage]["do"])
            assert f"results/${{profile}}/models/${{item}}/{table.name}" in outs, table.name
            if table.keys:
                assert (f"results/${{profile}}/models/${{item}}/{schema.TIMING_FOLDER}/"
                        f"{table.name}") in outs, table.name
        if not table.per_model or table.merged:
            assert f"results/${{profile}}/{table.name}" in _outs(stages["summarize"]), table.name
        if table.per_model and table.merged and table.keys:
            assert (f"results/${{profile}}/{schema.TIMING_FOLDER}/{table.name}"
                    in _outs(stages["summarize"])), table.name
