"""What every data set goes through once its registry module has read it (`tsblib.datasets`):
limits, the validation split, channel statistics and the checks against the data set's shape,
classes and checksum; then the `prepare` stage's file, and `Batches`, which keeps a split on the
device.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tsblib.config import DataConfig
from tsblib.datasets.base import (DataNotFoundError, DatasetSpec, Split, get_dataset,
                                  limited_indices, split_checksum, stratified_split,
                                  stratified_subset)
from tsblib.io import save_checkpoint

__all__ = ["Batches", "DataNotFoundError", "PreparedData", "Split", "TestSplitLocked",
           "check_available", "data_summary", "load_dataset", "load_prepared", "resolve_source",
           "save_prepared", "stratified_split", "stratified_subset"]

logger = logging.getLogger(__name__)

PREPARED_FORMAT = "tsblib.prepared-data/2"
"""Format tag stored in every prepared-data file; a different tag is rejected on load."""

_PREPARE_COMMAND = "`python -m tsblib prepare` (or `dvc repro prepare`)"


class TestSplitLocked(RuntimeError):
    """A stage other than the final evaluation tried to read the test split."""


class _LockedSplit:
    """Stands in for the test split outside the evaluate stage: any use raises."""

    def __getattr__(self, name: str) -> Any:
        raise TestSplitLocked("the test split is read only by the final evaluation (the "
                              "'evaluate' stage); make choices on the validation split "
                              "(PreparedData.val) instead")

    def __len__(self) -> int:
        self.__getattr__("__len__")
        return 0


@dataclass
class PreparedData:
    """A data set ready for training and evaluation, with its provenance."""

    train: Split
    """Training images (the validation split carved out)."""
    val: Split
    """Validation split: seeded, stratified share `data.val_fraction` of the training data;
    every choice (recipe, deployed epoch, TSB and NFT settings) is made on it."""
    test: Split
    """Test split; `load_prepared` locks it unless the caller is the final evaluation."""
    name: str
    """Results label: 'mnist-embedded', 'mnist', 'cifar10' or the image folder's name."""
    num_classes: int
    mean: tuple[float, ...]
    """Per-channel mean of the training images in [0, 1] scale."""
    std: tuple[float, ...]
    """Per-channel (population) standard deviation of the training images in [0, 1] scale."""
    source: str
    """Human-readable provenance: where the images came from and how they were split."""
    checksum: str
    """sha256 of the raw bytes of train images, train labels, test images, test labels."""


# ----------------------------------------------------------------------------- availability

def resolve_source(cfg: DataConfig) -> DataConfig:
    """The data set that will actually be read: `cfg` itself, or where its registry entry reads
    it from instead (e.g. 'mnist'/'cifar10' from `cfg.image_folder` when torchvision's files are
    absent under `root` and download is off)."""
    spec = get_dataset(cfg.dataset)
    return spec.resolve(cfg) if spec.resolve is not None else cfg


def check_available(cfg: DataConfig) -> None:
    """Raise `DataNotFoundError` (naming where we looked and how to provide the data) when the
    data set `cfg` names is visibly absent, without loading it: run before any stage touches a
    result, so switching to a profile whose data are missing changes nothing."""
    get_dataset(cfg.dataset).check(cfg)


# ----------------------------------------------------------------------------- loading

def _check_release(spec: DatasetSpec, cfg: DataConfig, train: Split, test: Split,
                   num_classes: int) -> None:
    """The loaded data set has its registered shape, classes and (for a fixed release) checksum."""
    where = f"data set {spec.name!r} read from {Path(cfg.root).absolute()}"
    shape = tuple(train.images.shape[1:])
    if spec.shape is not None and (shape != spec.shape or tuple(test.images.shape[1:]) != shape):
        raise ValueError(f"{where} has images of shape {shape} (test "
                         f"{tuple(test.images.shape[1:])}), not {spec.shape}: the files are not "
                         f"{spec.name}; point data.root at a copy of it")
    if spec.classes is not None and num_classes != spec.classes:
        raise ValueError(f"{where} has {num_classes} classes, not {spec.classes}")
    if isinstance(spec.checksum, str):
        found = split_checksum(train, test)
        if found != spec.checksum:
            raise ValueError(f"{where} differs from the release this artifact was built on "
                             f"(sha256 of its splits {found[:16]}..., expected "
                             f"{spec.checksum[:16]}...): a corrupt or modified copy; download it "
                             f"again (data.download: true) or replace the files")

