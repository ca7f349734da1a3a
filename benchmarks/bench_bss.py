"""Cost of the BSS penalty relative to one training step, on CPU.

BSS (Chen et al., NeurIPS 2019) needs the singular values of the (B, D) batch feature matrix at
every step. This script times, for each default model at batch 128:

* a plain training step (forward, cross-entropy, backward, SGD update);
* the same step with the BSS penalty, singular values by ``svd`` and by ``gram`` (eigenvalues of
  the smaller Gram matrix);
* the penalty alone (its forward and backward on a fixed feature matrix).

and prints the overhead as a percentage of the plain step (goal: below 20 %). Steps are
interleaved and the median of ``--repeats`` runs is reported, since the machine may be shared.

Usage::

    python benchmarks/bench_bss.py --threads 1 --repeats 30
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from survey_lib.models import create_model
from survey_lib.regularizers import BSS


def time_call(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def make_step(model, inputs, labels, penalty) -> Callable[[], None]:
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        features = model.forward_features(inputs)
        loss = F.cross_entropy(model.forward_head(features), labels)
        if penalty is not None:
            loss = loss + penalty(features)
        loss.backward()
        optimizer.step()

    return step


def make_penalty_only(features: torch.Tensor, penalty) -> Callable[[], None]:
    def run() -> None:
        matrix = features.detach().requires_grad_(True)
        penalty(matrix).backward()

    return run


def bench_model(name: str, batch: int, size: int, in_chans: int, repeats: int) -> list[dict]:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_chans=in_chans).train()
    inputs = torch.randn(batch, in_chans, size, size)
    labels = torch.randint(0, 10, (batch,))
    with torch.no_grad():
        features = model.forward_features(inputs)
    variants = {
        "step": make_step(model, inputs, labels, None),
        "step+bss(svd)": make_step(model, inputs, labels, BSS(method="svd")),
        "step+bss(gram)": make_step(model, inputs, labels, BSS(method="gram")),
        "bss(svd) alone": make_penalty_only(features, BSS(method="svd")),
        "bss(gram) alone": make_penalty_only(features, BSS(method="gram")),
    }
    for fn in variants.values():  # warm-up
        fn()
        fn()
    times: dict[str, list[float]] = {key: [] for key in variants}
    for _ in range(repeats):
        for key, fn in variants.items():
            times[key].append(time_call(fn))
    base = statistics.median(times["step"])
    rows = []
    for key, values in times.items():
        median = statistics.median(values)
        if key == "step":
            overhead = 0.0
        elif key.startswith("step+"):
            overhead = 100 * (median - base) / base
        else:
            overhead = 100 * median / base
        rows.append(
            {
                "model": name,
                "feature_dim": int(features.shape[1]),
                "variant": key,
                "median_ms": 1000 * median,
                "pct_of_step": overhead,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["alexnet_small", "resnet_small"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=32, help="input side in pixels")
    parser.add_argument("--in-chans", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), batch {args.batch}, "
        f"{args.in_chans}x{args.size}x{args.size}, median of {args.repeats}"
    )
    print(f"{'model':<14}{'D':>5}  {'variant':<16}{'median ms':>10}{'% of step':>11}")
    for name in args.models:
        for row in bench_model(name, args.batch, args.size, args.in_chans, args.repeats):
            print(
                f"{row['model']:<14}{row['feature_dim']:>5}  {row['variant']:<16}"
                f"{row['median_ms']:>10.2f}{row['pct_of_step']:>10.1f}%"
            )
    print("'step+...' rows: extra time over the plain step; '... alone' rows: the penalty's")
    print("own forward+backward as a share of the plain step. Goal: below 20 %.")


if __name__ == "__main__":
    main()
