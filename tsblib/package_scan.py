"""Registries that fill themselves: every module of a registry's package registers what it
defines when it is imported, and `PackageScan` imports them all, once, when the registry is
first read (the device, data-set and method registries use it)."""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path


class RegistryError(Exception):
    """A module of a registry's package cannot be registered; the message names the module and
    what is wrong or missing."""


class PackageScan:
    """Imports every module of one package on its first call; later calls do nothing."""

    def __init__(self, package: str, folder: Path) -> None:
        self.package = package
        """Dotted name of the package (`__package__` of the registry module)."""
        self.folder = folder
        """The package's folder (the registry module's `Path(__file__).parent`)."""
        self._done = False

    def __call__(self) -> None:
        """Import the package's modules, unless done already. A module that fails to import or
        whose registration is refused raises RegistryError naming it and the reason."""
        if self._done:
            return
        for info in pkgutil.iter_modules([str(self.folder)]):
            module = f"{self.package}.{info.name}"
            try:
                importlib.import_module(module)
            except RegistryError:
                raise
            except Exception as exc:
                raise RegistryError(f"module {module} ({self.folder / info.name}.py) could not be "
                                    f"registered: {exc}. Fix the module, or remove it from "
                                    f"{self.folder}") from exc
        self._done = True
