"""Profiles as the library uses them: params.yaml parsed and checked by the schema
(`tsblib.config`) with what the registries know, handed in as its `Catalog`.

The schema imports no registry; this module sits above the device, data-set, method and model
registries (DESIGN section 8) and is what everything else calls to read parameters.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tsblib.config import (Catalog, DeviceConfig, ProfileConfig, build, parse_profile,
                           profile_mapping)
from tsblib.datasets import all_datasets
from tsblib.devices.base import all_devices, check_device, params_of
from tsblib.methods.registry import all_methods, robust_deployments
from tsblib.models import MODELS, SCALABLE


def catalog() -> Catalog:
    """What the schema needs of the registries, read from them now (so a method or device model
    registered later, e.g. by a test, is known)."""
    methods, datasets = all_methods(), all_datasets()
    return Catalog(
        devices={name: spec.params for name, spec in all_devices().items()},
        check_device=check_device, device_params=params_of,
        methods={name: spec.params for name, spec in methods.items()},
        method_checks={name: spec.check for name, spec in methods.items() if spec.check},
        robust=tuple(robust_deployments()), models=frozenset(MODELS),
        scalable=frozenset(SCALABLE), datasets=frozenset(datasets),
        augmentable=frozenset(n for n, d in datasets.items() if d.augmentable),
        resolvable=frozenset(n for n, d in datasets.items() if d.resolve is not None))


def profile_from_dict(name: str, raw: dict[str, Any]) -> ProfileConfig:
    """Build and validate profile `name` from its params.yaml mapping (`tsblib.config`'s
    `parse_profile` with the registries' catalog)."""
    return parse_profile(name, raw, catalog())


def load_profile(params_path: str | Path = "params.yaml", profile: str | None = None,
                 overrides: dict[str, Any] | None = None) -> ProfileConfig:
    """Read `params_path`, select `profile` (default: its `profile:` key), merge `overrides` and
    build and validate it."""
    return profile_from_dict(*profile_mapping(params_path, profile, overrides))


def build_device(data: dict[str, Any] | None, prefix: str = "device") -> DeviceConfig:
    """A `device` block (as written in params.yaml) built and checked, e.g. for a benchmark or
    a test; `prefix` names it in errors."""
    known = catalog()
    device = build(DeviceConfig, data, prefix, known)
    device.validate(known)
    return device
