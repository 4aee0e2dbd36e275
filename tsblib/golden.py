"""Golden fingerprints: does a change to shared code move any result?

Each *case* runs every pipeline stage but the figures on a tiny profile of one model family
(LeNet-3 on the embedded digits; VGG-8 and ResNet-18 on a small synthetic image folder, in fp32
and on the CPU fast path) with fixed seeds and one torch thread, and hashes what the stages wrote:
every results CSV without its wall-clock columns, and the trained and fine-tuned tensors. The
hashes of the code that produced the committed results are stored in
`tests/golden_fingerprints.json`, one set per machine (CPU, ISA flags, torch: another CPU may
pick other floating-point kernels). When a refactor leaves every case's hashes and the embedded
`check-repro` unchanged, the committed paper and cifar-cpu results are still those the code
makes, and their dvc.lock entries may be refreshed with `dvc commit` instead of rerun.

    python -m tsblib golden            # compare with the fingerprints of this machine
    python -m tsblib golden --write    # record them (run it on the code of the results)
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from PIL import Image
from tqdm.auto import tqdm

from tsblib import io
from tsblib.profiles import load_profile
from tsblib.paths import ProfilePaths
from tsblib.provenance import kernel_key, machine_info
from tsblib.schema import MACHINE_KEYS, TIMING_FOLDER, WALL_CLOCK_COLUMNS

FINGERPRINTS = Path(__file__).resolve().parents[1] / "tests" / "golden_fingerprints.json"
"""The committed fingerprints (one entry per machine key)."""

UNHASHED_KEYS = frozenset(WALL_CLOCK_COLUMNS + MACHINE_KEYS) | {"fingerprint"}
"""Checkpoint keys (at any depth) that are not results: wall-clock time, the machine, and the
run fingerprint (which hashes the library code itself)."""

_BASE: dict[str, Any] = {
    "device": {"weight_bits": 8, "device_bits": 2, "convention": "device_range",
               "model": "gaussian"},
    "selection": {"epochs": 1, "recipes": [{"optimizer": "adam", "lr": 1e-3}],
                  "nft_betas": [0.01]},
    "evaluation": {"sigmas": [0.0, 0.2, 0.3], "operating_sigma": 0.3, "chips": 3, "tsb_chips": 2,
                   "chip_batch": 2, "batch_size": 50, "seed": 1000},
    "ablation": {"widths": [4], "placements": [], "sharings": [], "modes": [],
                 "sigma_reads": []},
    "robustness": {"chips": 2, "methods": ["nit", "tsb"], "scenarios": [
        {"name": "read", "device": {"model": ["gaussian", "read_noise"]}}],
        "drift_times_s": [86400], "drift_compensation": [False]},
}
_CIFAR_METHODS = ["clean", "nit", "nit_bnrecal", "swim", "full_wv", "tsb", "tsb_bnrecal",
                  "nit_block_bnrecal"]


def _family_profile(family: str, data: dict, fast: bool) -> dict:
    """The tiny profile of one case (the shape of the committed profile the family runs in)."""
    runtime = {"device": "cpu", "threads": 1, "deterministic": True, "cpu_bf16": fast}
    if family == "lenet3":  # the embedded profile's shape: every method
        methods = _CIFAR_METHODS[:5] + ["nft_ovf", "nft_irs", "correctnet"] + _CIFAR_METHODS[5:]
        return {**_BASE, "runtime": runtime, "data": data,
                "train": {"epochs": 3, "batch_size": 50, "sigma_train": 0.5, "val_chips": 5},
                "methods": {"methods": methods, "tsb_ages": [0.5], "tsb_annealed": True,
                            "swim": {"p_percent": [1.0], "default_p": 1.0,
                                     "sensitivity_batches": 1},
                            "nit_bnrecal": {"images": 100}, "nft_ovf": {"beta": 0.01},
                            "nft_irs": {"beta": 0.01}},
                "tsb": {"width": 8, "epochs": 1, "images": 100, "lr": [1e-2],
                        "select_epochs": [1], "batch_size": 50, "chip_batch": 2},
                "models": {"lenet3": {}}}
    # VGG-8 / ResNet-18: augmentation and several backbone ages; on the fast path in the
    # cifar-cpu profile's shape (secondary methods at the operating sigma only), in fp32 in the
    # paper profile's (every method at every sigma)
    evaluation = dict(_BASE["evaluation"], batch_size=12)
    if fast:
        evaluation.update(secondary_methods=["clean", "swim", "full_wv", "tsb_bnrecal",
                                             "nit_block_bnrecal"], secondary_sigmas=[0.3])
    return {**_BASE, "runtime": runtime, "data": data, "evaluation": evaluation,
            "train": {"epochs": 2, "batch_size": 8, "augment": True, "sigma_train": 0.3,
                      "val_chips": 5},
            "methods": {"methods": _CIFAR_METHODS, "tsb_ages": [0.5], "tsb_annealed": True,
                        "swim": {"p_percent": [1.0], "default_p": 1.0, "sensitivity_batches": 1},
                        "nit_bnrecal": {"images": 16}},
            "tsb": {"width": 8, "epochs": 1, "images": 16, "lr": [1e-2], "select_epochs": [1],
                    "batch_size": 8, "chip_batch": 2},
            "models": {family: {"num_classes": 2, "width": 0.125}}}


@dataclass(frozen=True)
class Case:
    """One golden case."""

    family: str
    """Model family ('lenet3', 'vgg8', 'resnet18')."""
    fast: bool
    """With the CPU fast path (`runtime.cpu_bf16`; fp32 on a CPU without bf16 units)."""

    @property
    def name(self) -> str:
        """'<family>/<fp32|fast>'."""
        return f"{self.family}/{'fast' if self.fast else 'fp32'}"


CASES: tuple[Case, ...] = (Case("lenet3", False), Case("vgg8", False), Case("vgg8", True),
                           Case("resnet18", False), Case("resnet18", True))
"""Every case: LeNet-3 as the embedded and paper profiles run it (fp32), VGG-8 and ResNet-18
in fp32 as the paper profile runs them and on the fast path as cifar-cpu does."""


def synthetic_image_folder(root: Path, per_class: int = 12) -> Path:
    """A seeded two-class image folder (train/ and test/, 32x32 RGB PNG) under `root`."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(("cat", "dog")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                img = (rng.random((32, 32, 3)) * 80 + 120 * c).astype(np.uint8)
                Image.fromarray(img).save(folder / f"{i}.png")
    return root


