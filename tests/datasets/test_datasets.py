"""The data-set registry (tsblib/datasets/): each data set is its module, and a new one is
picked up by the schema, the loader and the prepare step without touching them."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch

from tsblib.config import ConfigError, DataConfig
from tsblib.data import load_dataset
from tsblib.datasets import (DatasetSpec, Split, Unchecked, all_datasets, get_dataset,
                             register_dataset, split_checksum)
from tsblib.datasets import base as registry
from tsblib.profiles import profile_from_dict

SHARED_DATASETS = Path(os.environ.get("TSB_SHARED_DATASETS")
                       or Path(__file__).resolve().parents[3] / "shared" / "datasets")


def test_the_four_data_sets_are_registered_with_what_the_pipeline_needs():
    specs = all_datasets()
    assert set(specs) == {"mnist-embedded", "mnist", "cifar10", "image-folder"}
    assert {n for n, s in specs.items() if s.augmentable} == {"cifar10", "image-folder"}
    assert {n for n, s in specs.items() if s.resolve is not None} == {"mnist", "cifar10"}
    assert specs["cifar10"].shape == (3, 32, 32) and specs["mnist"].shape == (1, 28, 28)
    for spec in specs.values():
        assert spec.description and callable(spec.load) and callable(spec.check)


def test_an_unknown_data_set_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"data.dataset = 'imagenet' .*'cifar10'"):
        get_dataset("imagenet")
    with pytest.raises(ConfigError, match=r"profiles.t.data.dataset = 'imagenet'"):
        profile_from_dict("t", {"models": {"lenet3": {}}, "data": {"dataset": "imagenet"}})


def _toy_load(cfg: DataConfig):
    gen = torch.Generator().manual_seed(cfg.split_seed)
    images = torch.randint(0, 256, (60, 1, 28, 28), generator=gen, dtype=torch.uint8)
    labels = torch.arange(60) % 3
    return (Split(images[:40], labels[:40]), Split(images[40:], labels[40:]), 3,
            "toy: 60 random images")


def test_a_new_data_set_is_its_module(monkeypatch):
    """A toy data set registered like the four: params.yaml selects it, the schema accepts it
    (and the augmentation only if it says so), and load_dataset reads, splits and checks it."""
    monkeypatch.setitem(registry.DATASETS, "toy", DatasetSpec(
        name="toy", description="test only", load=_toy_load, check=lambda cfg: None,
        shape=(1, 28, 28), classes=3))
    raw = {"models": {"lenet3": {"num_classes": 3}}, "data": {"dataset": "toy"},
           "methods": {"methods": ["nit"]}}
    exp = profile_from_dict("t", raw).experiment("lenet3")
    data = load_dataset(exp.data)
    assert data.name == "toy" and data.num_classes == 3
    assert len(data.train) + len(data.val) == 40 and len(data.test) == 20
    with pytest.raises(ConfigError, match="train.augment = True .*natural-image"):
        profile_from_dict("t", {**raw, "train": {"augment": True}})


def test_a_data_set_without_a_checksum_is_refused_when_registered():
    spec = DatasetSpec(name="toy", description="test only", load=_toy_load,
                       check=lambda cfg: None)
    with pytest.raises(ValueError, match=r"'toy' has no checksum: set checksum= .*Unchecked"):
        register_dataset(spec)
    with pytest.raises(ValueError, match="'toy': checksum 'abc' is not a sha256"):
        register_dataset(dataclasses.replace(spec, checksum="abc"))
    with pytest.raises(ValueError, match="'toy' has no checksum"):
        register_dataset(dataclasses.replace(spec, checksum=Unchecked("")))
    assert "toy" not in registry.DATASETS
    for name, registered in registry.all_datasets().items():  # every shipped one states it
        assert registered.checksum is not None, name


def test_a_copy_that_is_not_the_release_is_refused(monkeypatch):
    toy = DatasetSpec(name="toy", description="test only", load=_toy_load,
                      check=lambda cfg: None, shape=(1, 28, 28), classes=3)
    train, test, _, _ = _toy_load(DataConfig(dataset="toy"))
    monkeypatch.setitem(registry.DATASETS, "toy", dataclasses.replace(
        toy, checksum=split_checksum(train, test)))
    assert load_dataset(DataConfig(dataset="toy")).num_classes == 3  # the release itself
    monkeypatch.setitem(registry.DATASETS, "toy", dataclasses.replace(toy, checksum="0" * 64))
    with pytest.raises(ValueError, match="differs from the release .*download it again"):
        load_dataset(DataConfig(dataset="toy"))
    monkeypatch.setitem(registry.DATASETS, "toy", dataclasses.replace(toy, shape=(3, 32, 32)))
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\).*not \(3, 32, 32\)"):
        load_dataset(DataConfig(dataset="toy"))
    monkeypatch.setitem(registry.DATASETS, "toy", dataclasses.replace(toy, classes=10))
    with pytest.raises(ValueError, match="3 classes, not 10"):
        load_dataset(DataConfig(dataset="toy"))


@pytest.mark.skipif(not (SHARED_DATASETS / "MNIST" / "raw").is_dir(),
                    reason=f"no MNIST copy at {SHARED_DATASETS}")
def test_mnist_is_the_release_its_checksum_names():
    spec = get_dataset("mnist")
    train, test, classes, _ = spec.load(DataConfig(dataset="mnist", root=str(SHARED_DATASETS)))
    assert split_checksum(train, test) == spec.checksum and classes == 10
