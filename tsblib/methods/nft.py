"""Negative feedback training (Qin et al.), both variants: OVF (oriented variational forward) and
IRS (intermediate representation snapshots); the authors' beta per model and data set. Its code:
`tsblib.execution.nft`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tsblib.config import ConfigError, ExperimentConfig
from tsblib.methods.registry import Implementation, MethodSpec, register

IMPL = Implementation("nft")


OVF_OFFSETS: tuple[float, ...] = (0.15, 0.10, 0.05)
"""Sigma offsets of the OVF extra forwards out_0, out_1, out_2, in that order (authors' code)."""


AUTHORS_BETA: dict[tuple[str, str, str], float] = {
    ("ovf", "vgg8", "mnist"): 1e-3,
    ("ovf", "vgg8", "cifar10"): 1e-3,
    ("ovf", "resnet18", "mnist"): 1e-4,
    ("ovf", "resnet18", "cifar10"): 1e-1,
    ("irs", "vgg8", "mnist"): 1e-2,
    ("irs", "vgg8", "cifar10"): 1e-1,
    ("irs", "resnet18", "mnist"): 1e-1,
    ("irs", "resnet18", "cifar10"): 1e-3,
}
"""(variant, model, data set) -> beta used in the authors' NFT code. LeNet-3 has none."""


_DATASET_ALIASES = {"mnist-embedded": "mnist", "cifar10-jpg": "cifar10"}


def authors_beta(variant: str, model: str, dataset: str) -> float | None:
    """The authors' beta for `variant` ('ovf' or 'irs'), `model` and `dataset`, or None when
    their code has none (LeNet-3, other data sets: choose beta on validation instead).

    'mnist-embedded' (a subset of MNIST) is looked up as 'mnist', 'cifar10-jpg' (CIFAR-10
    re-encoded as JPEG) as 'cifar10'.
    """
    if variant not in ("ovf", "irs"):
        raise ValueError(f"NFT variant = {variant!r} is unknown; expected 'ovf' or 'irs'")
    return AUTHORS_BETA.get((variant, model, _DATASET_ALIASES.get(dataset, dataset)))


@dataclass(frozen=True)
class NFTParams:
    """Parameters of an NFT variant."""

    beta: float | None = None
    """Weight of the negative feedback; null = the authors' value for the model and data set
    (`AUTHORS_BETA`). They give none for LeNet-3: state one chosen on validation (recipes.csv)."""

    variant = "ovf"

    def validate(self) -> None:
        if self.beta is not None and not self.beta >= 0:
            raise ConfigError(f"methods.nft_{self.variant}.beta = {self.beta!r} is not allowed: "
                              f"expected null (the authors' value) or a number >= 0. Fix it in "
                              f"params.yaml.")

    def authors(self, model: str, dataset: str) -> float | None:
        """The authors' beta for `model` on `dataset`, or None."""
        return authors_beta(self.variant, model, dataset)

    def resolve(self, model: str, dataset: str) -> float:
        """The beta in use: the stated one, else the authors'."""
        beta = self.beta if self.beta is not None else self.authors(model, dataset)
        if beta is None:
            raise ConfigError(f"methods.nft_{self.variant}.beta is null for {model!r} on "
                              f"{dataset!r}, and the NFT authors give no beta for it: state one, "
                              f"chosen on validation (the `recipes` stage sweeps "
                              f"selection.nft_betas into recipes.csv).")
        return beta


@dataclass(frozen=True)
class NFTIRSParams(NFTParams):
    """Parameters of NFT-IRS."""

    variant = "irs"


def _check(variant: str) -> Callable[[ExperimentConfig], None]:
    def check(exp: ExperimentConfig) -> None:
        exp.methods.of(f"nft_{variant}").resolve(exp.model, exp.data.name)

    return check


OVF_SPEC = register(MethodSpec(
    name="nft_ovf", label="NFT-OVF (negative feedback)", color="#8c564b", marker="P", order=5,
    description="negative feedback training, oriented variational forward (Qin et al.)",
    trained_from="nft_ovf", objective=IMPL.objective_ovf, evaluate=IMPL.evaluate_ovf,
    params=NFTParams, check=_check("ovf"), claims_baseline=True,
    forwards_per_step=lambda exp: 1 + len(OVF_OFFSETS)))


IRS_SPEC = register(MethodSpec(
    name="nft_irs", label="NFT-IRS (negative feedback)", color="#bc80bd", marker="p", order=6,
    description="negative feedback training, intermediate representation snapshots (Qin et al.)",
    trained_from="nft_irs", objective=IMPL.objective_irs, evaluate=IMPL.evaluate_irs,
    params=NFTIRSParams, check=_check("irs"), claims_baseline=True))