def load_dataset(cfg: DataConfig) -> PreparedData:
    """Load the data set `cfg` names, split it, apply the limits and compute its statistics.

    Raises `DataNotFoundError` when the data set is absent (the message says how to
    provide it) and `ConfigError` for an invalid `cfg`.
    """
    cfg.validate()
    cfg = resolve_source(cfg)
    spec = get_dataset(cfg.dataset)
    train, test, num_classes, source = spec.load(cfg)
    _check_release(spec, cfg, train, test, num_classes)

    notes = []
    if cfg.train_limit and cfg.train_limit < len(train):
        train = train.subset(limited_indices(len(train), cfg.train_limit, cfg.split_seed, "train"))
        notes.append(f"train limited to {cfg.train_limit}")
    if cfg.test_limit and cfg.test_limit < len(test):
        keep = stratified_subset(test.labels, cfg.test_limit, cfg.split_seed, "limit-test")
        test = test.subset(keep)
        notes.append(f"test: a stratified subset of {len(keep):,} images")
    for limit, split, what in ((cfg.train_limit, train, "train"), (cfg.test_limit, test, "test")):
        if limit > len(split):
            logger.warning("data.%s_limit = %d exceeds the %d %s images; using all of them",
                           what, limit, len(split), what)
    if notes:
        source += f"; {' and '.join(notes)} (seed {cfg.split_seed})"
    if len(train) == 0 or len(test) == 0:
        raise ValueError(f"data set {cfg.name!r} has {len(train)} training and {len(test)} test "
                         f"images; both splits need at least one")

    train_idx, val_idx = stratified_split(train.labels, cfg.val_fraction, cfg.split_seed, "val")
    if len(val_idx) == 0 or len(train_idx) == 0:
        raise ValueError(f"data.val_fraction = {cfg.val_fraction} leaves {len(train_idx)} training "
                         f"and {len(val_idx)} validation images; both need at least one")
    train, val = train.subset(train_idx), train.subset(val_idx)
    source += (f"; validation split: {len(val):,} of the training images (stratified, "
               f"{cfg.val_fraction:g}, seed {cfg.split_seed})")
    mean, std = _channel_stats(train.images)
    data = PreparedData(train=train, val=val, test=test, name=cfg.name, num_classes=num_classes,
                        mean=mean, std=std, source=source, checksum=split_checksum(train, val, test))
    logger.info("loaded %s: %d train / %d val / %d test images of shape %s, %d classes (%s)", data.name,
                len(train), len(val), len(test), tuple(train.images.shape[1:]), num_classes, source)
    return data


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std in [0, 1] scale, from exact integer sums."""
    channels = images.shape[1]
    total = [0] * channels
    total_sq = [0] * channels
    for start in range(0, images.shape[0], 4096):
        chunk = images[start:start + 4096].to(torch.int64)
        sums = chunk.sum(dim=(0, 2, 3)).tolist()
        sums_sq = (chunk * chunk).sum(dim=(0, 2, 3)).tolist()
        total = [a + b for a, b in zip(total, sums)]
        total_sq = [a + b for a, b in zip(total_sq, sums_sq)]
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = tuple(s / count / 255.0 for s in total)
    # Var = (n*sum(x^2) - sum(x)^2) / n^2, exact in Python integers before the division.
    std = tuple(math.sqrt(max(count * sq - s * s, 0)) / count / 255.0
                for s, sq in zip(total, total_sq))
    return mean, std


# ----------------------------------------------------------------------------- prepared file

def save_prepared(data: PreparedData, path: Path) -> None:
    """Write `data` to `path` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": PREPARED_FORMAT,
        "train_images": data.train.images.cpu().contiguous(),
        "train_labels": data.train.labels.cpu().contiguous(),
        "val_images": data.val.images.cpu().contiguous(),
        "val_labels": data.val.labels.cpu().contiguous(),
        "test_images": data.test.images.cpu().contiguous(),
        "test_labels": data.test.labels.cpu().contiguous(),
        "name": data.name,
        "num_classes": int(data.num_classes),
        "mean": [float(v) for v in data.mean],
        "std": [float(v) for v in data.std],
        "source": data.source,
        "checksum": data.checksum,
    }
    save_checkpoint(path, payload)
    logger.info("saved prepared data %s to %s", data.name, path)


