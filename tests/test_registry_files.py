"""The method lists of dvc.yaml's plots and the DVC plot template come from the registry
(tsblib/registry_files.py)."""
import shutil

from tsblib.cli import main
from tsblib.methods import registry
from tsblib.methods.registry import MethodSpec
from tsblib.registry_files import DVC_YAML, TEMPLATE, render_dvc_yaml, render_template, sync

from conftest import ROOT


def test_the_committed_files_are_current():
    assert sync(ROOT, write=False) == [], "run `python -m tsblib sync-registry`"


def test_a_new_method_reaches_both_files(library_copy, monkeypatch, capsys):
    tmp_path = library_copy  # the code dvc.yaml's deps come from
    (tmp_path / ".dvc" / "plots").mkdir(parents=True)
    shutil.copy(ROOT / DVC_YAML, tmp_path / DVC_YAML)
    shutil.copy(ROOT / TEMPLATE, tmp_path / TEMPLATE)
    monkeypatch.setitem(registry.METHODS, "toy", MethodSpec(
        name="toy", label="toy", color="#123456", marker="o", order=99, description="test only",
        trained_from="nit", evaluate=lambda ctx: iter(())))
    yaml_text = render_dvc_yaml((tmp_path / DVC_YAML).read_text())
    assert yaml_text.count("nit_block_bnrecal, toy]") == 2  # accuracy and gap plots
    assert "correctnet]\n" in yaml_text  # the training plot lists trained methods only
    template = render_template((tmp_path / TEMPLATE).read_text())
    assert '"toy"' in template and '"#123456"' in template
    monkeypatch.chdir(tmp_path)
    assert main(["sync-registry", "--check"]) == 1
    assert main(["sync-registry"]) == 0
    assert main(["sync-registry", "--check"]) == 0
    assert "registry files are current" in capsys.readouterr().out
