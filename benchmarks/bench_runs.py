"""Runs per second: fp32 vs bf16 sequential ``fit``, and ``fit_many`` at K = 1, 4, 8, 16.

A script, not a test (``make bench``). For alexnet_small and resnet_small, with every unit
trained and with the first 4 units frozen, it times complete small training runs (random uint8
images shaped like Fashion-MNIST, speed only; ``augment="none"`` as in the Yosinski protocol)
in one process:

* sequential ``fit``, fp32 (``amp_bf16=False``) and bf16 (``amp_bf16=True``; on a CPU without
  native bf16 this is fp32 and is labelled so);
* ``fit_many`` at each K, in both precisions;

and prints runs/s and the ratios bf16/fp32 (sequential) and fit_many at K over the best
sequential setting (each side in its faster precision). On CUDA it also prints images/s and the
share of the device's bf16 peak (FLOPs of the trained part, counted by
``torch.utils.flop_counter``). Each setting's time is the best of ``--repeats``, and the
repeats are interleaved (every setting once, then every setting again), so a machine that slows
down or speeds up during the bench (a virtual machine's neighbours, turbo clocks) moves all
settings alike instead of the ones timed last; the load average is printed. On this project's
2-core virtual machines two benches minutes apart have differed by up to 30 % in one ratio:
read the ratios of a single bench as +-0.2, and repeat it before deciding anything on a ratio
near 1.

Run size: a run of the cpu Yosinski protocol is 1,500 images x 6 epochs (about 70 steps of
128); the default 4,096 images x 1 epoch is 32 steps. With much shorter runs the fixed cost of
a run (building the model and optimiser, the first-call warm-up of oneDNN's kernels) dominates
and hides the arithmetic: on this repository's 2-core AVX-512 machine bf16/fp32 was 0.99x at
512 images (4 steps) and 1.46x at 4,096 images (alexnet_small, all units trained).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from survey_lib.data.base import ImageDataset
from survey_lib.models import create_model
from survey_lib.train import TrainConfig, fit
from survey_lib.train.batched import fit_many
from survey_lib.train.precision import resolve_precision

#: the clock timings read: wall time, or the process's CPU time (``--clock cpu``), a steadier
#: measure of work on a machine shared with other jobs (with T threads, CPU seconds are up to T
#: times wall seconds: compare ratios, not absolute rates, between the two clocks).
CLOCK = [time.perf_counter]

PEAK_BF16 = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12}


def data(n: int, seed: int, size: int) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, size, size), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    return ImageDataset("random", "train", images, labels, tuple(str(i) for i in range(10)))


def models(name: str, k: int) -> list[torch.nn.Module]:
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        out.append(create_model(name, num_classes=10, in_chans=1))
    return out


def cpu_name() -> str:
    """The CPU's model name and its bf16/AMX flags (from /proc/cpuinfo where it exists): the
    ratios depend on the chip, so the bench says which one it measured."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or "cpu"
    name = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                 if ln.startswith("model name")), platform.processor() or "cpu")  # fmt: skip
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])  # fmt: skip
    shown = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{name}; {' '.join(shown) or 'no native bf16 flags'}"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_sequential(name, trains, config) -> float:
    nets = models(name, len(trains))
    sync(config.device)
    t0 = CLOCK[0]()
    for i, (net, train) in enumerate(zip(nets, trains)):
        fit(net, train, None, config.replace(seed=i), progress=False)
    sync(config.device)
    return CLOCK[0]() - t0


def time_many(name, trains, config) -> float:
    nets = models(name, len(trains))
    configs = [config.replace(seed=i) for i in range(len(trains))]
    sync(config.device)
    t0 = CLOCK[0]()
    out = fit_many(nets, trains, None, configs, progress=False)
    sync(config.device)
    assert all(r.batched_runs == len(trains) for r in out)
    return CLOCK[0]() - t0


