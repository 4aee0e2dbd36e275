"""The machine's own peak, and how close tsblib's training and chip evaluation come to it.

For every model (LeNet-3; VGG-8 and ResNet-18 at widths 0.25 and 1.0) the script first times the
model's own convolutions and matmuls alone, forward, at their real input shapes (channels-last),
in fp32 and in bf16, at the training batch and at the number of images one chip-stacked
evaluation pass carries (`--peak-batch`, default 1,024, so that a small model's layers are not
timed at a size where Python's per-call cost dominates): the best of these rates is that model's
peak, and every figure after it is stated as a fraction of it. Then, in the same run:

- a noise-injection training step (`nit_objective`: forward with a fresh weight error, backward,
  Adam) on the straightforward path (fp32, NCHW) and on the runtime's fast path
  (`tsblib.runtime.fast_path`: bf16 autocast + channels-last where the CPU has bf16 units,
  else fp32), FLOPs counted as 6 x forward MACs per image;
- the Monte Carlo evaluation of chips (`tsblib.execution.evaluate.monte_carlo`, chips stacked), on
  both paths, FLOPs counted as 2 x forward MACs per image, stated per chip for 10,000 test images;
- per-chip TSB fine-tuning (`tsblib.execution.tsb_finetune.finetune`, chips batched, one epoch),
  FLOPs counted as 4 x forward MACs per chip-image (forward and the input gradient; the frozen
  backbone's weight gradients are not computed, the blocks' are negligible);
- BN recalibration (`tsblib.execution.bnrecal.recalibrate_chips`, one forward per chip in training
  mode), FLOPs counted as 2 x forward MACs per chip-image.

Besides the peak, the script times the same layers' *training* work alone (forward, weight
gradient and, past the first layer, input gradient, at the training batch, channels-last): the
rate a training step would reach if everything around the matrix kernels (BatchNorm, pooling,
activations, the noise draw, the optimiser) took no time. It is the ceiling of the training
fraction on this CPU with these kernels, printed beside it.

    python benchmarks/bench_cpu_peak.py [--models lenet3 vgg8 resnet18] [--widths 0.25 1.0]

The CPU model and its ISA flags (AMX, AVX-512 BF16, AVX-512, AVX2) head the record. A fraction
above 100 % would mean the layers alone were timed below what the model reaches; the script
prints what it measured either way, and says so.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
from common import timed  # noqa: E402

from tsblib.config import DeviceConfig, RuntimeConfig, TSBConfig, WriteVerifyConfig  # noqa: E402
from tsblib.data import Batches, PreparedData, Split  # noqa: E402
from tsblib.execution.evaluate import monte_carlo  # noqa: E402
from tsblib.execution.bnrecal import recalibrate_chips
from tsblib.execution.tsb_finetune import finetune, programmed_backbones
from tsblib.models import INPUT_SHAPES, build_model  # noqa: E402
from tsblib.runtime import cpu_isa, fast_path, use_channels_last  # noqa: E402
from tsblib.tsb import insert_tsb  # noqa: E402
from tsblib.variation import chip_seed, mapped_weight_names, sample_chips  # noqa: E402

DEVICE = DeviceConfig(weight_bits=8, device_bits=2, convention="device_range")
CPU = torch.device("cpu")


def layer_shapes(model: nn.Module, batch: int, shape: tuple[int, ...]) -> list[tuple[nn.Module, tuple]]:
    """(layer, input shape) of every convolution and linear layer in one forward."""
    seen: list[tuple[nn.Module, tuple]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((m, tuple(i[0].shape))))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(batch, *shape))
    for h in hooks:
        h.remove()
    return seen


def layers_rate(layers: list[tuple[nn.Module, tuple]], dtype: torch.dtype) -> float:
    """FLOP/s of the layers run alone, forward, channels-last, in `dtype`."""
    total_flops, total_seconds = 0.0, 0.0
    for layer, shape in layers:
        x = torch.randn(shape, dtype=dtype)
        w = layer.weight.detach().to(dtype)
        if isinstance(layer, nn.Conv2d):
            x = x.contiguous(memory_format=torch.channels_last)
            w = w.contiguous(memory_format=torch.channels_last)
            out = nn.functional.conv2d(x, w, None, layer.stride, layer.padding)
            flops = 2 * out.numel() * w.shape[1] * w.shape[2] * w.shape[3]

            def run(x=x, w=w, layer=layer):
                return nn.functional.conv2d(x, w, None, layer.stride, layer.padding)
        else:
            flops = 2 * x.shape[0] * w.shape[0] * w.shape[1]

            def run(x=x, w=w):
                return x @ w.t()
        with torch.no_grad():
            total_seconds += timed(run, CPU, repeats=5, warmup=2)
        total_flops += flops
    return total_flops / total_seconds


def training_kernels_seconds(layers: list[tuple[nn.Module, tuple]], dtype: torch.dtype) -> float:
    """Seconds of the layers' own training work run alone, in `dtype`, channels-last: forward,
    weight gradient and, past the first layer (whose input needs none), input gradient."""
    total = 0.0
    for index, (layer, shape) in enumerate(layers):
        x = torch.randn(shape, dtype=dtype)
        w = layer.weight.detach().to(dtype)
        if isinstance(layer, nn.Conv2d):
            x = x.contiguous(memory_format=torch.channels_last)
            w = w.contiguous(memory_format=torch.channels_last)
        x.requires_grad_(index > 0)
        w.requires_grad_(True)

        def forward(x=x, w=w, layer=layer) -> torch.Tensor:
            if isinstance(layer, nn.Conv2d):
                return nn.functional.conv2d(x, w, None, layer.stride, layer.padding)
            return x @ w.t()

        grad = torch.randn_like(forward())

        def run(forward=forward, grad=grad) -> None:
            forward().backward(grad)

        total += timed(run, CPU, repeats=5, warmup=2)
    return total


def forward_macs(layers: list[tuple[nn.Module, tuple]]) -> float:
    """Forward MACs per image of the convolution and linear layers."""
    macs = 0.0
    for layer, shape in layers:
        if isinstance(layer, nn.Conv2d):
            with torch.no_grad():
                out = layer(torch.zeros(1, *shape[1:]))
            macs += out.numel() * layer.weight[0].numel()
        else:
            macs += layer.weight.numel()
    return macs


def train_rate(name: str, width: float, runtime: RuntimeConfig, batch: int, steps: int) -> float:
    """Images/s of NIT training steps (batch `batch`, Adam) on `runtime`'s path."""
    return common.nit_step_rate(build_model(name, width=width, seed=0), name, runtime, CPU, batch,
                                steps, DEVICE, lambda p: torch.optim.Adam(p, lr=1e-3))


