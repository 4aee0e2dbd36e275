"""A profile restricted to the parameter groups a stage declares.

DVC reruns a stage when a parameter it *declares* changes; a parameter read but not declared
leaves a stale result. `scoped` replaces every undeclared group of a `ProfileConfig` (and of each
`ExperimentConfig`) by a stand-in that raises `UndeclaredParameterError` on any use, so running
the stages (tests/stages/test_stages.py does) proves that the declarations cover every read.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from tsblib.config import ExperimentConfig, ProfileConfig

EXPERIMENT_GROUPS = ("data", "train", "methods", "tsb", "evaluation", "ablation", "selection",
                     "robustness")
"""Parameter groups of a model's experiment (profile-wide defaults merged with
`models.<name>` overrides)."""

PROFILE_GROUPS = ("device", "write_verify", "mapping", "runtime")
"""Parameter groups that apply to the whole profile."""


class UndeclaredParameterError(RuntimeError):
    """A stage read a parameter group it does not declare (tsblib.pipeline.STAGES / dvc.yaml)."""


class _Undeclared:
    """Stands in for a parameter group (or part of one) a stage did not declare."""

    def __init__(self, key: str, stage: str, inner: Any = None,
                 allowed: frozenset[str] = frozenset()) -> None:
        object.__setattr__(self, "_key", key)
        object.__setattr__(self, "_stage", stage)
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_allowed", allowed)

    def __reduce__(self) -> tuple:
        # picklable (the train stage's worker processes get the scoped profile)
        return (_Undeclared, (self._key, self._stage, self._inner, self._allowed))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_key", "_stage", "_inner", "_allowed"):
            raise AttributeError(name)  # Python's own protocols, and a half-built copy
        if name in self._allowed:
            return getattr(self._inner, name)
        raise UndeclaredParameterError(
            f"stage {self._stage!r} reads parameter {self._key}.{name}, which it does not "
            f"declare; add {self._key!r} to its params in tsblib/pipeline/__init__.py and in "
            f"dvc.yaml, or DVC will not rerun it when that parameter changes")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{self._key} is read-only")

    def __repr__(self) -> str:
        shown = f" (only {sorted(self._allowed)})" if self._allowed else ""
        return f"<{self._key}: not declared by stage {self._stage!r}{shown}>"


def _mask(value: Any, key: str, groups: frozenset[str], stage: str) -> Any:
    if key in groups:
        return value
    parts = frozenset(g.split(".", 1)[1] for g in groups if g.startswith(key + "."))
    return _Undeclared(key, stage, value, parts)


def scoped(profile: ProfileConfig, groups: Iterable[str], stage: str) -> ProfileConfig:
    """`profile` with only `groups` readable ('*' = all; 'models' covers the model list, names
    and class counts; 'methods.methods' exposes only that field of `methods`)."""
    groups = frozenset(groups)
    if "*" in groups:
        return profile
    unknown = {g.split(".", 1)[0] for g in groups} - set(EXPERIMENT_GROUPS) - set(PROFILE_GROUPS) \
        - {"models"}
    if unknown:
        raise ValueError(f"stage {stage!r} declares unknown parameter groups {sorted(unknown)}")

    def experiment(exp: ExperimentConfig) -> ExperimentConfig:
        return dataclasses.replace(exp, **{g: _mask(getattr(exp, g), g, groups, stage)
                                           for g in EXPERIMENT_GROUPS})

    return dataclasses.replace(
        profile, experiments=tuple(experiment(e) for e in profile.experiments),
        **{g: _mask(getattr(profile, g), g, groups, stage) for g in PROFILE_GROUPS})
