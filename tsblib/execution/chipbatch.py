"""Chip-parallel execution: run K chips of one model in a single forward pass by stacking the
chips along the channel dimension ([N, K*C, H, W]), with grouped convolutions and batched linears.

This avoids the layout copies that `torch.func.vmap` inserts around pooling and elementwise ops,
and works for any model built from Conv2d, Linear, BatchNorm2d, TinySharedBlock and channel-wise
operations (ReLU, pooling, residual adds, flatten), i.e. every model of `tsblib.models`.

Three things make the pass fast on the CPU as well as on a GPU (`benchmarks/bench_monte_carlo.py`):

- activations are channels-last, so grouped convolutions, pooling and the block run on
  contiguous channel vectors;
- an inference BatchNorm that directly follows a convolution is folded into that convolution's
  per-chip weights and bias (found by tracing the model with `torch.fx`; a model that cannot be
  traced simply runs its BatchNorms unfolded);
- a convolution whose input is shared by all chips (the first layer) and whose reduction is short
  (e.g. LeNet-3's 1 x 5 x 5) is one im2col and one matrix product with the K stacked filters,
  instead of a direct convolution with a single input channel, which oneDNN runs slowly;
- without gradients (Monte Carlo evaluation), a ReLU whose input is a fresh tensor that nothing
  else reads runs in place, so the K-times wider activations are not written to newly allocated
  memory once more (the pass runs the model's `torch.fx` graph with these ReLUs rewritten; the
  values are the same bits). With gradients (per-chip fine-tuning) the model's own forward runs:
  there the rewrite measured slower (`benchmarks/bench_relu_in_place.py`).
"""
from __future__ import annotations

import copy
import logging
import operator
from typing import Any, Callable, Mapping

import torch
from torch import fx, nn
from torch.func import functional_call

from tsblib.tsb import BatchNormTSB, TinySharedBlock

log = logging.getLogger(__name__)

IM2COL_MAX_REDUCTION = 32
"""A shared-input convolution with at most this many inputs per output (C_in * kh * kw) runs as
im2col + one matrix product."""