def flops_per_image(name: str, config: TrainConfig, size: int) -> float:
    model = create_model(name, num_classes=10, in_chans=1).to(config.device)
    x = torch.randn(16, 1, size, size, device=config.device)
    with torch.no_grad():
        h = model.forward_units(x, 0, config.frozen_units)
    counter = FlopCounterMode(display=False)
    with counter:
        logits = model.forward_units(h, config.frozen_units)
        F.cross_entropy(logits, torch.zeros(16, dtype=torch.long, device=config.device)).backward()
    return counter.get_total_flops() / 16


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--models", default="alexnet_small,resnet_small")
    p.add_argument("--n-train", type=int, default=4096,
                   help="images per run (see the module docstring for why 4096)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--ks", default="1,4,8,16")
    p.add_argument("--seq-runs", type=int, default=4, help="runs timed per sequential setting")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall time, or process CPU time (steadier on a shared machine)")
    args = p.parse_args()
    if args.clock == "cpu":
        CLOCK[0] = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    ks = [int(k) for k in args.ks.split(",")]
    cuda = args.device.startswith("cuda")
    dev_name = torch.cuda.get_device_name() if cuda else cpu_name()
    print(f"device={args.device} ({dev_name}), threads={torch.get_num_threads()}, "
          f"cores={os.cpu_count()}, load avg={os.getloadavg()}")  # fmt: skip
    print(f"per run: {args.n_train} images x {args.epochs} epoch(s), batch {args.batch_size}, "
          f"{args.size} px, augment none; bf16 resolves to "
          f"{resolve_precision(args.device, True)} here; clock={args.clock}")  # fmt: skip
    pool = [data(args.n_train, seed, args.size) for seed in range(max(ks + [args.seq_runs]))]
    for name in args.models.split(","):
        for frozen in (0, 4):
            base = TrainConfig(epochs=args.epochs, lr=0.01, batch_size=args.batch_size,
                               augment="none", device=args.device, frozen_units=frozen,
                               schedule="constant")  # fmt: skip
            time_sequential(name, pool[:1], base.replace(amp_bf16=True))  # warm-up
            settings = [("sequential", 0, amp) for amp in (False, True)]
            settings += [("fit_many", k, amp) for k in ks for amp in (False, True)]
            seconds = {setting: float("inf") for setting in settings}
            for _ in range(args.repeats):  # interleaved: every setting once per repeat
                for setting in settings:
                    way, k, amp = setting
                    c = base.replace(amp_bf16=amp)
                    if way == "sequential":
                        t = time_sequential(name, pool[: args.seq_runs], c)
                    else:
                        t = time_many(name, pool[:k], c)
                    seconds[setting] = min(seconds[setting], t)
            rates = {}
            for (way, k, amp), t in seconds.items():
                label = f"{way} {'bf16' if amp else 'fp32'}" if way == "sequential" else (
                    f"fit_many K={k} {'bf16' if amp else 'fp32'}")  # fmt: skip
                rates[label] = (args.seq_runs if way == "sequential" else k) / t
            print(f"\n== {name}, {'all units trained' if not frozen else '4 units frozen'} ==")
            flops = flops_per_image(name, base, args.size) if cuda else None
            peak = next((v for key, v in PEAK_BF16.items() if key in dev_name), None)
            for label, rate in rates.items():
                line = f"  {label:22s} {rate:8.2f} runs/s"
                images = rate * args.n_train * args.epochs
                line += f"  {images:10.0f} images/s"
                if flops is not None:
                    share = f"{100 * flops * images / peak:.2f} % of bf16 peak" if peak else ""
                    line += f"  {share}"
                print(line)
            best_seq = max(rates["sequential bf16"], rates["sequential fp32"])
            print(f"  bf16 / fp32 (sequential): "
                  f"{rates['sequential bf16'] / rates['sequential fp32']:.2f}x")  # fmt: skip
            for k in ks:
                best_many = max(rates[f"fit_many K={k} bf16"], rates[f"fit_many K={k} fp32"])
                print(f"  fit_many K={k} / best sequential: {best_many / best_seq:.2f}x")


if __name__ == "__main__":
    main()
