"""CorrectNet training: noise injection plus an orthogonality (Lipschitz) regulariser.

The loss is the noise-injection cross-entropy (a fresh weight error at sigma each forward) plus
`weight` * sum over mapped layers of ||W^T W - I||_F^2, which keeps the layers' gains near 1.

Source: Eldebiky et al., "CorrectNet: Robustness Enhancement of Analog In-Memory Computing for
Neural Networks by Error Suppression and Compensation", as re-implemented in the public code of
Qin et al. (NFT, the TSB authors): conv weights [out, in, k, k] are reshaped to (-1, k, k), so
each k x k kernel slice gives a k x k Gram matrix; linear weights [out, in] are one (1, out, in)
matrix, giving an in x in Gram matrix; default weight 5e-4. 1x1 kernels (ResNet shortcuts) thus
give (w^2 - 1)^2 per weight, as in that code.

Our note: the Tiny Shared Block kernel is stored as a 2-D [c, c] matrix in `tsblib.tsb`, so the
rule is chosen by the tensor's rank: 4-D -> per-kernel rule, 2-D -> linear rule (c x c Gram).
"""
from __future__ import annotations


import torch
from torch import nn

from tsblib.config import DeviceConfig
from tsblib.execution.context import TrainContext, programmed_once
from tsblib.execution.nit import nit_objective
from tsblib.methods.correctnet import DEFAULT_WEIGHT


def _as_matrices(w: torch.Tensor) -> torch.Tensor:
    """[batch, rows, cols] view of a weight: (-1, k, k') for convs, (1, out, in) for linears."""
    if w.dim() == 4:
        return w.reshape(-1, w.shape[2], w.shape[3])
    if w.dim() == 2:
        return w.unsqueeze(0)
    raise ValueError(f"orthogonality penalty expects a 4-D conv or 2-D linear weight, "
                     f"got shape {tuple(w.shape)}")


def orthogonality_penalty(params: dict[str, torch.Tensor], names: list[str]) -> torch.Tensor:
    """sum over `names` of ||W^T W - I||_F^2, W per kernel (convs) or whole (linears).

    Computed in float32 with autocast off (sums of squares lose too much in half precision).
    """
    total = None
    for name in names:
        w = _as_matrices(params[name]).float()
        with torch.autocast(device_type=w.device.type, enabled=False):  # float32 Gram matrices
            gram = w.transpose(1, 2) @ w
            eye = torch.eye(gram.shape[-1], device=gram.device, dtype=gram.dtype)
            term = ((gram - eye) ** 2).sum()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return total


class CorrectNetObjective:
    """CE under noise injection at sigma + weight * orthogonality penalty of the clean weights."""

    def __init__(self, names: list[str], sigma: float, device: DeviceConfig,
                 weight: float = DEFAULT_WEIGHT) -> None:
        self.names, self.sigma, self.device, self.weight = list(names), sigma, device, weight
        self.noisy_ce = nit_objective(self.names, sigma, device)
        self.extra = None

    def __call__(self, model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor,
                 y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        ce = self.noisy_ce(model, params, x, y, generator)
        return ce + self.weight * orthogonality_penalty(params, self.names)

    def __repr__(self) -> str:
        return f"CorrectNetObjective(sigma={self.sigma}, weight={self.weight})"


def correctnet_objective(names: list[str], sigma: float, device: DeviceConfig,
                         weight: float = DEFAULT_WEIGHT) -> CorrectNetObjective:
    """CorrectNet training objective (NFT authors' re-implementation); `.extra` is None."""
    return CorrectNetObjective(names, sigma, device, weight)


def objective(ctx: TrainContext) -> CorrectNetObjective:
    return correctnet_objective(ctx.names, ctx.exp.train.sigma_train, ctx.device_model,
                                ctx.exp.methods.of("correctnet").weight)


evaluate = programmed_once("correctnet")
"""The model programmed once onto every chip of the sweep."""