class _ChipConv(nn.Module):
    """K convolutions with stacked weights [K, Cout, Cin, kh, kw]; input shared or chip-stacked.

    `scale` / `shift` ([K, Cout]) fold a following inference BatchNorm into the weights and bias;
    `block` then folds that BatchNorm's Tiny Shared Block too (recomputed every pass, so that
    `ChipBatchedModel.set_blocks` takes effect and gradients reach the block).
    """

    def __init__(self, conv: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None,
                 scale: torch.Tensor | None = None, shift: torch.Tensor | None = None,
                 block: "_ChipBlock | None" = None) -> None:
        super().__init__()
        self.k = weight.shape[0]
        self.in_channels, self.groups = conv.in_channels, conv.groups
        self.kernel_size = conv.kernel_size
        if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise TypeError(f"chip-parallel execution supports zero padding given as numbers; this "
                            f"convolution has padding={conv.padding!r}, padding_mode={conv.padding_mode!r}")
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        self.block = block
        self._bias, self._scale, self._shift = bias, scale, shift
        self.load(weight)

    def load(self, weight: torch.Tensor) -> None:
        """Use per-chip filters `weight` [K, Cout, ...] (folding the BatchNorm again), e.g. one
        read of read-noisy devices."""
        bias, scale, shift = self._bias, self._scale, self._shift
        if scale is not None:
            weight = weight * scale[:, :, None, None, None]
            bias = shift if bias is None else bias * scale + shift
        if self.block is not None and bias is None:
            bias = weight.new_zeros(weight.shape[:2])
        self.base_weight, self.base_bias = weight, bias  # [K, Cout, ...], [K, Cout]
        self.weight, self.bias = self._flat(weight, bias)

    @staticmethod
    def _flat(weight: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        return (weight.reshape(-1, *weight.shape[2:]).contiguous(memory_format=torch.channels_last),
                None if bias is None else bias.reshape(-1))

    def _weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The K stacked filters and biases, with the chips' blocks composed in when folded."""
        if self.block is None:
            return self.weight, self.bias
        return self._flat(*self.block.compose(self.base_weight, self.base_bias))

    def _im2col(self, x: torch.Tensor) -> torch.Tensor:
        """The shared-input convolution as one matrix product; output is a channels-last view."""
        n, _, h, w = x.shape
        kh, kw = self.kernel_size
        out_h = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        out_w = (w + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        if self.padding != (0, 0) or self.dilation != (1, 1):
            x = nn.functional.pad(x, (self.padding[1], self.padding[1], self.padding[0], self.padding[0]))
        patches = x.unfold(2, self.dilation[0] * (kh - 1) + 1, self.stride[0]) \
                   .unfold(3, self.dilation[1] * (kw - 1) + 1, self.stride[1])
        patches = patches[..., ::self.dilation[0], ::self.dilation[1]]  # [N, C, oh, ow, kh, kw]
        cols = patches.permute(0, 2, 3, 1, 4, 5).reshape(n * out_h * out_w, -1)
        weight, bias = self._weights()
        weight = weight.reshape(weight.shape[0], -1).to(x.dtype)
        y = cols @ weight.t() if bias is None else torch.addmm(bias.to(x.dtype), cols, weight.t())
        return y.view(n, out_h, out_w, -1).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shared = x.shape[1] == self.in_channels and self.k > 1
        if shared and self.groups == 1 and self.weight[0].numel() <= IM2COL_MAX_REDUCTION:
            return self._im2col(x)
        if shared and self.groups > 1:
            # a grouped convolution's output groups would straddle chips: stack the input per chip
            x, shared = x.repeat(1, self.k, 1, 1), False
        groups = self.groups if shared else self.groups * self.k
        weight, bias = self._weights()
        return nn.functional.conv2d(x.contiguous(memory_format=torch.channels_last),
                                    weight.to(x.dtype), None if bias is None else bias.to(x.dtype),
                                    self.stride, self.padding, self.dilation, groups)


class _ChipLinear(nn.Module):
    """K linear layers with stacked weights [K, out, in]; input [N, in] shared or [N, K*in]."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.weight, self.bias = weight, bias
        self.k, self.out_features, self.in_features = weight.shape

    def load(self, weight: torch.Tensor) -> None:
        """Use per-chip weights `weight` [K, out, in]."""
        self.weight = weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if x.shape[1] == self.in_features and self.k > 1:
            y = torch.einsum("ni,koi->nko", x, self.weight.to(x.dtype))
        else:
            y = torch.einsum("nki,koi->nko", x.reshape(n, self.k, self.in_features),
                             self.weight.to(x.dtype))
        if self.bias is not None:
            y = y + self.bias.to(x.dtype)
        return y.reshape(n, self.k * self.out_features)


class _ChipBatchNorm(nn.Module):
    """Inference BatchNorm with per-chip statistics ([K*C] scale and shift), then the chip's TSB
    if any (used where the BatchNorm could not be folded into a convolution)."""

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor, block: "_ChipBlock | None") -> None:
        super().__init__()
        self.scale, self.shift, self.block = scale, shift, block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.scale.to(x.dtype)[:, None, None] + self.shift.to(x.dtype)[:, None, None]
        return x if self.block is None else self.block(x)


class _ChipBlock(nn.Module):
    """The Tiny Shared Block of each chip, weights [K, c, c], on chip-stacked features."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = weight
        self.k, self.width = weight.shape[0], weight.shape[1]

    def compose(self, weight: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Filters [K, C, ...] and biases [K, C] of a convolution followed by this block: the
        block is linear, so y + T(y) is one convolution with (I + T) applied to the filters."""
        k, channels = bias.shape
        g = channels // self.width
        w = weight.reshape(k, g, self.width, -1)
        b = bias.reshape(k, g, self.width)
        block = self.weight.to(weight.dtype)
        w = w + torch.einsum("koi,kgix->kgox", block, w)
        b = b + torch.einsum("koi,kgi->kgo", block, b)
        return w.reshape(weight.shape), b.reshape(bias.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, kc, h, w = x.shape
        g = kc // (self.k * self.width)
        weight = self.weight.to(x.dtype)
        if x.is_contiguous(memory_format=torch.channels_last):  # [N, H, W, K*C] in memory
            groups = x.permute(0, 2, 3, 1).reshape(n, h, w, self.k, g, self.width)
            mixed = torch.einsum("koi,nhwkgi->nhwkgo", weight, groups)
            return x + mixed.reshape(n, h, w, kc).permute(0, 3, 1, 2)
        groups = x.reshape(n, self.k, g, self.width, h, w)
        mixed = torch.einsum("koi,nkgihw->nkgohw", weight, groups)
        return x + mixed.reshape(n, kc, h, w)


class _Leaves(fx.Tracer):
    """Traces a model down to convolutions, BatchNorms, linears and blocks."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:  # noqa: D102
        return isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear, TinySharedBlock)) or \
            super().is_leaf_module(m, qualname)


def _trace(model: nn.Module) -> fx.Graph | None:
    try:
        return _Leaves().trace(model)
    except Exception:  # noqa: BLE001 - an untraceable model is run chip by chip
        return None


def conv_batchnorm_pairs(model: nn.Module) -> dict[str, str]:
    """{BatchNorm name: name of the convolution whose output is its only input and is used by
    nothing else}, from a `torch.fx` trace; empty when the model cannot be traced. A convolution
    or BatchNorm called more than once (shared weights) is never folded: folding would apply the
    BatchNorm at every call of the convolution, or drop it at the BatchNorm's other calls."""
    return _pairs(_trace(model), dict(model.named_modules()))


def _pairs(graph: fx.Graph | None, modules: dict[str, nn.Module]) -> dict[str, str]:
    if graph is None:
        return {}
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs: dict[str, str] = {}
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        source = node.args[0]
        if (isinstance(source, fx.Node) and source.op == "call_module"
                and isinstance(modules[source.target], nn.Conv2d) and len(source.users) == 1
                and calls[source.target] == 1 and calls[node.target] == 1):
            pairs[node.target] = source.target
    return pairs


_JOINS = {"cat", "concat", "concatenate", "stack", "hstack", "dstack", "column_stack",
          "split", "chunk", "tensor_split", "unbind"}
"""Functions and tensor methods that join or split tensors along a dimension: along a channel or
feature dimension they would mix chips in the chip-stacked layout."""


def _dim_of(node: fx.Node, name: str) -> Any:
    """The dimension a join/split node acts on (its default, 0, when not given)."""
    if name in ("hstack", "dstack", "column_stack"):
        return 1  # never the batch dimension of an image or feature tensor
    if "dim" in node.kwargs:
        return node.kwargs["dim"]
    index = 2 if name in ("split", "chunk", "tensor_split") else 1
    return node.args[index] if len(node.args) > index else 0


def unfoldable_reason(model: nn.Module) -> str | None:
    """Why the chip-parallel pass cannot run `model` correctly, or None when it can.

    The pass stacks chips along the channels, so it refuses (and `chip_batched` falls back to one
    pass per chip for) a model `torch.fx` cannot trace (its operations cannot be checked) and a
    model that concatenates or splits tensors along a non-batch dimension (e.g. a channel
    concatenation: the chips' channels would interleave wrongly). A grouped convolution on the
    shared input and a module called more than once are handled in the pass itself. Not detected:
    other operations that mix the channels or features of one tensor (channel slicing, a softmax
    over the logits inside the model); such a model must not be run chip-parallel."""
    return _reason(_trace(model))


def _reason(graph: fx.Graph | None) -> str | None:
    if graph is None:
        return "torch.fx cannot trace it, so its operations cannot be checked"
    for node in graph.nodes:
        if node.op not in ("call_function", "call_method"):
            continue
        name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
        if name in _JOINS:
            dim = _dim_of(node, name)
            if dim != 0:
                return (f"it calls {name}(dim={dim!r}) (node {node.name!r}), which would mix the "
                        f"chips stacked along the channels")
    return None


_RELUS = {torch.relu, torch.nn.functional.relu}
"""Out-of-place ReLU functions a model's forward may call (`torch.relu`, `F.relu`)."""

_FRESH_FUNCTIONS = {operator.add, torch.add, torch.nn.functional.max_pool2d,
                    torch.nn.functional.avg_pool2d}
"""Functions whose output is a new tensor (never a view of their input)."""

_FRESH_MODULES = (_ChipConv, _ChipLinear, _ChipBatchNorm, nn.MaxPool2d, nn.AvgPool2d,
                  nn.AdaptiveAvgPool2d)
"""Modules of the chip-parallel copy whose output is a new tensor."""


def _is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return type(modules[node.target]) is nn.ReLU
    if node.op == "call_function":
        return node.target in _RELUS and not node.kwargs.get("inplace", False)
    return node.op == "call_method" and node.target == "relu"


def _fresh_and_private(node: Any, modules: dict[str, nn.Module]) -> bool:
    """Whether `node`'s output is a new tensor read by one node only (so overwriting it in place
    changes nothing else); an identity (a folded BatchNorm) passes its input through."""
    if not isinstance(node, fx.Node) or len(node.users) != 1:
        return False
    if node.op == "call_module":
        module = modules[node.target]
        if type(module) is nn.Identity:
            return _fresh_and_private(node.args[0], modules)
        return type(module) in _FRESH_MODULES
    return (node.op == "call_function" and node.target in _FRESH_FUNCTIONS
            and "out" not in node.kwargs)  # add(..., out=t) returns t


def _relus_in_place(work: nn.Module, graph: fx.Graph) -> nn.Module:
    """`work` run from its `graph` with every ReLU whose input is fresh and private computed in
    place (`torch.relu_`); `work` itself when there is no such ReLU. `graph` is rewritten; `work`
    and its forward are not (the result shares its modules)."""
    modules = dict(work.named_modules())
    relus = [n for n in graph.nodes if _is_relu(n, modules)
             and _fresh_and_private(n.args[0], modules)]
    if not relus:
        return work
    for node in relus:
        with graph.inserting_after(node):
            new = graph.call_function(torch.relu_, (node.args[0],))
        node.replace_all_uses_with(new)
        graph.erase_node(node)
    graph.lint()
    return fx.GraphModule(work, graph, class_name=type(work).__name__)


Read = Callable[[Mapping[str, torch.Tensor]], Mapping[str, torch.Tensor]]
"""One read of the chips' stacked programmed weights (per-inference read noise)."""


def chip_batched(model: nn.Module, chip_params: Mapping[str, torch.Tensor],
                 chip_buffers: Mapping[str, torch.Tensor] | None = None,
                 read: Read | None = None) -> "ChipBatchedModel | ChipLoopModel":
    """A copy of `model` (in eval mode) that runs K chips at once.

    `chip_params` maps parameter names to stacked per-chip values [K, ...] (the others are shared
    by all chips); `chip_buffers` may give per-chip BatchNorm statistics; `read`, when given, is
    applied to the chips' weights at every forward (fresh read noise per inference). Call the
    result on images [N, C, H, W]; it returns logits [K, N, classes]. Tensors in `chip_params`
    are used as given, so gradients flow to them (e.g. to fine-tune per-chip blocks). A model the
    chip-parallel pass cannot fold (`unfoldable_reason`) runs one pass per chip instead, with a
    warning.
    """
    work = copy.deepcopy(model).eval()
    graph = _trace(work)
    reason = _reason(graph)
    if reason is not None:
        log.warning("running chips one by one: the chip-parallel pass cannot fold %s: %s",
                    type(model).__name__, reason)
        return ChipLoopModel(model, chip_params, chip_buffers, read)
    k = next(iter(chip_params.values())).shape[0]
    chip_buffers = dict(chip_buffers or {})
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())

    def get(name: str) -> torch.Tensor | None:
        if name in chip_params:
            return chip_params[name]
        if name in chip_buffers:
            return chip_buffers[name]
        value = params.get(name, buffers.get(name))
        if value is None:
            return None
        return value.detach().unsqueeze(0).expand(k, *value.shape)

    def bn_affine(name: str, module: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
        scale = get(f"{name}.weight") * torch.rsqrt(get(f"{name}.running_var") + module.eps)
        return scale, get(f"{name}.bias") - get(f"{name}.running_mean") * scale

    modules = dict(work.named_modules())
    folded = {conv: bn for bn, conv in _pairs(graph, modules).items()}
    blocks: dict[str, _ChipBlock] = {}
    if hasattr(work, "tsb"):
        for key in work.tsb:
            blocks[key] = _ChipBlock(get(f"tsb.{key}.weight"))
    replacements: dict[str, nn.Module] = {}
    for name, module in work.named_modules():
        if not name or name.startswith("tsb"):
            continue
        if isinstance(module, nn.Conv2d):
            bias = get(f"{name}.bias") if module.bias is not None else None
            scale = shift = None
            block = None
            if name in folded:
                bn = modules[folded[name]]
                scale, shift = bn_affine(folded[name], bn)
                block = blocks[bn._tsb_key] if isinstance(bn, BatchNormTSB) else None
            replacements[name] = _ChipConv(module, get(f"{name}.weight"), bias, scale, shift, block)
        elif isinstance(module, nn.Linear):
            bias = get(f"{name}.bias") if module.bias is not None else None
            replacements[name] = _ChipLinear(get(f"{name}.weight"), bias)
        elif isinstance(module, nn.BatchNorm2d):
            if name in folded.values():  # BatchNorm and block live in the convolution
                replacements[name] = nn.Identity()
                continue
            block = blocks[module._tsb_key] if isinstance(module, BatchNormTSB) else None
            scale, shift = (t.reshape(-1) for t in bn_affine(name, module))
            replacements[name] = _ChipBatchNorm(scale, shift, block)
        elif isinstance(module, TinySharedBlock):
            continue
        elif not list(module.children()) and any(True for _ in module.parameters(recurse=False)):
            raise TypeError(f"chip-parallel execution does not know module {name!r} "
                            f"({type(module).__name__}); add a rule in tsblib.execution.chipbatch")
    for name, new in replacements.items():
        parent_name, _, attr = name.rpartition(".")
        parent = work.get_submodule(parent_name) if parent_name else work
        setattr(parent, attr, new)
    if hasattr(work, "tsb"):
        del work.tsb
    block_map = {f"tsb.{key}.weight": b for key, b in blocks.items()}
    layers = {f"{name}.weight": m for name, m in replacements.items()
              if isinstance(m, (_ChipConv, _ChipLinear))}
    return ChipBatchedModel(work, k, block_map, read, layers,
                            {n: get(n) for n in list(layers) + list(block_map)},
                            inference=_relus_in_place(work, graph))


class ChipBatchedModel(nn.Module):
    """K chips of a model in one pass: images [N, C, H, W] -> logits [K, N, classes].

    `inner` is the chip-parallel copy of the model; `inference`, when given, computes the same
    with its ReLUs in place and runs instead of it whenever gradients are off."""

    def __init__(self, inner: nn.Module, chips: int, blocks: dict[str, "_ChipBlock"],
                 read: Read | None = None, layers: dict[str, nn.Module] | None = None,
                 weights: dict[str, torch.Tensor] | None = None,
                 inference: nn.Module | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.inference = inner if inference is None else inference
        self.chips = chips
        self._blocks = blocks
        self._read = read
        self._layers = layers or {}
        self._weights = dict(weights or {})

    def set_blocks(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Replace the per-chip TSB weights ({'tsb.<key>.weight': [K, c, c]}), e.g. every
        fine-tuning step, without rebuilding the model."""
        for name, weight in weights.items():
            self._blocks[name].weight = weight
            self._weights[name] = weight

    def _apply_read(self) -> None:
        """Load one read of every chip's weights into the layers and blocks."""
        noisy = self._read({n: w for n, w in self._weights.items() if w is not None})
        for name, weight in noisy.items():
            if name in self._layers:
                self._layers[name].load(weight)
            elif name in self._blocks:
                self._blocks[name].weight = weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self._read is not None:
            self._apply_read()
        logits = (self.inner if torch.is_grad_enabled() else self.inference)(x)
        return logits.reshape(x.shape[0], self.chips, -1).transpose(0, 1)


class ChipLoopModel(nn.Module):
    """The plain path: K chips of a model, one forward per chip (`functional_call`), for models
    the chip-parallel pass cannot fold; same interface as `ChipBatchedModel`."""

    def __init__(self, model: nn.Module, chip_params: Mapping[str, torch.Tensor],
                 chip_buffers: Mapping[str, torch.Tensor] | None = None,
                 read: Read | None = None) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).eval()
        self._params = dict(chip_params)
        self._buffers = dict(chip_buffers or {})
        self._read = read
        self.chips = next(iter(chip_params.values())).shape[0]

    def set_blocks(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Replace the per-chip TSB weights ({'tsb.<key>.weight': [K, c, c]})."""
        self._params.update(weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        params = self._params if self._read is None else dict(self._read(self._params))
        outs = []
        for k in range(self.chips):
            state = {n: w[k] for n, w in params.items()}
            state.update({n: b[k] for n, b in self._buffers.items()})
            outs.append(functional_call(self.model, state, (x,), strict=False))
        return torch.stack(outs)
