"""The model zoo: LeNet-3, VGG-8 and ResNet-18 (CIFAR form), built by name.

Definitions follow DESIGN section 4. Convolutions feeding a BatchNorm carry no bias. VGG-8 and
ResNet-18 take a width multiplier (1.0 = the paper's form): every channel count, and VGG-8's hidden
linear width, is scaled and rounded to a multiple of `multiple` (the TSB block width, so that the
block divides every insertion point).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn


class BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose inference is one multiply-add per element.

    Same function as torch's; written as x * scale + shift so that chip-batched evaluation
    under `torch.func.vmap` stays elementwise (about 4x faster than vmap's batch_norm rule).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.training or self.running_var is None:
            return super().forward(x)
        scale = self.weight * torch.rsqrt(self.running_var + self.eps)
        shift = self.bias - self.running_mean * scale
        return x * scale.to(x.dtype)[:, None, None] + shift.to(x.dtype)[:, None, None]


class LeNet3(nn.Module):
    """conv 1->16 5x5, BN, ReLU, max-pool 2; conv 16->32 5x5, BN, ReLU, max-pool 2; linear 512->classes.

    ReLU is applied after the pooling: max-pool and ReLU commute exactly (both are monotone), and
    the ReLU then touches a quarter of the elements.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 16, 5, bias=False)
        self.bn1 = BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 5, bias=False)
        self.bn2 = BatchNorm2d(32)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(nn.functional.max_pool2d(self.bn1(self.conv1(x)), 2))
        x = torch.relu(nn.functional.max_pool2d(self.bn2(self.conv2(x)), 2))
        return self.fc(torch.flatten(x, 1))


def scaled_channels(channels: int, width: float, multiple: int = 1) -> int:
    """`channels` x `width`, rounded to the nearest multiple of `multiple` (at least one)."""
    if width <= 0:
        raise ValueError(f"width multiplier {width} must be > 0")
    return max(multiple, int(round(channels * width / multiple)) * multiple)


class VGG8(nn.Module):
    """conv3x3 64, 128, pool, 256, 256, pool, 512, 512, pool (BN + ReLU each); linear 8192->1024->classes
    (channels and the hidden width scaled by `width`, see `scaled_channels`)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0,
                 multiple: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in (64, 128, "pool", 256, 256, "pool", 512, 512, "pool"):
            if item == "pool":
                layers.append(nn.MaxPool2d(2))
                continue
            out = scaled_channels(item, width, multiple)
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=False), BatchNorm2d(out),
                       nn.ReLU(inplace=False)]
            channels = out
        self.features = nn.Sequential(*layers)
        hidden = scaled_channels(1024, width, multiple)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(channels * 16, hidden), nn.ReLU(),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BN and a 1x1 projection shortcut when the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False),
                                          BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR ResNet-18: 3x3 stem, no max-pool, BasicBlocks [2,2,2,2] at 64/128/256/512, GAP, linear
    (channels scaled by `width`, see `scaled_channels`)."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0,
                 multiple: int = 1) -> None:
        super().__init__()
        stem = scaled_channels(64, width, multiple)
        self.conv1 = nn.Conv2d(in_channels, stem, 3, 1, 1, bias=False)
        self.bn1 = BatchNorm2d(stem)
        stages, in_planes = [], stem
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            planes = scaled_channels(planes, width, multiple)
            stages.append(nn.Sequential(BasicBlock(in_planes, planes, stride),
                                        BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


MODELS: dict[str, Callable[..., nn.Module]] = {"lenet3": LeNet3, "vgg8": VGG8, "resnet18": ResNet18}
"""Registry: model name -> constructor(num_classes, in_channels[, width, multiple])."""

SCALABLE: frozenset[str] = frozenset({"vgg8", "resnet18"})
"""Models that take a width multiplier (`models.<name>.width`)."""

INPUT_SHAPES: dict[str, tuple[int, int, int]] = {"lenet3": (1, 28, 28), "vgg8": (3, 32, 32),
                                                 "resnet18": (3, 32, 32)}
"""Input shape (C, H, W) each model is defined for."""


def build_model(name: str, num_classes: int = 10, in_channels: int | None = None,
                seed: int | None = None, width: float = 1.0, multiple: int = 1) -> nn.Module:
    """Build model `name` from the registry; an unknown name lists the known ones.

    `width` scales VGG-8's and ResNet-18's channels, rounded to multiples of `multiple`
    (`scaled_channels`); 1.0 builds the paper's form. With `seed`, the initial weights are drawn
    from that seed (the global RNG is left as it was).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}. "
                       f"Add one to tsblib.models.MODELS to extend the zoo.")
    channels = INPUT_SHAPES[name][0] if in_channels is None else in_channels
    kwargs = {"num_classes": num_classes, "in_channels": channels}
    if width != 1.0 or multiple != 1:
        if name not in SCALABLE:
            raise ValueError(f"model {name!r} has no width multiplier (width = {width}); only "
                             f"{sorted(SCALABLE)} do: remove models.{name}.width")
        kwargs.update(width=width, multiple=multiple)
    if seed is None:
        return MODELS[name](**kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[name](**kwargs)


def channel_multiple(exp) -> int:
    """What the channels of experiment `exp` (a `tsblib.config.ExperimentConfig`) at a reduced
    width are rounded to: a multiple of every TSB block width it uses (the least common multiple
    of `tsb.width` and `ablation.widths`), so that each block divides every insertion point and
    restating `tsb.width` among them leaves the backbone unchanged. 1 at width 1.0."""
    if exp.width == 1.0:
        return 1
    return math.lcm(exp.tsb.width, *exp.ablation.widths)


def experiment_model(exp, seed: int | None = None) -> nn.Module:
    """The backbone of experiment `exp` (a `tsblib.config.ExperimentConfig`): its model at its
    width (`channel_multiple`); the paper's form at width 1.0."""
    return build_model(exp.model, exp.num_classes, seed=seed, width=exp.width,
                       multiple=channel_multiple(exp))