def chip_seconds(name: str, width: float, runtime: RuntimeConfig, images: int, chips: int) -> float:
    """Seconds per chip of the Monte Carlo evaluation on `images` test images (chips stacked)."""
    model = build_model(name, width=width, seed=0).eval()
    batches = random_batches(name, images, runtime)

    def run() -> None:
        monte_carlo(model, mapped_weight_names(model), 0.3, DEVICE, batches, chips=chips, seed=0,
                    chip_batch=chips, runtime=runtime, progress=False)

    return timed(run, CPU, repeats=2, warmup=1) / chips


def random_data(name: str, images: int) -> PreparedData:
    """Random images of model `name`'s input shape as a prepared data set (every split the same)."""
    shape = INPUT_SHAPES[name]
    split = Split(torch.randint(0, 255, (images, *shape), dtype=torch.uint8),
                  torch.randint(0, 10, (images,)))
    return PreparedData(train=split, val=split, test=split, name="random", num_classes=10,
                        mean=(0.5,) * shape[0], std=(0.25,) * shape[0], source="random",
                        checksum="")


def random_batches(name: str, images: int, runtime: RuntimeConfig) -> list:
    """`random_data`'s images in normalised batches of 500, in `runtime`'s memory format."""
    data = random_data(name, images)
    return list(Batches(data.train, 500, mean=data.mean, std=data.std,
                        channels_last=use_channels_last(runtime, CPU)))


def finetune_seconds(name: str, width: float, runtime: RuntimeConfig, images: int,
                     chips: int) -> float:
    """Seconds per chip of one epoch of per-chip TSB fine-tuning on `images` images (batch 64,
    `chips` chips batched in one pass), with a zero-initialised block of width 8 (LeNet-3) or
    16."""
    cfg = TSBConfig(width=8 if name == "lenet3" else 16, epochs=1, batch_size=64,
                    chip_batch=chips)
    model = insert_tsb(build_model(name, width=width, seed=0), cfg).eval()
    data = random_data(name, images)
    seeds = [chip_seed(0, 0.3, k) for k in range(chips)]
    programmed = programmed_backbones(model, 0.3, DEVICE, seeds)

    def run() -> None:
        finetune(model, data, cfg, 0.3, DEVICE, WriteVerifyConfig(), chip_params=programmed,
                 seed=0, device=CPU, runtime=runtime, progress=False)

    return timed(run, CPU, repeats=2, warmup=1) / chips


def recalibration_seconds(name: str, width: float, runtime: RuntimeConfig, images: int,
                          chips: int) -> float:
    """Seconds per chip of BN recalibration on `images` training images (batches of 500)."""
    model = build_model(name, width=width, seed=0).eval()
    batches = random_batches(name, images, runtime)
    seeds = [chip_seed(0, 0.3, k) for k in range(chips)]
    stacked = sample_chips(dict(model.named_parameters()), mapped_weight_names(model), 0.3, DEVICE,
                           seeds)

    def run() -> None:
        recalibrate_chips(model, stacked, batches, runtime)

    return timed(run, CPU, repeats=2, warmup=1) / chips


