"""The model zoo: LeNet-3, VGG-8 and ResNet-18 (CIFAR form), built by name.

Definitions follow DESIGN section 4. Convolutions feeding a BatchNorm carry no bias.
"""
from __future__ import annotations

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


class VGG8(nn.Module):
    """conv3x3 64, 128, pool, 256, 256, pool, 512, 512, pool (BN + ReLU each); linear 8192->1024->classes."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for item in (64, 128, "pool", 256, 256, "pool", 512, 512, "pool"):
            if item == "pool":
                layers.append(nn.MaxPool2d(2))
                continue
            layers += [nn.Conv2d(width, item, 3, padding=1, bias=False), BatchNorm2d(item),
                       nn.ReLU(inplace=False)]
            width = item
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8192, 1024), nn.ReLU(),
                                        nn.Linear(1024, num_classes))

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
    """CIFAR ResNet-18: 3x3 stem, no max-pool, BasicBlocks [2,2,2,2] at 64/128/256/512, GAP, linear."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = BatchNorm2d(64)
        stages, in_planes = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(nn.Sequential(BasicBlock(in_planes, planes, stride),
                                        BasicBlock(planes, planes, 1)))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


MODELS: dict[str, Callable[..., nn.Module]] = {"lenet3": LeNet3, "vgg8": VGG8, "resnet18": ResNet18}
"""Registry: model name -> constructor(num_classes, in_channels)."""

INPUT_SHAPES: dict[str, tuple[int, int, int]] = {"lenet3": (1, 28, 28), "vgg8": (3, 32, 32),
                                                 "resnet18": (3, 32, 32)}
"""Input shape (C, H, W) each model is defined for."""


def build_model(name: str, num_classes: int = 10, in_channels: int | None = None,
                seed: int | None = None) -> nn.Module:
    """Build model `name` from the registry; an unknown name lists the known ones.

    With `seed`, the initial weights are drawn from that seed (the global RNG is left as it was).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {sorted(MODELS)}. "
                       f"Add one to tsblib.models.MODELS to extend the zoo.")
    channels = INPUT_SHAPES[name][0] if in_channels is None else in_channels
    if seed is None:
        return MODELS[name](num_classes=num_classes, in_channels=channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS[name](num_classes=num_classes, in_channels=channels)
