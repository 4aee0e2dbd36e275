"""What every data set shares: a split of uint8 images, the error for absent data, the seeded
stratified splits, and the data-set registry (`DatasetSpec`, one module per data set in this
package registers its own)."""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from tsblib.config import ConfigError, DataConfig
from tsblib.package_scan import PackageScan


class DataNotFoundError(FileNotFoundError):
    """A data set or prepared-data file is absent; the message says where we looked and the fix."""


@dataclass
class Split:
    """One split of a data set: uint8 images [N, C, H, W] and int64 labels [N]."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"Split.images must be a uint8 tensor [N, C, H, W], got "
                             f"{self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.dim() != 1:
            raise ValueError(f"Split.labels must be an int64 tensor [N], got "
                             f"{self.labels.dtype} {tuple(self.labels.shape)}")
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(f"Split has {self.images.shape[0]} images but "
                             f"{self.labels.shape[0]} labels")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: torch.Tensor) -> Split:
        """The images and labels at `indices` (a CPU index tensor), in that order."""
        return Split(images=self.images[indices].contiguous(),
                     labels=self.labels[indices].contiguous())


Loaded = tuple[Split, Split, int, str]
"""What a data set's loader returns: train split, test split, number of classes, provenance."""


# ----------------------------------------------------------------------------- splits

def derived_seed(seed: int, salt: str) -> int:
    """A seed for one purpose (`salt`) derived from `seed`, identical on every platform."""
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def seeded_generator(seed: int, salt: str) -> torch.Generator:
    """A CPU generator seeded from (`seed`, `salt`)."""
    return torch.Generator(device="cpu").manual_seed(derived_seed(seed, salt))


def limited_indices(n: int, limit: int, seed: int, salt: str) -> torch.Tensor:
    """The first `limit` of a seeded shuffle of range(n), back in original order."""
    perm = torch.randperm(n, generator=seeded_generator(seed, f"limit-{salt}"))
    return perm[:limit].sort().values


def stratified_subset(labels: torch.Tensor, n: int, seed: int, salt: str) -> torch.Tensor:
    """Sorted indices of exactly `n` of `labels`, each class's share of them kept: class c gets
    floor(n * count_c / total) plus one of the leftovers by largest remainder (ties to the lower
    class), drawn by a generator seeded from (seed, salt, class)."""
    classes, counts = torch.unique(labels, return_counts=True)
    exact = [n * int(c) / len(labels) for c in counts]
    quota = [math.floor(q) for q in exact]
    for i in sorted(range(len(quota)), key=lambda i: (quota[i] - exact[i], i))[:n - sum(quota)]:
        quota[i] += 1
    parts = []
    for cls, take in zip(classes.tolist(), quota):
        members = (labels == cls).nonzero().flatten()
        order = torch.randperm(len(members), generator=seeded_generator(seed, f"{salt}-{cls}"))
        parts.append(members[order[:take]])
    return torch.cat(parts).sort().values


def stratified_split(labels: torch.Tensor, test_fraction: float, seed: int,
                     salt: str = "class") -> tuple[torch.Tensor, torch.Tensor]:
    """Train and test indices with each class's test share `test_fraction` (rounded half up).

    Each class is shuffled by its own generator seeded from (seed, class), so a class's
    split does not depend on the other classes; indices come back sorted.
    """
    train_parts, test_parts = [], []
    for cls in torch.unique(labels).tolist():
        members = (labels == cls).nonzero().flatten()
        shuffled = members[torch.randperm(len(members), generator=seeded_generator(seed, f"{salt}-{cls}"))]
        n_test = int(math.floor(len(members) * test_fraction + 0.5))
        test_parts.append(shuffled[:n_test])
        train_parts.append(shuffled[n_test:])
    return torch.cat(train_parts).sort().values, torch.cat(test_parts).sort().values


# ----------------------------------------------------------------------------- registry

@dataclass(frozen=True)
class DatasetSpec:
    """Everything the pipeline needs to know of one data set."""

    name: str
    """`data.dataset` in params.yaml."""
    description: str
    """One line: what it is and where it comes from."""
    load: Callable[[DataConfig], Loaded]
    """Reads it: (train split, test split, classes, provenance); raises DataNotFoundError with
    the fix when it is absent."""
    check: Callable[[DataConfig], None]
    """Raises DataNotFoundError (where we looked, how to provide it) when it is visibly absent,
    without loading it; run before any stage touches a result."""
    resolve: Callable[[DataConfig], DataConfig] | None = None
    """The data set actually read, when it can come from elsewhere (MNIST or CIFAR-10 from an
    image folder when torchvision's files are absent); None = itself."""
    augmentable: bool = False
    """The natural-image augmentation (random crop with padding, horizontal flip) applies to
    it (`train.augment`); not for digits (a flipped digit is another symbol)."""
    shape: tuple[int, int, int] | None = None
    """Image shape [C, H, W] every image must have; None = whatever the files hold."""
    classes: int | None = None
    """Number of classes; None = whatever the files hold."""
    checksum: "str | Unchecked | None" = None
    """sha256 of its train and test splits as loaded (`split_checksum`, before any limit) where
    the data set is one fixed release with a fixed split (MNIST); a copy that differs is
    refused. `Unchecked(reason)` where it cannot have one (a split drawn by seed, a folder of
    the user's images, a release whose official files this artifact was not built on): the
    prepared data's checksum is still recorded in data.json. Required: None is refused when the
    registry loads."""


@dataclass(frozen=True)
class Unchecked:
    """A data set without a fixed checksum, and why (`DatasetSpec.checksum`)."""

    reason: str
    """Why no checksum can be stated (one line)."""


DATASETS: dict[str, DatasetSpec] = {}
"""Registered data sets by name (filled when the registry is first read)."""

def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add `spec` to the registry; a second data set with the same name is an error."""
    if spec.name in DATASETS and DATASETS[spec.name] is not spec:
        raise ValueError(f"data set {spec.name!r} is registered twice")
    if spec.checksum is None or (isinstance(spec.checksum, Unchecked) and not spec.checksum.reason):
        raise ValueError(f"data set {spec.name!r} has no checksum: set checksum= the sha256 of "
                         f"its splits as loaded (tsblib.datasets.split_checksum), or "
                         f"checksum=Unchecked('why it cannot have one')")
    if isinstance(spec.checksum, str) and (len(spec.checksum) != 64 or spec.checksum.strip(
            "0123456789abcdef")):
        raise ValueError(f"data set {spec.name!r}: checksum {spec.checksum!r} is not a sha256 "
                         f"(64 lower-case hex digits)")
    DATASETS[spec.name] = spec
    return spec


_load_all = PackageScan(__package__, Path(__file__).parent)
"""Imports every module of this package (each registers itself) on first use."""


def all_datasets() -> dict[str, DatasetSpec]:
    """Every registered data set by name (imports the data-set modules on first use)."""
    _load_all()
    return DATASETS


def get_dataset(name: str) -> DatasetSpec:
    """The spec of data set `name`; an unknown name lists the known ones."""
    _load_all()
    if name not in DATASETS:
        raise ConfigError(f"data.dataset = {name!r} is not allowed: expected one of "
                          f"{sorted(DATASETS)}. Fix it in params.yaml.")
    return DATASETS[name]


def split_checksum(*splits: Split) -> str:
    """sha256 over the raw bytes of each split's images and labels, in order."""
    digest = hashlib.sha256()
    for tensor in [t for split in splits for t in (split.images, split.labels)]:
        digest.update(tensor.detach().cpu().contiguous().numpy())
    return digest.hexdigest()