def main() -> None:
    parser = common.parser(__doc__)
    parser.add_argument("--models", nargs="+", default=["lenet3", "vgg8", "resnet18"])
    parser.add_argument("--widths", nargs="+", type=float, default=[0.25, 1.0])
    parser.add_argument("--batch", type=int, default=128, help="training batch (cifar-cpu: 128)")
    parser.add_argument("--peak-batch", type=int, default=1024,
                        help="a second, larger batch at which the layers are timed for the peak")
    args = parser.parse_args()
    plain = RuntimeConfig(device="cpu", bf16=False, channels_last=False)
    fast = common.CPU_FAST
    lines = [f"- CPU ISA flags: {' '.join(cpu_isa()) or 'none found'}; fast path on this CPU: "
             f"{fast_path(fast, CPU)}; straightforward path: {fast_path(plain, CPU)}",
             f"- peak = the best of fp32 and bf16 for the model's own convolutions and matmuls "
             f"alone (forward, real shapes, channels-last, batch {args.batch} and "
             f"{args.peak_batch}); training FLOPs = 6 x forward MACs per image, evaluation "
             f"FLOPs = 2 x"]
    started = time.perf_counter()
    for name in args.models:
        for width in ([1.0] if name == "lenet3" else args.widths):
            model = build_model(name, width=width, seed=0)
            layers = layer_shapes(model, args.batch, INPUT_SHAPES[name])
            macs = forward_macs(layers)
            large = layer_shapes(model, args.peak_batch, INPUT_SHAPES[name])
            fp32 = max(layers_rate(layers, torch.float32), layers_rate(large, torch.float32))
            bf16 = max(layers_rate(layers, torch.bfloat16), layers_rate(large, torch.bfloat16))
            peak = max(fp32, bf16)
            kernels = min(training_kernels_seconds(layers, torch.float32),
                          training_kernels_seconds(layers, torch.bfloat16))
            small = width < 1 or name == "lenet3"
            steps = 5 if small else 1
            t_plain = train_rate(name, width, plain, args.batch, steps)
            t_fast = train_rate(name, width, fast, args.batch, steps)
            images, chips = (2000, 10) if small else (500, 4)
            e_plain = chip_seconds(name, width, plain, images, chips)
            e_fast = chip_seconds(name, width, fast, images, chips)
            tune_images, tune_chips = (1024, 5) if small else (128, 2)
            f_plain = finetune_seconds(name, width, plain, tune_images, tune_chips)
            f_fast = finetune_seconds(name, width, fast, tune_images, tune_chips)
            recal_images = 2000 if small else 500
            r_plain = recalibration_seconds(name, width, plain, recal_images, 2)
            r_fast = recalibration_seconds(name, width, fast, recal_images, 2)
            first = len(lines)
            label = name if name == "lenet3" else f"{name} width {width:g}"
            ceiling = 6 * macs * args.batch / kernels / peak
            fractions = {"train": 6 * macs * t_fast / peak,
                         "eval": 2 * macs * images / e_fast / peak,
                         "tune": 4 * macs * tune_images / f_fast / peak,
                         "recal": 2 * macs * recal_images / r_fast / peak}
            lines += [
                f"- **{label}** ({macs / 1e6:.1f} M forward MACs per image): layers alone fp32 "
                f"{fp32 / 1e9:.0f} GFLOP/s, bf16 {bf16 / 1e9:.0f} GFLOP/s (bf16 / fp32 "
                f"{bf16 / fp32:.2f}x); peak {peak / 1e9:.0f} GFLOP/s",
                f"  - the same layers' training work alone (forward and both gradients, batch "
                f"{args.batch}, the faster dtype): {args.batch / kernels:,.0f} img/s = "
                f"{ceiling:.0%} of peak, the ceiling of a training step with these kernels",
                f"  - NIT training step, batch {args.batch}: straightforward {t_plain:,.0f} img/s, "
                f"fast path {t_fast:,.0f} img/s (fast / straightforward {t_fast / t_plain:.2f}x) = "
                f"{fractions['train']:.0%} of peak, {fractions['train'] / ceiling:.0%} of the "
                f"ceiling",
                f"  - Monte Carlo, {chips} chips stacked on {images:,} images: straightforward "
                f"{e_plain * 10_000 / images:.2f} s, fast path {e_fast * 10_000 / images:.2f} s per "
                f"chip for 10,000 test images (ratio {e_plain / e_fast:.2f}x) = "
                f"{fractions['eval']:.0%} of peak",
                f"  - TSB fine-tuning, {tune_chips} chips batched, one epoch of {tune_images:,} "
                f"images (batch 64): straightforward {f_plain:.2f} s, fast path {f_fast:.2f} s per "
                f"chip (ratio {f_plain / f_fast:.2f}x) = {fractions['tune']:.0%} of peak",
                f"  - BN recalibration on {recal_images:,} images: straightforward "
                f"{r_plain:.2f} s, fast path {r_fast:.2f} s per chip (ratio "
                f"{r_plain / r_fast:.2f}x) = {fractions['recal']:.0%} of peak"]
            if max(fractions.values()) > 1:
                lines.append("  - above 100 % of the layers-alone peak: that peak is too low a "
                             "reference here (timed at too small a size); compare the ratios")
            print(*lines[first:], sep="\n", flush=True)
    lines.append(f"- the whole benchmark took {time.perf_counter() - started:.0f} s")
    common.finish("The CPU's own peak and the fast path's fraction of it (bench_cpu_peak.py)",
                  CPU, lines, args.no_record)


if __name__ == "__main__":
    main()
