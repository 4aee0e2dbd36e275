"""Registries that fill themselves (tsblib/package_scan.py): a module that cannot be registered
is named, with what is wrong, when the registry first loads."""
import sys

import pytest

from tsblib.package_scan import PackageScan, RegistryError


def _package(tmp_path, name, modules):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    for module, source in modules.items():
        (folder / f"{module}.py").write_text(source)
    return folder


def test_a_module_that_cannot_register_is_named_with_its_reason(tmp_path, monkeypatch):
    folder = _package(tmp_path, "toyreg", {
        "good": "REGISTERED = True\n",
        "broken": "raise ValueError(\"method 'toy': its MethodSpec lacks evaluate\")\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    scan = PackageScan("toyreg", folder)
    with pytest.raises(RegistryError, match=r"module toyreg.broken \(.*broken.py\) could not be "
                                            r"registered: method 'toy': its MethodSpec lacks "
                                            r"evaluate\. Fix the module, or remove it"):
        scan()
    with pytest.raises(RegistryError, match="toyreg.broken"):  # not silently half-loaded
        scan()
    (folder / "broken.py").write_text("REGISTERED = True\n")
    sys.modules.pop("toyreg.broken", None)
    scan()
    assert sys.modules["toyreg.good"].REGISTERED and sys.modules["toyreg.broken"].REGISTERED


def test_a_missing_required_field_names_the_module(tmp_path, monkeypatch):
    folder = _package(tmp_path, "toymethods", {"toy": (
        "from tsblib.methods.registry import MethodSpec, register\n"
        "register(MethodSpec(name='toy', label='toy', marker='o', order=99,\n"
        "                    description='no colour', trained_from='nit'))\n")})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RegistryError, match=r"toymethods.toy .*missing 1 required .*'color'"):
        PackageScan("toymethods", folder)()
