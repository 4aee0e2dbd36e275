"""Profiles as the library uses them: params.yaml parsed and checked by the schema
(`tsblib.config`) with what the registries know, handed in as its `Catalog`.

The schema imports no registry; this module sits above the device, data-set, method and model
registries (DESIGN section 8) and is what everything else calls to read parameters.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tsblib.config import (Catalog, ConfigError, DeviceConfig, ProfileConfig, build, parse_profile,
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


def _device_params(device: dict[str, Any]) -> dict[str, Any]:
    """A `device` block of `to_dict` form as params.yaml writes it: each device model's
    parameters under its own name (not under `params`), no null `noise_model`."""
    out = {k: v for k, v in device.items() if k != "params"}
    if out.get("noise_model") is None:
        out.pop("noise_model", None)
    return {**out, **(device.get("params") or {})}


def _experiment_params(exp: dict[str, Any]) -> dict[str, Any]:
    """One experiment of `to_dict` form as a params.yaml `models.<model>` entry."""
    out = {k: v for k, v in exp.items() if k != "model"}
    if isinstance(out.get("methods"), dict):  # each method's parameters under its own name
        methods = out["methods"]
        out["methods"] = {**{k: v for k, v in methods.items() if k != "params"},
                          **(methods.get("params") or {})}
    robustness = out.get("robustness")
    if isinstance(robustness, dict) and isinstance(robustness.get("scenarios"), list):
        out["robustness"] = {**robustness, "scenarios": [
            {**s, "device": _device_params(s["device"])}
            if isinstance(s, dict) and isinstance(s.get("device"), dict) else s
            for s in robustness["scenarios"]]}
    return out


def record_params(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """provenance.json's `config` (`tsblib.config.to_dict` of the profile) as the profile name
    and the params.yaml mapping that `tsblib.profiles.profile_from_dict` parses: one entry per
    experiment under `models`, and each method's and device model's parameters under its own
    name."""
    raw = {k: _device_params(v) if k == "device" and isinstance(v, dict) else v
           for k, v in config.items() if k not in ("name", "experiments")}
    experiments = config.get("experiments")
    if not isinstance(experiments, list) or not all(
            isinstance(e, dict) and "model" in e for e in experiments):
        raise ConfigError("config.experiments must be a list of experiments, each with its "
                          "`model`")
    raw["models"] = {e["model"]: _experiment_params(e) for e in experiments}
    return str(config.get("name", "")), raw


def profile_from_record(record: dict[str, Any]) -> ProfileConfig:
    """The profile a results folder records (provenance.json `config`, `to_dict` of the profile),
    parsed and validated as params.yaml is; the inverse of `tsblib.config.to_dict`."""
    return profile_from_dict(*record_params(record))


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
