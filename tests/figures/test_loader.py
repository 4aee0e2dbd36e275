"""Tests of tsblib.figures.loader: the results read against the one results schema
(`tsblib.schema`), the profile configuration typed (`ProfileConfig`) from provenance.json, and a
missing column or key named at load time with its fix."""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from conftest import ROOT
from test_figures import MODELS, OPERATING, write_results
from tsblib import schema
from tsblib.config import ExperimentConfig, ProfileConfig, SigmaConvention, to_dict
from tsblib.figures import accuracy_gap, loader, training_cost
from tsblib.profiles import profile_from_dict, record_params

PROFILES = ("embedded", "paper", "cifar-cpu")


@pytest.mark.parametrize("profile", PROFILES)
def test_committed_configuration_round_trips_through_the_typed_profile(profile: str) -> None:
    folder = ROOT / "results" / profile
    config = json.loads((folder / schema.PROVENANCE_FILE).read_text())["config"]
    name, raw = record_params(config)
    assert name == profile and set(raw["models"]) == {e["model"] for e in config["experiments"]}
    assert to_dict(profile_from_dict(name, raw)) == config  # nothing lost, nothing defaulted
    results = loader.load_results(profile, folder)
    assert isinstance(results.config, ProfileConfig) and to_dict(results.config) == config
    for model in results.models:
        exp = results.experiment(model)
        written = next(e for e in config["experiments"] if e["model"] == model)
        assert isinstance(exp, ExperimentConfig)
        assert results.operating_sigma(model) == written["evaluation"]["operating_sigma"]
        assert results.sigma_train(model) == written["train"]["sigma_train"]
        assert results.swim_default_p(model) == written["methods"]["params"]["swim"]["default_p"]
        assert results.dataset_name(model) == results.provenance["data"][model]["name"]
    assert results.convention == config["device"]["convention"] == results.claims["convention"]


def test_the_synthetic_results_parse_into_a_typed_profile(tmp_path: Path) -> None:
    res = loader.load_results("tiny", write_results(tmp_path / "tiny"))
    assert res.config.device.convention is SigmaConvention.DEVICE_RANGE
    assert list(res.models) == list(MODELS)
    exp = res.experiment("lenet3")
    assert exp.evaluation.operating_sigma == OPERATING and exp.methods.of("nft_ovf").beta == 0.01
    assert res.swim_default_p("vgg8") == 1.0


def test_result_files_come_from_the_schema() -> None:
    assert loader.RESULT_FILES["tsb_lr"] == schema.TSB_LR.name
    assert loader.RESULT_FILES["claims"] == schema.CLAIMS_FILE
    assert loader.RESULT_FILES["provenance"] == schema.PROVENANCE_FILE
    assert set(loader.TABLES.values()) <= set(schema.TABLES.values())
    assert loader.TABLES["flops"] is schema.FLOPS  # FLOPs per epoch: read, not re-derived


def _edit_csv(path: Path, edit) -> None:
    frame = pd.read_csv(path)
    edit(frame).to_csv(path, index=False)


@pytest.mark.parametrize("name, column", [("summary.csv", "acc_p05"), ("tsb_lr.csv", "epochs"),
                                          ("mapping.csv", "read_back_weights")])
def test_a_missing_column_names_the_file_the_column_and_the_fix(tmp_path: Path, name: str,
                                                                column: str) -> None:
    folder = write_results(tmp_path / "tiny")
    _edit_csv(folder / name, lambda f: f.drop(columns=column))
    with pytest.raises(loader.ResultsSchemaError) as info:
        loader.load_results("tiny", folder)
    text = str(info.value)
    assert str(folder / name) in text and f"lacks column(s) ['{column}']" in text
    assert "rerun `dvc repro summarize`" in text
    stage = schema.TABLES[name].stage  # a per-model table: the stage that writes it, too
    assert (f"rerun the stage that writes it first: `dvc repro {stage}`" in text) == (
        stage != "summarize")


