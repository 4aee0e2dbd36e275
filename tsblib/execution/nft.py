"""Negative feedback training (NFT): the OVF and IRS training objectives.

Each objective adds negative feedback to the noisy forward: the logits are corrected by a
weighted sum of extra outputs (OVF: forwards under larger weight errors; IRS: auxiliary heads on
intermediate features), and the loss is cross-entropy of the corrected, temperature-4 logits.

Source: Qin et al., "Negative Feedback Training: A Novel Concept to Improve Robustness of NVCIM
DNN Accelerators" (the TSB authors' own public NFT code), followed here for the feedback formula
nf = out - beta * sum_i 10^(-i) * out_i, the loss CE(nf / 4, y), the OVF sigma offsets, the
VGG-8 tap points and head sizes, and the per model/data set beta (`AUTHORS_BETA`).

Our choices (not in the authors' code): the LeNet-3 taps (after `bn1`, s = 4; after `bn2`, s = 2),
the ResNet-18 head pool sizes (4, 4, 2, 2), and a ReLU in front of every head (idempotent on the
taps that already follow a ReLU; it supplies the ReLU that is functional, outside the tapped
module, at ResNet-18 `bn1` and LeNet-3 `bn1`/`bn2`; at LeNet-3 it precedes the max-pool, with
which it commutes).
"""
from __future__ import annotations


import torch
from torch import nn
from torch.func import functional_call

from tsblib.config import DeviceConfig
from tsblib.execution.context import TrainContext, programmed_once
from tsblib.models import INPUT_SHAPES
from tsblib.variation import training_noise
from tsblib.methods.nft import OVF_OFFSETS

CE = nn.functional.cross_entropy

TEMPERATURE = 4.0
"""The feedback logits are divided by this before the cross-entropy (authors' code)."""


IRS_TAPS: dict[str, tuple[tuple[str, int], ...]] = {
    # VGG-8 (authors): after conv1's ReLU, after the first and after the second max-pool.
    "vgg8": (("features.2", 6), ("features.6", 4), ("features.13", 3)),
    # ResNet-18 (authors' tap points): after the stem (bn1; its ReLU is functional in
    # forward, so the head applies it), layer1, layer2, layer3. Pool sizes are OUR choice.
    "resnet18": (("bn1", 4), ("layer1", 4), ("layer2", 2), ("layer3", 2)),
    # LeNet-3: no taps in the authors' code; OUR choice (the head applies the ReLU).
    "lenet3": (("bn1", 4), ("bn2", 2)),
}
"""Model name -> ((module path, adaptive pool size s), ...), shallow to deep."""

HEAD_HIDDEN = 512
"""Width of the hidden layer of each IRS head (authors' code)."""


def negative_feedback(out: torch.Tensor, extras: list[torch.Tensor], beta: float) -> torch.Tensor:
    """nf = out - beta * sum_i 10^(-i) * extras[i]."""
    feedback = sum(10.0 ** (-i) * e for i, e in enumerate(extras))
    return out - beta * feedback


def nft_loss(out: torch.Tensor, extras: list[torch.Tensor], beta: float,
             y: torch.Tensor) -> torch.Tensor:
    """CE(nf / 4, y) with nf the negative-feedback logits."""
    return CE(negative_feedback(out, extras, beta) / TEMPERATURE, y)


