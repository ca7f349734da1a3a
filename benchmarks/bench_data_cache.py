"""Time the first (parse + verify + cache write) and second (cache read) load of a dataset.

Not a test. Usage::

    python benchmarks/bench_data_cache.py [--dataset fashion_mnist] [--cache-dir DIR]

Without ``--cache-dir`` a fresh temporary cache is used, so the first load is a true cold load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--splits", nargs="+", default=["train", "test"])
    parser.add_argument("--cache-dir", default=None, help="default: a fresh temporary folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SURVEY_CACHE_DIR"] = args.cache_dir or tmp
        from survey_lib.data import get_dataset  # after the cache folder is set

        print(f"cache: {os.environ['SURVEY_CACHE_DIR']}")
        for split in args.splits:
            times = []
            for _ in range(2):
                start = time.perf_counter()
                dataset = get_dataset(args.dataset, split)
                times.append(time.perf_counter() - start)
            print(
                f"{args.dataset}/{split}: {len(dataset)} images {tuple(dataset.images.shape[1:])}, "
                f"first load {times[0]:.3f} s, second load {times[1]:.3f} s "
                f"(checksum {dataset.checksum})"
            )


if __name__ == "__main__":
    main()
