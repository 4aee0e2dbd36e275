"""params.yaml as DVC rewrites it: `dvc exp run -S` goes through DVC's YAML round trip, which
must reproduce the file byte for byte (comments, layout, length) apart from the value set."""
import difflib
import importlib.util
import io

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.skipif(importlib.util.find_spec("dvc") is None, reason="needs dvc")


def _round_trip(text: str, change=None) -> str:
    from dvc.utils.serialize._yaml import _get_yaml

    y = _get_yaml()
    data = y.load(text)
    if change:
        change(data)
    out = io.StringIO()
    y.dump(data, out)
    return out.getvalue()


def test_dvc_rewrites_params_yaml_byte_for_byte():
    text = (ROOT / "params.yaml").read_text()
    again = _round_trip(text)
    diff = "".join(difflib.unified_diff(text.splitlines(True), again.splitlines(True), n=0))
    assert again == text, ("DVC's YAML writer would reformat params.yaml (keep one-line lists "
                           "and mappings within 80 columns, block style otherwise):\n" + diff[:2000])


def test_setting_one_parameter_changes_one_line():
    text = (ROOT / "params.yaml").read_text()

    def change(data):
        data["profiles"]["embedded"]["evaluation"]["chips"] = 20
        data["profiles"]["cifar-cpu"]["evaluation"]["sigmas"][1] = 0.15

    again = _round_trip(text, change)
    changed = [(a, b) for a, b in zip(text.splitlines(), again.splitlines()) if a != b]
    assert len(text.splitlines()) == len(again.splitlines()) and len(changed) == 2
    assert yaml.safe_load(again)["profiles"]["embedded"]["evaluation"]["chips"] == 20