def load_prepared(path: Path, *, with_test: bool = False) -> PreparedData:
    """Read a file written by `save_prepared`, checking its format and checksum.

    The test split is locked (any use raises `TestSplitLocked`) unless `with_test`, which only
    the final evaluation passes.

    Raises `DataNotFoundError` when the file is absent and `ValueError` when it is
    unreadable or inconsistent (delete it and rerun the prepare stage).
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"prepared data file {path} not found; run the prepare stage "
                                f"first: {_PREPARE_COMMAND}.")
    broken = f"delete it and rerun the prepare stage: {_PREPARE_COMMAND}"
    try:
        payload: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged zip/pickle
        raise ValueError(f"prepared data file {path} is corrupt or unreadable ({exc}); "
                         f"{broken}.") from exc
    if not isinstance(payload, dict) or payload.get("format") != PREPARED_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"prepared data file {path} has format {found!r}, expected "
                         f"{PREPARED_FORMAT!r}; {broken}.")
    try:
        data = PreparedData(
            train=Split(images=payload["train_images"], labels=payload["train_labels"]),
            val=Split(images=payload["val_images"], labels=payload["val_labels"]),
            test=Split(images=payload["test_images"], labels=payload["test_labels"]),
            name=str(payload["name"]), num_classes=int(payload["num_classes"]),
            mean=tuple(float(v) for v in payload["mean"]),
            std=tuple(float(v) for v in payload["std"]),
            source=str(payload["source"]), checksum=str(payload["checksum"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"prepared data file {path} is incomplete or inconsistent ({exc}); "
                         f"{broken}.") from exc
    actual = split_checksum(data.train, data.val, data.test)
    if actual != data.checksum:
        raise ValueError(f"prepared data file {path} fails its checksum (stored {data.checksum}, "
                         f"computed {actual}); {broken}.")
    if not with_test:
        data.test = _LockedSplit()  # type: ignore[assignment]
    return data


def data_summary(data: PreparedData) -> dict[str, Any]:
    """A JSON-serialisable description of `data` for provenance files."""
    def split_summary(split: Split) -> dict[str, Any]:
        return {"count": len(split),
                "shape": list(split.images.shape[1:]),
                "class_counts": torch.bincount(split.labels.cpu(),
                                               minlength=data.num_classes).tolist()}

    return {"name": data.name, "source": data.source, "checksum": data.checksum,
            "num_classes": data.num_classes, "mean": list(data.mean), "std": list(data.std),
            "train": split_summary(data.train), "val": split_summary(data.val),
            "test": split_summary(data.test)}


# ----------------------------------------------------------------------------- batches

class Batches:
    """Mini-batches (x, y) of a split, normalised float32 on `device`.

    The uint8 split is moved to the device once; each batch is converted and
    normalised there. Shuffling and augmentation draw from the CPU `generator`,
    so the order and the crops are identical on the CPU and the GPU.
    """

    def __init__(self, split: Split, batch_size: int, *, mean: tuple[float, ...],
                 std: tuple[float, ...], device: torch.device = torch.device("cpu"),
                 shuffle: bool = False, generator: torch.Generator | None = None,
                 augment: bool = False, drop_last: bool = False,
                 channels_last: bool = False) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size = {batch_size} must be >= 1")
        channels = split.images.shape[1]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean/std have {len(mean)}/{len(std)} entries but the images have "
                             f"{channels} channels")
        if any(s <= 0 for s in std):
            raise ValueError(f"std = {tuple(std)} must be > 0 in every channel")
        if (shuffle or augment) and generator is None:
            raise ValueError("shuffle and augment need an explicit seeded torch.Generator "
                             "(generator=torch.Generator().manual_seed(seed))")
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(f"generator must be a CPU generator (got one on {generator.device}); "
                             f"the order must not depend on the device")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.generator = generator
        self.augment = augment
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.images = split.images.to(self.device)
        self.labels = split.labels.to(self.device)
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)

    @property
    def num_samples(self) -> int:
        """Number of images in the split (a partial last batch included)."""
        return int(self.labels.shape[0])

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = None
        if self.shuffle:
            order = torch.randperm(self.num_samples, generator=self.generator).to(self.device)
        for k in range(len(self)):
            start = k * self.batch_size
            stop = min(start + self.batch_size, self.num_samples)
            if order is None:
                images, labels = self.images[start:stop], self.labels[start:stop]
            else:
                index = order[start:stop]
                images, labels = self.images[index], self.labels[index]
            if self.augment:
                images = self._crop_and_flip(images)
            x = images.to(torch.float32).div_(255.0).sub_(self._mean).div_(self._std)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, labels

    def _crop_and_flip(self, images: torch.Tensor, padding: int = 4) -> torch.Tensor:
        """Random crop from a zero-padded copy and random horizontal flip, as one gather."""
        n, channels, height, width = images.shape
        offsets_y = torch.randint(0, 2 * padding + 1, (n,), generator=self.generator)
        offsets_x = torch.randint(0, 2 * padding + 1, (n,), generator=self.generator)
        flips = torch.rand(n, generator=self.generator) < 0.5
        offsets_y, offsets_x, flips = (t.to(self.device) for t in (offsets_y, offsets_x, flips))
        padded = torch.nn.functional.pad(images, (padding, padding, padding, padding))
        rows = offsets_y[:, None] + torch.arange(height, device=self.device)
        steps = torch.arange(width, device=self.device)
        cols = offsets_x[:, None] + torch.where(flips[:, None], width - 1 - steps, steps)
        batch = torch.arange(n, device=self.device)[:, None, None, None]
        chans = torch.arange(channels, device=self.device)[None, :, None, None]
        return padded[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]
