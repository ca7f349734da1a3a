"""Training-engine speed: survey_lib.train.fit against a bare tensor loop and a DataLoader.

A script, not a test. It times the same model, data, batch size and optimiser three ways:

* ``fit``: the engine (data on the device, batch-wise augmentation, frozen-unit cache);
* ``bare``: a hand-written loop over device tensors with the same augmentation ops and the
  same SGD parameter groups, without schedule, metrics or checks (the lower bound on overhead);
* ``loader(wN)``: ``torch.utils.data.DataLoader`` over a PIL-image dataset with per-image
  torchvision transforms (RandomCrop(size, padding=4), RandomHorizontalFlip, ToTensor,
  Normalize), ``num_workers=N`` — the common way.

The engine and the bare loop use the channels-last (NHWC) memory format, on the CPU too
(``TrainConfig.channels_last``); the DataLoader loop keeps PyTorch's default NCHW format on the
CPU, as common training code does, and is also timed once with NHWC (``loader(w0,NHWC)``) so
that the gain of the memory format and the gain of the data pipeline can be told apart.

Cases: full fine-tuning with crop+flip, and frozen-unit training with no augmentation
(head only, and the last three units). The data are random images shaped like Fashion-MNIST
(1x28x28, 10 classes) unless ``--data fashion_mnist`` finds the real set: the benchmark
measures speed, not accuracy. On CUDA it also prints the achieved share of the device's peak
bf16 dense FLOP/s (FLOPs counted with ``torch.utils.flop_counter.FlopCounterMode``).

Usage::

    python benchmarks/bench_train.py --device cpu --n-train 1024 --epochs 5 --threads 1
    python benchmarks/bench_train.py --device cuda --n-train 60000 --epochs 2
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

from survey_lib.data.base import ImageDataset
from survey_lib.models import create_model
from survey_lib.train import TrainConfig, augment_batch, fit, normalizer, param_groups

#: dense bf16 tensor-core peak FLOP/s by device-name substring (vendor datasheets).
PEAK_BF16 = {
    "H200": 989e12,
    "H100 SXM": 989e12,
    "H100 80GB HBM3": 989e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10G": 70e12,
    "RTX 4090": 165e12,
}
MEAN, STD = (0.2860,), (0.3530,)


def get_data(kind: str, n: int, seed: int) -> tuple[ImageDataset, str]:
    if kind == "fashion_mnist":
        try:
            from survey_lib.data import get_dataset

            data = get_dataset("fashion_mnist", split="train")
            return data.subset(torch.arange(min(n, len(data)))), "fashion_mnist (real)"
        except Exception as exc:  # noqa: BLE001 - fall back to random data, say so
            print(f"fashion_mnist unavailable ({type(exc).__name__}: {exc}); using random data")
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    names = tuple(str(i) for i in range(10))
    return ImageDataset("random_fmnist_shape", "train", images, labels, names), (
        "random uint8 images shaped like Fashion-MNIST (speed only)"
    )


def make_model(seed: int, device: torch.device, channels_last: bool) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = create_model("alexnet_small", num_classes=10, in_chans=1).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _set_frozen(model: torch.nn.Module, frozen: int) -> None:
    model.train()
    for i, (_, unit) in enumerate(model.units()):
        unit.requires_grad_(i >= frozen)
        if i < frozen:
            unit.eval()


def run_fit(data: ImageDataset, config: TrainConfig) -> float:
    model = make_model(0, torch.device(config.device), False)
    result = fit(model, data, None, config, progress=False)
    assert result.status == "ok", result.failure
    return result.train_seconds


def run_bare(data: ImageDataset, config: TrainConfig) -> float:
    device = torch.device(config.device)
    cuda = device.type == "cuda"
    amp, chl = cuda and config.amp_bf16, config.channels_last  # as the engine does
    model = make_model(0, device, chl)
    frozen = config.frozen_units
    _set_frozen(model, frozen)
    opt = torch.optim.SGD(
        param_groups(model, config),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
    )
    images, labels = data.images.to(device), data.labels.to(device)
    scale, shift = normalizer(config.mean, config.std, images.shape[1], device)
    gen = torch.Generator(device=device).manual_seed(0)
    last = len(model.unit_names) - 1
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(config.epochs):
        order = torch.randperm(len(images), device=device, generator=gen)
        for i in range(0, len(images), config.batch_size):
            idx = order[i : i + config.batch_size]
            raw = augment_batch(
                images[idx], config.augment, padding=config.crop_padding, generator=gen
            )
            x = torch.addcmul(shift, raw.float(), scale)
            if chl:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                if frozen:
                    with torch.no_grad():
                        x = model.forward_units(x, 0, frozen)
                logits = model.forward_head(model.forward_units(x, frozen, last))
            loss = F.cross_entropy(logits.float(), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    _sync(device)
    return time.perf_counter() - t0


class PILDataset(Dataset):
    """uint8 tensors served as PIL images through per-image torchvision transforms."""

    def __init__(self, data: ImageDataset, transform: Callable) -> None:
        self.images = data.images.squeeze(1).numpy()
        self.labels = data.labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(Image.fromarray(self.images[i], mode="L")), self.labels[i]


def run_loader(
    data: ImageDataset, config: TrainConfig, workers: int, same_format: bool = False
) -> float:
    """The common loop. Its model runs in the default (NCHW) memory format on the CPU and
    channels-last on CUDA, as typical training scripts do; ``same_format`` gives it the
    engine's memory format everywhere, to separate that gain from the data pipeline's."""
    device = torch.device(config.device)
    cuda = device.type == "cuda"
    amp = cuda and config.amp_bf16
    chl = config.channels_last and (cuda or same_format)
    model = make_model(0, device, chl)
    _set_frozen(model, config.frozen_units)
    opt = torch.optim.SGD(
        param_groups(model, config),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
    )
    size = data.images.shape[-1]
    ops = []
    if config.augment in ("crop_flip", "crop"):
        ops.append(transforms.RandomCrop(size, padding=config.crop_padding))
    if config.augment in ("crop_flip", "flip"):
        ops.append(transforms.RandomHorizontalFlip())
    ops += [transforms.ToTensor(), transforms.Normalize(config.mean, config.std)]
    loader = DataLoader(
        PILDataset(data, transforms.Compose(ops)),
        batch_size=config.batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=cuda,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(0),
    )
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(config.epochs):
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if chl:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    _sync(device)
    return time.perf_counter() - t0


def train_flops_per_image(config: TrainConfig, image_shape: tuple[int, ...]) -> float:
    """Forward + backward FLOPs per training image of the part that is actually trained."""
    device = torch.device(config.device)
    model = make_model(0, device, False)
    _set_frozen(model, config.frozen_units)
    batch = 32
    x = torch.randn(batch, *image_shape, device=device)
    with torch.no_grad():
        h = model.forward_units(x, 0, config.frozen_units)
    counter = FlopCounterMode(display=False)
    with counter:
        logits = model.forward_units(h, config.frozen_units)
        F.cross_entropy(logits, torch.zeros(batch, dtype=torch.long, device=device)).backward()
    return counter.get_total_flops() / batch


def best_of(repeats: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeats))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--n-train", type=int, default=4096)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=2, help="best of this many timings")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    p.add_argument("--loader-workers", default="0,1")
    p.add_argument("--data", choices=["random", "fashion_mnist"], default="random")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data, label = get_data(args.data, args.n_train, 0)
    device = torch.device(args.device)
    print(f"device={args.device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"torch threads={torch.get_num_threads()}, cpu cores={os.cpu_count()}, load avg={os.getloadavg()}")  # fmt: skip
    print(
        f"data: {label}, n={len(data)}, epochs={args.epochs}, batch={args.batch_size}, model=alexnet_small"
    )
    n_units = len(make_model(0, torch.device("cpu"), False).unit_names)
    base = TrainConfig(epochs=args.epochs, lr=0.01, batch_size=args.batch_size, mean=MEAN, std=STD, device=args.device, schedule="constant")  # fmt: skip
    cases = {
        "full fine-tune, crop+flip": base,
        "head only, augment none": base.replace(augment="none", frozen_units=n_units - 1),
        "last 3 units, augment none": base.replace(augment="none", frozen_units=n_units - 3),
    }
    workers = [int(w) for w in args.loader_workers.split(",") if w != ""]
    images = len(data) * args.epochs
    for name, config in cases.items():
        run_fit(data.subset(torch.arange(min(256, len(data)))), config.replace(epochs=1))  # warm-up
        times = {"fit": best_of(args.repeats, lambda c=config: run_fit(data, c)),
                 "bare": best_of(args.repeats, lambda c=config: run_bare(data, c))}  # fmt: skip
        for w in workers:
            times[f"loader(w{w})"] = best_of(
                args.repeats, lambda c=config, w=w: run_loader(data, c, w)
            )
        if device.type == "cpu" and config.channels_last and workers:
            w = workers[0]
            times[f"loader(w{w},NHWC)"] = best_of(
                args.repeats, lambda c=config, w=w: run_loader(data, c, w, same_format=True)
            )
        print(f"\n== {name} ==")
        for method, seconds in times.items():
            print(f"  {method:17s} {images / seconds:10.0f} images/s   ({seconds:.3f} s)")
        print(f"  fit / bare = {times['bare'] / times['fit']:.2f}x")
        for method in (m for m in times if m.startswith("loader")):
            print(f"  fit / {method} = {times[method] / times['fit']:.2f}x")
        if device.type == "cuda":
            flops = train_flops_per_image(config, tuple(data.images.shape[1:]))
            peak = next(
                (v for k, v in PEAK_BF16.items() if k in torch.cuda.get_device_name(device)), None
            )
            achieved = flops * images / times["fit"]
            share = (
                f"{100 * achieved / peak:.2f} % of {peak / 1e12:.0f} TFLOP/s"
                if peak
                else "peak unknown"
            )
            print(
                f"  fit: {flops / 1e6:.2f} MFLOP per image (trained part), {achieved / 1e12:.3f} TFLOP/s, {share}"
            )


if __name__ == "__main__":
    main()