class NFTOVFObjective:
    """OVF: the noisy forward at sigma plus forwards under fresh noise at sigma + 0.15, + 0.10,
    + 0.05 (drawn in that order, after the main forward's noise) as negative feedback.
    Gradients flow through all four forwards."""

    extra: nn.Module | None = None

    def __init__(self, names: list[str], sigma: float, device: DeviceConfig, beta: float) -> None:
        self.names, self.sigma, self.device, self.beta = list(names), sigma, device, beta
        self.extra = None

    def __call__(self, model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noisy = training_noise(params, self.names, self.sigma, self.device, generator)
        out = functional_call(model, {**params, **noisy}, (x,))
        extras = []
        for offset in OVF_OFFSETS:
            noisy = training_noise(params, self.names, self.sigma + offset, self.device, generator)
            extras.append(functional_call(model, {**params, **noisy}, (x,)))
        return nft_loss(out, extras, self.beta, y)

    def __repr__(self) -> str:
        return f"NFTOVFObjective(sigma={self.sigma}, beta={self.beta}, offsets={OVF_OFFSETS})"


def nft_ovf_objective(names: list[str], sigma: float, device: DeviceConfig,
                      beta: float) -> NFTOVFObjective:
    """NFT with oriented variational forward (OVF); `.extra` is None."""
    return NFTOVFObjective(names, sigma, device, beta)


def _head(channels: int, size: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(size), nn.Flatten(),
                         nn.Linear(channels * size * size, HEAD_HIDDEN), nn.ReLU(),
                         nn.Linear(HEAD_HIDDEN, num_classes))


class _Capture:
    """Forward hooks on the tap modules, registered only inside a `with` block."""

    def __init__(self, model: nn.Module, paths: list[str]) -> None:
        self.model, self.paths = model, paths
        self.outputs: dict[int, torch.Tensor] = {}
        self._handles: list = []

    def __enter__(self) -> "_Capture":
        for i, path in enumerate(self.paths):
            module = self.model.get_submodule(path)
            self._handles.append(module.register_forward_hook(self._hook(i)))
        return self

    def _hook(self, i: int):
        def hook(module, inputs, output):
            self.outputs[i] = output
        return hook

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def features(self) -> list[torch.Tensor]:
        missing = [self.paths[i] for i in range(len(self.paths)) if i not in self.outputs]
        if missing:
            raise RuntimeError(f"IRS taps {missing} did not fire during the forward")
        return [self.outputs[i] for i in range(len(self.paths))]


class AuxHeads(nn.Module):
    """The digital IRS heads of `model_name`: one ReLU -> AdaptiveAvgPool2d(s) -> flatten ->
    Linear(C*s*s, 512) -> ReLU -> Linear(512, classes) per tap of `IRS_TAPS`, shallow to deep.

    Not a submodule of the backbone: the backbone's state_dict and mapped weights are unchanged,
    the heads are never noisy and are dropped at inference. Channel counts C come from one
    no-grad, eval-mode dummy forward (the model's training flag and BN statistics are kept).
    """

    def __init__(self, model_name: str, model: nn.Module, num_classes: int,
                 input_shape: tuple[int, int, int] | None = None) -> None:
        super().__init__()
        if model_name not in IRS_TAPS:
            raise ValueError(f"model {model_name!r} has no IRS taps; known: {sorted(IRS_TAPS)}")
        self.model_name = model_name
        self.taps = IRS_TAPS[model_name]
        self.paths = [path for path, _ in self.taps]
        shape = input_shape or _input_shape(model_name, model)
        ref = next(model.parameters())
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), _Capture(model, self.paths) as cap:
                model(torch.zeros(1, *shape, device=ref.device, dtype=ref.dtype))
            channels = [f.shape[1] for f in cap.features()]
        finally:
            model.train(was_training)
        self.heads = nn.ModuleList(_head(c, s, num_classes)
                                   for c, (_, s) in zip(channels, self.taps))

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        """Head outputs (logits), one per tapped feature, shallow to deep."""
        return [head(f) for head, f in zip(self.heads, features)]


def _input_shape(model_name: str, model: nn.Module) -> tuple[int, int, int]:
    """INPUT_SHAPES[model_name], with the channels of the model's first convolution."""
    c, h, w = INPUT_SHAPES[model_name]
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return (first.in_channels if first is not None else c, h, w)


class NFTIRSObjective:
    """IRS: one noisy forward at sigma; the auxiliary heads' logits on the noisy intermediate
    features are the feedback outputs out_0..out_{k-1} (shallow to deep), the backbone's logits
    are `out`. `.extra` holds the heads (to be optimised with the model, on its device)."""

    def __init__(self, model: nn.Module, model_name: str, names: list[str], sigma: float,
                 device: DeviceConfig, beta: float, num_classes: int, seed: int,
                 input_shape: tuple[int, int, int] | None = None) -> None:
        self.names, self.sigma, self.device, self.beta = list(names), sigma, device, beta
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.extra: AuxHeads = AuxHeads(model_name, model, num_classes, input_shape)

    def __call__(self, model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        noisy = training_noise(params, self.names, self.sigma, self.device, generator)
        with _Capture(model, self.extra.paths) as cap:
            out = functional_call(model, {**params, **noisy}, (x,))
        extras = self.extra(cap.features())
        return nft_loss(out, extras, self.beta, y)

    def __repr__(self) -> str:
        return (f"NFTIRSObjective(model={self.extra.model_name!r}, sigma={self.sigma}, "
                f"beta={self.beta}, taps={self.extra.taps})")


def nft_irs_objective(model: nn.Module, model_name: str, names: list[str], sigma: float,
                      device: DeviceConfig, beta: float, num_classes: int,
                      seed: int) -> NFTIRSObjective:
    """NFT with intermediate representation snapshot (IRS); heads initialised from `seed`."""
    return NFTIRSObjective(model, model_name, names, sigma, device, beta, num_classes, seed)


# ----------------------------------------------------------------------------- registry


def objective_ovf(ctx: TrainContext) -> NFTOVFObjective:
    beta = ctx.exp.methods.of("nft_ovf").resolve(ctx.exp.model, ctx.dataset)
    return nft_ovf_objective(ctx.names, ctx.exp.train.sigma_train, ctx.device_model, beta)


def objective_irs(ctx: TrainContext) -> NFTIRSObjective:
    exp = ctx.exp
    beta = exp.methods.of("nft_irs").resolve(exp.model, ctx.dataset)
    return nft_irs_objective(ctx.model, exp.model, ctx.names, exp.train.sigma_train,
                             ctx.device_model, beta, exp.num_classes, exp.train.seed)


evaluate_ovf = programmed_once("nft_ovf")
"""The NFT-OVF model programmed once onto every chip of the sweep."""
evaluate_irs = programmed_once("nft_irs")
"""The NFT-IRS model programmed once onto every chip of the sweep."""
