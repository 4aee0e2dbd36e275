"""What `mnist` and `cifar10` share: torchvision's files under `data.root` (downloaded when
`data.download` is on), or, when they are absent, an image-folder copy (`data.image_folder`)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from tsblib.config import DataConfig
from tsblib.datasets.base import DataNotFoundError, Loaded, Split

LAYOUT = {
    "MNIST": "MNIST/raw/ with the four IDX files (train-images-idx3-ubyte, ...)",
    "CIFAR10": "cifar-10-batches-py/ (the extracted python version of CIFAR-10)",
}
"""What torchvision reads under data.root, by its class name."""

MARKERS = {"MNIST": ("MNIST", "raw", "train-images-idx3-ubyte"),
           "CIFAR10": ("cifar-10-batches-py", "data_batch_1")}
"""A file torchvision needs for each data set, relative to data.root (MNIST may be gzipped)."""


def present(cfg: DataConfig, kind: str) -> bool:
    """Whether torchvision's files of `kind` are under `cfg.root` (MNIST may be gzipped)."""
    marker = Path(cfg.root).absolute().joinpath(*MARKERS[kind])
    return marker.exists() or marker.with_name(marker.name + ".gz").exists()


def resolver(kind: str) -> Callable[[DataConfig], DataConfig]:
    """The data set actually read: `cfg` itself, or, when torchvision's files are absent under
    `root` (and download off), the image folder `cfg.image_folder` as an 'image-folder' data set
    (named after the folder)."""
    def resolve(cfg: DataConfig) -> DataConfig:
        if cfg.image_folder and not cfg.download and not present(cfg, kind):
            return dataclasses.replace(cfg, dataset="image-folder", root=cfg.image_folder,
                                       image_folder="")
        return cfg
    return resolve


def checker(kind: str) -> Callable[[DataConfig], None]:
    """The availability check of `kind` (with its image-folder fallback), naming the fix."""
    def check(cfg: DataConfig) -> None:
        root = Path(cfg.root).absolute()
        if cfg.download or present(cfg, kind):
            return
        if cfg.image_folder:
            folder = Path(cfg.image_folder).absolute()
            if all((folder / part).is_dir() for part in ("train", "test")):
                return
            raise DataNotFoundError(
                f"data.dataset = {cfg.dataset!r}: neither torchvision's files under {root} nor "
                f"the image folder data.image_folder = {cfg.image_folder!r} (train/<class>/ + "
                f"test/<class>/) exist. To provide it: put {LAYOUT[kind]} under data.root, or "
                f"point data.image_folder at an image-folder copy. Nothing was run and no result "
                f"was changed.")
        marker = root.joinpath(*MARKERS[kind])
        raise DataNotFoundError(
            f"data.dataset = {cfg.dataset!r} but {marker} does not exist and download is off. "
            f"To provide it: put {LAYOUT[kind]} under data.root ({root}), or set "
            f"data.download: true on a machine with network, or use dataset: image-folder "
            f"(a train/<class>/ + test/<class>/ tree) or mnist-embedded. Nothing was run and "
            f"no result was changed.")
    return check


def loader(kind: str) -> Callable[[DataConfig], Loaded]:
    """The loader of torchvision's `kind` ('MNIST', 'CIFAR10'): its official train/test split."""
    def load(cfg: DataConfig) -> Loaded:
        import torchvision  # local: keeps the registry light

        dataset_cls = getattr(torchvision.datasets, kind)
        root = Path(cfg.root).absolute()
        splits = []
        for train in (True, False):
            try:
                dataset = dataset_cls(root=str(root), train=train, download=cfg.download)
            except (RuntimeError, OSError) as exc:
                tried = ("torchvision tried to download it there and failed (no network?)"
                         if cfg.download else "download is off (data.download: false)")
                raise DataNotFoundError(
                    f"{kind} not found or unreadable under {root}; {tried}. torchvision said: "
                    f"{exc}. To provide it: set data.download: true to let torchvision download "
                    f"it, or point data.root at a folder holding {LAYOUT[kind]}, or use dataset: "
                    f"image-folder with data.root at a train/<class>/ + test/<class>/ tree of "
                    f"images, or dataset: mnist-embedded (needs no files at all).") from exc
            data = dataset.data
            images = (torch.as_tensor(data) if kind == "MNIST"
                      else torch.from_numpy(np.ascontiguousarray(data)).permute(0, 3, 1, 2))
            if images.dim() == 3:
                images = images.unsqueeze(1)
            splits.append(Split(images=images.to(torch.uint8).contiguous(),
                                labels=torch.as_tensor(dataset.targets, dtype=torch.int64)))
        official = f"{len(splits[0]):,}/{len(splits[1]):,}"
        return (splits[0], splits[1], 10,
                f"torchvision.datasets.{kind} at {cfg.root} (official {official} train/test split)")
    return load
