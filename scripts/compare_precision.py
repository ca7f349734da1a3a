"""fp32 against bf16 on the same seeds: do the three reproductions' verdicts change? (issue 13)

A cpu protocol may switch to bf16 autocast only if that leaves its verdicts alone (issue 13).
Each of the three reproductions ran its cpu protocol twice on the same seeds, in fp32 and in
bf16 with nothing else changed; the tables of both runs (verdicts, per-seed values, driver and
grid records) are kept in ``results/cpu-fp32/<notebook>/`` and ``results/cpu-bf16/<notebook>/``.
This script compares every verdict table of the two
(:func:`survey_lib.experiments.verdicts.compare_verdicts`: same verdict? each mean inside the
other's 95 % t-interval?), prints the table and the notebooks' wall times, and writes
``results/cpu/precision_comparison.csv``; the exit status is 1 when a verdict differs.

    python scripts/compare_precision.py [--fp32 results/cpu-fp32] [--bf16 results/cpu-bf16]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from survey_lib.experiments.verdicts import compare_verdict_folders
from survey_lib.io import atomic_write_text

NOTEBOOKS = ("yosinski_layer_transfer", "kornblith_gains_vs_size", "l2sp_vs_bss")


def compare(fp32_root: Path, bf16_root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The claim-by-claim comparison of every verdict table, and the notebooks' wall times."""
    table = compare_verdict_folders(fp32_root, bf16_root, NOTEBOOKS, ("fp32", "bf16"))
    times = []
    for name in NOTEBOOKS:
        seconds = {}
        for label, root in (("fp32", fp32_root), ("bf16", bf16_root)):
            driver = json.loads((root / name / "driver.json").read_text())
            seconds[f"seconds_{label}"] = float(driver["seconds"])
        times.append({"notebook": name, **seconds,
                      "speed_up": seconds["seconds_fp32"] / seconds["seconds_bf16"]})
    return table, pd.DataFrame(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", type=Path, default=Path("results/cpu-fp32"))
    parser.add_argument("--bf16", type=Path, default=Path("results/cpu-bf16"))
    parser.add_argument("--out", type=Path, default=Path("results/cpu/precision_comparison.csv"))
    args = parser.parse_args(argv)
    table, times = compare(args.fp32, args.bf16)
    atomic_write_text(args.out, table.to_csv(index=False))
    shown = table[["notebook", "table", "claim", "verdict_fp32", "verdict_bf16", "mean_fp32",
                   "mean_bf16", "same_verdict", "inside_first", "inside_both"]].copy()
    shown["claim"] = shown["claim"].str.slice(0, 40)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(shown.round(3).to_string(index=False))
        print()
        print("driver.json seconds (a resumed notebook counts only its resume; runs that shared\n"
              "the machine count the sharing): no speed measurement, see benchmarks/bench_runs.py")
        print(times.round(2).to_string(index=False))
    same, n = int(table["same_verdict"].sum()), len(table)
    first, both = int(table["inside_first"].sum()), int(table["inside_both"].sum())
    print(f"\nsame verdict: {same} of {n} claims; bf16 estimate inside the fp32 interval: "
          f"{first} of {n}; each inside the other's: {both} of {n}; written {args.out}")
    return 0 if same == n else 1


if __name__ == "__main__":
    sys.exit(main())
