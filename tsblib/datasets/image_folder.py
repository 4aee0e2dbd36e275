"""`image-folder`: any labelled images on disk, as train/<class>/<image> and
test/<class>/<image> under `data.root` (any format PIL reads, all images the same size); the
class names are the folder names, in sorted order. The natural-image augmentation applies."""
from __future__ import annotations

import concurrent.futures
import logging
import os
from pathlib import Path

import numpy as np
import torch

from tsblib.config import DataConfig
from tsblib.datasets.base import (DataNotFoundError, DatasetSpec, Loaded, Split, Unchecked,
                                  register_dataset)

logger = logging.getLogger(__name__)

_DECODE_CHUNK = 256
"""Images decoded per thread-pool task (amortises the per-task overhead)."""


def check(cfg: DataConfig) -> None:
    """Both folders must exist."""
    root = Path(cfg.root).absolute()
    for part in ("train", "test"):
        if not (root / part).is_dir():
            raise DataNotFoundError(
                f"data.dataset = 'image-folder' but {root / part} is not a folder. To "
                f"provide it: point data.root at a folder holding train/<class>/<image> and "
                f"test/<class>/<image>. Nothing was run and no result was changed.")


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


def load(cfg: DataConfig) -> Loaded:
    """Every image of train/<class>/ and test/<class>/ (classes in folder-name order)."""
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


SPEC = register_dataset(DatasetSpec(
    name="image-folder", description="labelled images on disk: train/<class>/ and test/<class>/",
    load=load, check=check, augmentable=True,
    checksum=Unchecked("the user's own images: nothing fixed to check them against")))