def machine_key() -> str:
    """What decides the floating-point kernels here (`provenance.kernel_key`)."""
    return kernel_key(machine_info())


def _tensor_digest(obj: Any, digest: "hashlib._Hash") -> None:
    if isinstance(obj, torch.Tensor):
        digest.update(str(obj.dtype).encode() + str(tuple(obj.shape)).encode())
        digest.update(obj.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
                      .tobytes())
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            if k in UNHASHED_KEYS:
                continue
            digest.update(str(k).encode())
            _tensor_digest(obj[k], digest)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _tensor_digest(v, digest)
    elif isinstance(obj, (int, float, str, bool)) or obj is None:
        digest.update(repr(obj).encode())


def _checkpoint_digest(path: Path) -> str:
    payload = torch.load(path, map_location="cpu", weights_only=False)
    digest = hashlib.sha256()
    _tensor_digest(payload, digest)
    return digest.hexdigest()


def run_case(case: Case, workdir: Path) -> dict[str, str]:
    """Run `case` in `workdir` and return {file: sha256} for its results and checkpoints."""
    from tsblib.pipeline import run_stage, stage_names

    if case.family == "lenet3":
        data = {"dataset": "mnist-embedded", "train_limit": 300, "test_limit": 100}
    else:
        data = {"dataset": "image-folder",
                "root": str(synthetic_image_folder(workdir / "pets"))}
    params = workdir / "params.yaml"
    params.write_text(yaml.safe_dump({"profile": "golden", "profiles": {
        "golden": _family_profile(case.family, data, case.fast)}}))
    profile = load_profile(params, "golden")
    paths = ProfilePaths("golden", workdir)
    threads = torch.get_num_threads()
    try:
        for stage in stage_names():
            run_stage(stage, profile, paths, progress=False)
    finally:
        torch.set_num_threads(threads)
    out: dict[str, str] = {}
    results = paths.results
    for path in sorted(results.rglob("*.csv")):
        if TIMING_FOLDER in path.relative_to(results).parts:  # wall-clock seconds only
            continue
        out[path.relative_to(results).as_posix()] = io.table_digest(path)
    checkpoints = workdir / "data" / "checkpoints"
    for path in sorted(checkpoints.rglob("*.pt")):
        out["checkpoints/" + path.relative_to(checkpoints).as_posix()] = _checkpoint_digest(path)
    return out


def fingerprints(cases: tuple[Case, ...] = CASES, progress: bool = True) -> dict[str, dict]:
    """{case name: {file: sha256}} of every case, each run in its own temporary folder."""
    out = {}
    for case in tqdm(cases, desc="golden cases", disable=not progress):
        with tempfile.TemporaryDirectory(prefix="tsb-golden-") as tmp:
            out[case.name] = run_case(case, Path(tmp))
    return out


def load(path: Path = FINGERPRINTS) -> dict[str, dict]:
    """The committed fingerprints: {machine key: {case: {file: sha256}}} ({} when absent)."""
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def record(found: dict[str, dict], path: Path = FINGERPRINTS) -> None:
    """Store `found` as this machine's fingerprints (other machines' entries are kept)."""
    stored = load(path)
    stored[machine_key()] = found
    io.write_text(path, json.dumps(stored, indent=1, sort_keys=True) + "\n")


def compare(found: dict[str, dict], expected: dict[str, dict]) -> list[str]:
    """One line per case and file whose hash differs from `expected` (empty: nothing moved)."""
    lines = []
    for case in sorted(set(found) | set(expected)):
        a, b = expected.get(case, {}), found.get(case, {})
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name):
                what = "new" if name not in a else "gone" if name not in b else "moved"
                lines.append(f"{case}: {name} {what}")
    return lines