def test_a_column_the_schema_does_not_name_is_refused(tmp_path: Path) -> None:
    folder = write_results(tmp_path / "tiny")
    _edit_csv(folder / "ablations.csv", lambda f: f.assign(seconds=1.0))
    with pytest.raises(loader.ResultsSchemaError, match=r"ablations.csv has column\(s\) "
                       r"\['seconds'\] that the schema does not name.*dvc repro summarize"):
        loader.load_results("tiny", folder)


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("name, where, edit", [
    (schema.CLAIMS_FILE, "models.lenet3.training_speedup lacks key(s) ['tsb_backbone_epochs']",
     lambda c: c["models"]["lenet3"]["training_speedup"].pop("tsb_backbone_epochs")),
    (schema.CLAIMS_FILE, "models.vgg8 lacks key(s) ['chips_tsb']",
     lambda c: c["models"]["vgg8"].pop("chips_tsb")),
    (schema.CLAIMS_FILE, "models.lenet3 lacks key(s) ['mapping_cost_reduction']",
     lambda c: c["models"]["lenet3"].pop("mapping_cost_reduction")),
    (schema.CLAIMS_FILE, "'models' lacks key(s) ['vgg8']", lambda c: c["models"].pop("vgg8")),
    (schema.CLAIMS_FILE, "the top level lacks key(s) ['convention']",
     lambda c: c.pop("convention")),
    (schema.PROVENANCE_FILE, "data.vgg8 lacks key(s) ['name']",
     lambda p: p["data"]["vgg8"].pop("name")),
    (schema.PROVENANCE_FILE, "the top level lacks key(s) ['config']", lambda p: p.pop("config")),
    (schema.PROVENANCE_FILE, "its 'config' is not a valid profile configuration",
     lambda p: p["config"]["experiments"][0]["train"].update(sigma_train=-1)),
    (schema.PROVENANCE_FILE, "its 'config' is not a valid profile configuration of this tsblib "
                             "(profile 'tiny' has no model 'vgg8'",
     lambda p: p["config"]["experiments"].pop()),
])
def test_a_missing_key_names_the_file_the_key_and_the_fix(tmp_path: Path, name: str,
                                                          where: str, edit) -> None:
    """claims.json and provenance.json: what the figures read must be there."""
    folder = write_results(tmp_path / "tiny")
    _edit_json(folder / name, edit)
    with pytest.raises(loader.ResultsSchemaError) as info:
        loader.load_results("tiny", folder)
    assert str(info.value).startswith(f"{folder / name}: {where}")
    assert "rerun `dvc repro summarize`" in str(info.value)


def test_an_undecided_claim_keeps_its_keys_with_null_values(tmp_path: Path) -> None:
    folder = write_results(tmp_path / "tiny", gap_own_low=None, meets_own=None)

    def undecided(claims: dict) -> None:
        claims["models"]["lenet3"]["training_speedup"].update(
            measured=None, meets_claim=None, selected_epoch_ratio=None,
            verdict_reason="undecided (not measured at equal accuracy)", note="rerun")
        for key in ("equal_accuracy", "amortised", "interval95"):
            claims["models"]["lenet3"]["training_speedup"].pop(key, None)
        claims["models"]["lenet3"]["trajectory"] = []

    _edit_json(folder / schema.CLAIMS_FILE, undecided)
    res = loader.load_results("tiny", folder)
    assert res.claims_of("lenet3")["training_speedup"]["meets_claim"] is None
    # the keys such results legitimately lack are read as optional by the figures
    speed = training_cost.speedup_table(res).set_index("model").loc["LeNet-3"]
    assert speed["NIT epochs to TSB's accuracy"] == "-" and speed["meets?"].startswith("undecided")
    assert "(rerun.)" in training_cost.training_sentence(res, "lenet3")
    claims = accuracy_gap.claims_table(res)
    own = claims[claims["claim"] == schema.CLAIM_BY_KEY["gap_improvement_own"].label]
    assert own["meets?"].str.startswith("undecided").all()  # a null verdict, its keys kept
    fig = training_cost.fig_training_cost(res)
    plt.close(fig)


def test_an_absent_optional_table_is_empty_with_the_schema_columns(tmp_path: Path) -> None:
    folder = write_results(tmp_path / "tiny", sweeps=False)
    optional = [attr for attr, table in loader.TABLES.items() if table.optional]
    assert sorted(optional) == ["recipes", "robustness"]
    for attr in optional:
        assert not (folder / loader.TABLES[attr].name).exists()
    res = loader.load_results("tiny", folder)
    for attr in optional:
        frame = getattr(res, attr)
        assert frame.empty and list(frame.columns) == list(loader.TABLES[attr].result_columns)
    assert "seconds" not in res.recipes.columns  # wall-clock time stays in the timing table


def test_an_absent_required_table_names_the_fix(tmp_path: Path) -> None:
    folder = write_results(tmp_path / "tiny")
    (folder / schema.TSB_LR.name).unlink()
    with pytest.raises(FileNotFoundError, match=r"tsb_lr.csv not found.*dvc repro"):
        loader.load_results("tiny", folder)
