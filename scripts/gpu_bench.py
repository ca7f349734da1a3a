"""Warm training-step times at the gpu protocols' shapes (called by ``scripts/gpu_check.sh``).

Times ``survey_lib.train.fit`` steps on random uint8 images of the protocols' shapes (timing
only: no result of this script is a result of the survey; nothing is downloaded):

* alexnet_small, batch 256, 28 px, all units trained and the first 4 frozen (Yosinski);
* resnet_small, batch 64, 32 px, crop augmentation, with L2, L2-SP, BSS and DELTA penalties
  (the regularizer comparison) and batch 128 with L2 (source training);
* 1, 2, 4 and 8 concurrent worker processes on one GPU for two of them (aggregate images/s);
* one DELTA channel-attention chunk of a random-init timm resnet50 at 224 px and one bf16
  channels-last training step of it.

Writes ``step_times.json`` (the format :mod:`survey_lib.estimate` reads) and ``report.txt``
into ``--out``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import torch

CONFIGS: dict[str, dict[str, Any]] = {
    "alexnet_small/b256/frozen0/l2": {"model": "alexnet_small", "bs": 256, "size": 28,
                                      "frozen": 0, "method": "l2", "augment": "none"},
    "alexnet_small/b256/frozen4/l2": {"model": "alexnet_small", "bs": 256, "size": 28,
                                      "frozen": 4, "method": "l2", "augment": "none"},
    "resnet_small/b128/frozen0/l2": {"model": "resnet_small", "bs": 128, "size": 32,
                                     "frozen": 0, "method": "l2", "augment": "crop"},
    "resnet_small/b64/frozen0/l2": {"model": "resnet_small", "bs": 64, "size": 32,
                                    "frozen": 0, "method": "l2", "augment": "crop"},
    "resnet_small/b64/frozen0/l2_sp": {"model": "resnet_small", "bs": 64, "size": 32,
                                       "frozen": 0, "method": "l2_sp", "augment": "crop"},
    "resnet_small/b64/frozen0/bss": {"model": "resnet_small", "bs": 64, "size": 32,
                                     "frozen": 0, "method": "l2+bss", "augment": "crop"},
    "resnet_small/b64/frozen0/delta": {"model": "resnet_small", "bs": 64, "size": 32,
                                       "frozen": 0, "method": "delta", "augment": "crop"},
}  # fmt: skip
HPARAMS = {
    "l2": {"alpha": 0.0005},
    "l2_sp": {"alpha": 0.1, "beta": 0.01},
    "l2+bss": {"l2__alpha": 0.0005, "bss__eta": 0.001, "bss__k": 1},
    "delta": {"alpha": 0.01, "beta": 0.01, "head_steps": 0},
}
SCALING = ("alexnet_small/b256/frozen0/l2", "resnet_small/b64/frozen0/l2")
WORKERS = (1, 2, 4, 8)


def _data(n: int, size: int, classes: int, seed: int):
    from survey_lib.data import ImageDataset

    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, classes, (n,), generator=g)
    return ImageDataset("timing", "train", images, labels, tuple(str(i) for i in range(classes)))


def time_steps(key: str, steps: int, device: str, barrier=None) -> float:
    """Seconds per warm step of configuration ``key`` (one fit of ``steps`` steps after a
    warm-up fit of 3)."""
    from survey_lib.experiments.common import new_model
    from survey_lib.gpu import configure_determinism
    from survey_lib.regularizers import create_regularizer
    from survey_lib.train import TrainConfig, fit

    c = CONFIGS[key]
    configure_determinism(device)
    source = new_model(c["model"], 47, 1, 0)
    model = new_model(c["model"], 47, 1, 1)
    model.load_state_dict(source.state_dict())
    source.to(device)
    spec = dict(HPARAMS[c["method"]])
    if c["method"] == "delta":
        x = torch.randn(64, 1, c["size"], c["size"], device=device)
        spec["attention_data"] = (x, torch.randint(0, 47, (64,), device=device))
    reg = create_regularizer(c["method"], source_model=source, target_model=model, **spec)

    def run(n_steps: int) -> float:
        config = TrainConfig.from_dict({
            "device": device, "epochs": 1, "batch_size": c["bs"], "lr": 0.01,
            "weight_decay": 0.0, "augment": c["augment"], "frozen_units": c["frozen"],
            "mean": (0.5,), "std": (0.25,), "seed": 0,
        })  # fmt: skip
        data = _data(n_steps * c["bs"], c["size"], 47, n_steps)
        start = time.perf_counter()
        result = fit(model, data, None, config, penalty=reg.penalty, progress=False)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if result.status != "ok":
            raise RuntimeError(f"{key}: {result.failure}")
        return (time.perf_counter() - start) / n_steps

    run(3)
    if barrier is not None:
        barrier.wait()
    return run(steps)


def _worker(args: tuple) -> float:
    key, steps, device, barrier = args
    torch.set_num_threads(1)
    return time_steps(key, steps, device, barrier)


def scaling(key: str, steps: int, device: str) -> dict[str, float]:
    """Images/s of all workers together at each worker count."""
    out: dict[str, float] = {}
    ctx = mp.get_context("spawn")
    bs = CONFIGS[key]["bs"]
    for w in WORKERS:
        with ctx.Manager() as manager:
            barrier = manager.Barrier(w)
            with ctx.Pool(w) as pool:
                times = pool.map(_worker, [(key, steps, device, barrier)] * w)
        out[str(w)] = w * bs / max(times)
    return out


def resnet50_checks(device: str) -> dict[str, float]:
    """A DELTA attention chunk (64 channels x 16 images, one layer) and a bf16 channels-last
    training step (batch 64) of a random-init timm resnet50 at 224 px."""
    from survey_lib.models import create_model
    from survey_lib.regularizers.delta_attention import channel_attention

    model = create_model("resnet50", num_classes=37, in_chans=3, weights=None).to(device)
    layer = [n for n, _ in model.units()][1]
    x = torch.randn(16, 3, 224, 224, device=device)
    y = torch.randint(0, 37, (16,), device=device)
    out: dict[str, float] = {}
    for _ in range(2):  # second pass is the warm one
        torch.cuda.synchronize()
        start = time.perf_counter()
        channel_attention(model, [layer], [(x, y)], max_chunk=64 * 16)
        torch.cuda.synchronize()
        out["resnet50_delta_attention_layer_s"] = time.perf_counter() - start
    out["resnet50_delta_attention_layer"] = layer
    model.train().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xb = torch.randn(64, 3, 224, 224, device=device).to(memory_format=torch.channels_last)
    yb = torch.randint(0, 37, (64,), device=device)
    for i in range(6):
        if i == 3:
            torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    torch.cuda.synchronize()
    out["resnet50_bf16_channels_last_b64_step_s"] = (time.perf_counter() - start) / 3
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    from survey_lib.gpu import cuda_facts

    facts = cuda_facts()
    step_seconds = {}
    for key in CONFIGS:
        step_seconds[key] = time_steps(key, args.steps, args.device)
        print(f"{key:<36} {step_seconds[key] * 1e3:8.2f} ms/step", flush=True)
    images_per_s = {key: scaling(key, args.steps, args.device) for key in SCALING}
    for key, row in images_per_s.items():
        print(f"{key:<36} images/s by workers: {row}", flush=True)
    speedup: dict[str, float] = {}
    for w in map(str, WORKERS):  # the smaller gain of the two configurations, per count
        speedup[w] = min(row[w] / row["1"] for row in images_per_s.values())
    extra = resnet50_checks(args.device) if args.device.startswith("cuda") else {}
    device_name = ", ".join(facts.get("devices", [])) or args.device
    result = {
        "source": f"scripts/gpu_check.sh on {device_name} (driver {facts['driver']}, "
        f"torch {facts['torch']}, CUDA {facts['torch.version.cuda']}), "
        f"{time.strftime('%Y-%m-%d')}, {args.steps} warm steps on random uint8 images",
        "device": device_name,
        "facts": facts,
        "step_seconds": step_seconds,
        "images_per_second_by_workers": images_per_s,
        "workers_speedup": speedup,
        "resnet50": extra,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    from survey_lib.io import atomic_write_json, atomic_write_text

    atomic_write_json(args.out / "step_times.json", result)
    best = max(speedup, key=lambda w: speedup[w])
    lines = [result["source"], ""]
    lines += [f"{k:<36} {v * 1e3:8.2f} ms/step" for k, v in step_seconds.items()]
    lines += ["", "workers per GPU -> throughput gain (smaller of the two configurations):"]
    lines += [f"  {w}: {g:.2f}x" for w, g in speedup.items()]
    lines += [f"suggested workers_per_gpu: {best}", ""]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    atomic_write_text(args.out / "report.txt", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
