"""Sequential against batched training on the same seeds: do the verdicts change? (issue 13)

A cpu protocol may set ``batch_runs`` above 1 (its runs then train several at a time with
``fit_many``) only if that leaves its verdicts alone. The check, registered in the protocol's
``cpu.yaml`` before any batched result existed, runs the committed protocol again with
``batch_runs`` set and nothing else changed. This script compares every verdict table of the
two runs (:func:`survey_lib.experiments.verdicts.compare_verdicts`: same verdict? the batched
estimate inside the sequential 95 % interval? each inside the other's?), prints the table and
writes it (default ``results/cpu/batching_comparison.csv``); the exit status is 1 when a
verdict differs or a batched estimate falls outside its sequential interval (a claim the
protocol does not run, with no estimate in either run, has nothing to compare).

    python scripts/compare_batching.py [--sequential results/cpu-sequential]
        [--batched results/cpu-batched] [--notebooks yosinski_layer_transfer,l2sp_vs_bss]

The two runs' tables (verdicts, per-seed values, driver and grid records) are kept in
``results/cpu-sequential/<notebook>/`` and ``results/cpu-batched/<notebook>/``; ``results/cpu/``
holds the run each committed protocol now uses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from survey_lib.experiments.verdicts import compare_verdict_folders, has_estimate
from survey_lib.io import atomic_write_text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=Path, default=Path("results/cpu-sequential"))
    parser.add_argument("--batched", type=Path, default=Path("results/cpu-batched"))
    parser.add_argument("--notebooks", default="yosinski_layer_transfer,l2sp_vs_bss",
                        help="comma-separated names")
    parser.add_argument("--out", type=Path, default=Path("results/cpu/batching_comparison.csv"))
    args = parser.parse_args(argv)
    table = compare_verdict_folders(args.sequential, args.batched, args.notebooks.split(","),
                                    ("sequential", "batched"))
    atomic_write_text(args.out, table.to_csv(index=False))
    shown = table[["notebook", "table", "claim", "verdict_sequential", "verdict_batched",
                   "mean_sequential", "mean_batched", "same_verdict", "inside_first",
                   "inside_both"]].copy()  # fmt: skip
    shown["claim"] = shown["claim"].str.slice(0, 40)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(shown.round(3).to_string(index=False))
    same, n = int(table["same_verdict"].sum()), len(table)
    ran = has_estimate(table, ("sequential", "batched"))
    first = int(table["inside_first"][ran].sum())
    both = int(table["inside_both"][ran].sum())
    print(f"\nsame verdict: {same} of {n} claims; of the {int(ran.sum())} with an estimate, the "
          f"batched one lies inside the sequential interval for {first}, each inside the "
          f"other's for {both}; written {args.out}")
    return 0 if same == n and first == int(ran.sum()) else 1


if __name__ == "__main__":
    sys.exit(main())
