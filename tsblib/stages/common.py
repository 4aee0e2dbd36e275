"""What several stages share: a model's prepared data."""
from __future__ import annotations

from tsblib.config import ExperimentConfig
from tsblib.data import PreparedData, load_prepared
from tsblib.paths import ProfilePaths


def prepared_data(paths: ProfilePaths, exp: ExperimentConfig,
                  with_test: bool = False) -> PreparedData:
    """`exp.model`'s data as the prepare stage saved it (with the test split when asked)."""
    return load_prepared(paths.prepared_file(exp.model), with_test=with_test)
