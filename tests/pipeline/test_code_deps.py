"""dvc.yaml: every stage's code dependencies are exactly the tsblib files the stage imports
(`tsblib.pipeline.code_deps`), so a change to any of them reruns the stage (a stale result
cannot survive a code change) and a change to any other file does not."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tsblib.pipeline.code_deps import (ROOT, code_deps, imported_modules, module_file,
                                       render_dvc_yaml, stage_entries)


def _stages() -> dict[str, list[str]]:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in spec.items():
        body = stage.get("do", stage)
        out[name] = [d if isinstance(d, str) else next(iter(d)) for d in body.get("deps", [])]
    return out


def _covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT)
    return any(rel == Path(d) or Path(d) in rel.parents for d in deps)


def test_every_stage_has_a_known_entry_point():
    assert set(_stages()) == set(stage_entries())


@pytest.mark.parametrize("stage", sorted(stage_entries()))
def test_stage_code_dependencies_are_its_imports(stage):
    deps = _stages()[stage]
    entry = stage_entries()[stage]
    missing = sorted(str(module_file(m).relative_to(ROOT)) for m in imported_modules(entry)
                     if not _covered(module_file(m), deps))
    assert not missing, f"dvc.yaml stage {stage!r} imports these tsblib files without depending " \
                        f"on them: {missing}; run `python -m tsblib sync-registry`"
    code = [d for d in deps if d.startswith("tsblib/")]
    assert code == code_deps(entry), "run `python -m tsblib sync-registry`"


def test_the_committed_dvc_yaml_is_current():
    text = (ROOT / "dvc.yaml").read_text()
    assert render_dvc_yaml(text) == text, "run `python -m tsblib sync-registry`"


def test_import_closure_follows_local_imports_and_the_registry():
    # the check itself must see a function-local import and the registry's package scan
    closure = imported_modules("tsblib.report")
    assert "tsblib.methods.tsb_finetune" in closure
    assert "tsblib.methods.correctnet" in closure  # only reachable through the registry scan
    assert "tsblib.bootstrap" in closure
    assert "tsblib.devices.stuck_at" in closure  # only reachable through the device registry scan
    # a module no stage imports is in no stage's dependencies
    assert all("tsblib/pipeline/plan.py" not in code_deps(e) for e in stage_entries().values())


def test_a_new_import_reaches_the_stage_s_dependencies(library_copy):
    # a copy of the library where the stages' shared module imports one more file
    tmp_path = library_copy
    (tmp_path / "tsblib" / "extra_helper.py").write_text('"""test only"""\n')
    assert "tsblib/extra_helper.py" not in code_deps("tsblib.stages.train", tmp_path)
    common = tmp_path / "tsblib" / "stages" / "common.py"
    common.write_text(common.read_text() + "\n\ndef _late():\n    from tsblib import extra_helper\n")
    assert "tsblib/extra_helper.py" in code_deps("tsblib.stages.train", tmp_path)
    text = (ROOT / "dvc.yaml").read_text()
    rendered = render_dvc_yaml(text, tmp_path)
    importers = [s for s, e in stage_entries().items()
                 if "tsblib.stages.common" in imported_modules(e, tmp_path)]
    assert {"train", "evaluate", "robustness"} <= set(importers)
    assert not {"validate", "mapping", "summarize"} & set(importers)
    assert rendered.count("- tsblib/extra_helper.py") == len(importers)
    assert yaml.safe_load(rendered)["stages"].keys() == yaml.safe_load(text)["stages"].keys()


RUNS_METHOD_CODE = {"recipes", "train", "finetune", "evaluate", "robustness"}
"""The stages that train, fine-tune or deploy: the only ones that import `tsblib.execution`."""


BORROWS = {"recipes": {"train"}, "robustness": {"evaluate"}, "summarize": {"mapping"}}
"""The other stages whose module a stage imports: recipes trains like the train stage, robustness
batches the test split like evaluate, summarize names mapping plans like mapping."""


@pytest.mark.parametrize("stage", sorted(stage_entries()))
def test_only_the_stages_that_run_method_code_depend_on_it(stage):
    """Parsing a profile reads the method specs only: validate, prepare, mapping, summarize and
    figure depend on no training, fine-tuning or Monte Carlo code (a change to it reruns none
    of them), and a stage on no other stage's module but those of `BORROWS`."""
    deps = code_deps(stage_entries()[stage])
    assert ("tsblib/execution" in deps) == (stage in RUNS_METHOD_CODE), deps
    # validate's entry is `tsblib.pipeline`, which every stage runs in
    entries = {module_file(e).relative_to(ROOT).as_posix(): s for s, e in stage_entries().items()
               if s != "validate"}
    others = {entries[d] for d in deps if d in entries and entries[d] != stage}
    assert others <= BORROWS.get(stage, set()), f"stage {stage!r} imports the modules of {others}"


def test_type_checking_imports_are_not_dependencies(library_copy):
    # an import under `if TYPE_CHECKING:` never runs: it adds no dependency (its `else` does)
    tmp_path = library_copy
    (tmp_path / "tsblib" / "extra_a.py").write_text('"""test only"""\n')
    (tmp_path / "tsblib" / "extra_b.py").write_text('"""test only"""\n')
    prepare = tmp_path / "tsblib" / "stages" / "prepare.py"
    prepare.write_text(prepare.read_text() + "\nfrom typing import TYPE_CHECKING\n"
                       "if TYPE_CHECKING:\n    from tsblib import extra_a\n"
                       "else:\n    from tsblib import extra_b\n")
    deps = code_deps("tsblib.stages.prepare", tmp_path)
    assert "tsblib/extra_a.py" not in deps and "tsblib/extra_b.py" in deps


def test_coverage_counts_what_each_stage_s_list_names():
    from tsblib.pipeline.code_deps import coverage, render_coverage

    rows = {r["stage"]: r for r in coverage()}
    assert set(rows) == set(stage_entries())
    for stage, row in rows.items():
        assert row["entries"] == len(code_deps(stage_entries()[stage]))
        assert 0 < row["lines"] < row["library_lines"] and row["files"] >= row["entries"]
    # the stages that only parse cover less code than those that run the methods' code
    assert max(rows[s]["lines"] for s in ("validate", "prepare", "mapping")) < \
        min(rows[s]["lines"] for s in RUNS_METHOD_CODE)
    text = render_coverage(list(rows.values()))
    assert text.splitlines()[0].startswith("stage") and "validate" in text
    assert f"all stages  {sum(r['entries'] for r in rows.values()):>7}" in text
