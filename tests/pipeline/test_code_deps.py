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


def test_a_new_import_reaches_the_stage_s_dependencies(tmp_path):
    # a copy of the library where the mapping stage's module imports one more file
    import shutil

    shutil.copytree(ROOT / "tsblib", tmp_path / "tsblib",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "tsblib" / "extra_helper.py").write_text('"""test only"""\n')
    assert "tsblib/extra_helper.py" not in code_deps("tsblib.stages", tmp_path)
    stages = tmp_path / "tsblib" / "stages.py"
    stages.write_text(stages.read_text() + "\n\ndef _late():\n    from tsblib import extra_helper\n")
    assert "tsblib/extra_helper.py" in code_deps("tsblib.stages", tmp_path)
    text = (ROOT / "dvc.yaml").read_text()
    rendered = render_dvc_yaml(text, tmp_path)
    importers = [s for s, e in stage_entries().items()
                 if "tsblib.stages" in imported_modules(e, tmp_path)]
    assert {"train", "evaluate", "robustness", "summarize"} <= set(importers)
    assert "validate" not in importers
    assert rendered.count("- tsblib/extra_helper.py") == len(importers)
    assert yaml.safe_load(rendered)["stages"].keys() == yaml.safe_load(text)["stages"].keys()
