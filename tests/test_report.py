"""The summarize stage (tsblib/report.py) joins what earlier stages wrote: run on a copy of the
committed embedded results, it rebuilds summary.csv, claims.json and the rest byte for byte
without building a model, pricing a deployed plan or reading back a file it wrote."""
import shutil
from pathlib import Path

import pytest

from tsblib import io, models, schema
from tsblib.paths import ProfilePaths
from tsblib.profiles import load_profile
from tsblib.report import summarize_stage

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "embedded"
OUTPUTS = [schema.SUMMARY.name, schema.ABLATIONS.name, schema.OVERHEAD.name, schema.FLOPS.name,
           schema.MAPPING.name, schema.CLAIMS_FILE, "metrics/lenet3.json",
           "plots/accuracy_vs_sigma/lenet3.csv"]


@pytest.fixture
def committed_copy(tmp_path):
    """results/embedded copied into a scratch repository, with the summarize outputs removed."""
    shutil.copytree(ROOT / "results" / PROFILE, tmp_path / "results" / PROFILE)
    paths = ProfilePaths(PROFILE, tmp_path)
    for name in OUTPUTS:
        paths.result(name).unlink()
    return paths, load_profile(ROOT / "params.yaml", PROFILE)


def test_summarize_rebuilds_the_committed_results_without_building_a_model(committed_copy,
                                                                          monkeypatch):
    paths, profile = committed_copy

    def no_model(*args, **kwargs):
        raise AssertionError("summarize built a model: it must join mapping.csv and flops.csv")

    monkeypatch.setattr(models, "build_model", no_model)
    summarize_stage(profile, paths, progress=False)
    committed = ProfilePaths(PROFILE, ROOT)
    for name in OUTPUTS:
        assert paths.result(name).read_bytes() == committed.result(name).read_bytes(), name


def test_summarize_reads_no_file_it_wrote(committed_copy, monkeypatch):
    paths, profile = committed_copy
    written: list[Path] = []
    read_after_write: list[Path] = []
    atomic = io.atomic_path

    def record_write(path, *args, **kwargs):
        written.append(Path(path).resolve())
        return atomic(path, *args, **kwargs)

    def check_read(reader):
        def read(path, *args, **kwargs):
            if Path(path).resolve() in written:
                read_after_write.append(Path(path))
            return reader(path, *args, **kwargs)
        return read

    monkeypatch.setattr(io, "atomic_path", record_write)
    monkeypatch.setattr(io, "read_csv", check_read(io.read_csv))
    monkeypatch.setattr(io, "read_json", check_read(io.read_json))
    summarize_stage(profile, paths, progress=False)
    assert paths.result(schema.SUMMARY.name).resolve() in written
    assert read_after_write == []


def test_a_plan_missing_from_mapping_csv_names_the_stage_to_rerun(committed_copy):
    paths, profile = committed_copy
    table = paths.for_model("lenet3").result(schema.MAPPING.name)
    rows = [r for r in io.read_csv(table, "mapping") if r["plan"] != "tsb"]
    io.write_csv(table, rows, schema.MAPPING.columns)
    with pytest.raises(io.StageInputError, match=r"no plan 'tsb' at sigma = 0(\.0)?; .*"
                                                 r"`dvc repro mapping@lenet3`"):
        summarize_stage(profile, paths, progress=False)
