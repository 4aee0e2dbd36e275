"""The prepare stage: every model's data set, its validation split carved out."""
from __future__ import annotations

from tsblib import io
from tsblib.config import ProfileConfig
from tsblib.data import data_summary, load_dataset, save_prepared
from tsblib.models import INPUT_SHAPES
from tsblib.paths import ProfilePaths


def prepare(profile: ProfileConfig, paths: ProfilePaths, progress: bool = True) -> None:
    """Load every model's data set, carve the validation split and save it; write
    results/<profile>/data.json."""
    summaries = {}
    for exp in profile.experiments:
        data = load_dataset(exp.data)
        if data.num_classes != exp.num_classes:
            raise ValueError(f"models.{exp.model}.num_classes = {exp.num_classes} but data set "
                             f"{data.name!r} has {data.num_classes} classes; fix params.yaml")
        shape = tuple(data.train.images.shape[1:])
        if exp.model == "lenet3" and shape != INPUT_SHAPES["lenet3"]:
            raise ValueError(f"lenet3 needs 1x28x28 images but {data.name!r} has {shape}")
        save_prepared(data, paths.prepared_file(exp.model))
        summaries[exp.model] = data_summary(data)
    io.write_json(paths.result("data.json"), summaries)
