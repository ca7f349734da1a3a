"""scripts/compare_precision.py and scripts/compare_batching.py on committed tables (issue 13's
fp32-vs-bf16 and sequential-vs-batched checks)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_a_table_against_itself_agrees_and_a_changed_verdict_fails(
    tmp_path: Path, load_script
) -> None:
    script = load_script("compare_precision")
    fp32 = ROOT / "results" / "cpu-fp32"
    out = tmp_path / "cmp.csv"
    assert script.main(["--fp32", str(fp32), "--bf16", str(fp32), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert table["same_verdict"].all() and len(table) >= 10
    assert set(table["notebook"]) == set(script.NOTEBOOKS)
    changed = tmp_path / "changed"
    shutil.copytree(fp32, changed)
    path = changed / "l2sp_vs_bss" / "verdicts.csv"
    verdicts = pd.read_csv(path)
    verdicts.loc[0, "verdict"] = "reversed" if verdicts.loc[0, "verdict"] != "reversed" else "reproduced"
    verdicts.to_csv(path, index=False)
    assert script.main(["--fp32", str(fp32), "--bf16", str(changed), "--out", str(out)]) == 1
    assert (~pd.read_csv(out)["same_verdict"]).sum() == 1


def test_a_run_against_itself_passes_and_a_moved_estimate_fails(
    tmp_path: Path, load_script
) -> None:
    script = load_script("compare_batching")
    seq = ROOT / "results" / "cpu-fp32"
    out = tmp_path / "cmp.csv"
    args = ["--sequential", str(seq), "--notebooks", "l2sp_vs_bss", "--out", str(out)]
    assert script.main([*args, "--batched", str(seq)]) == 0
    table = pd.read_csv(out)
    assert table["same_verdict"].all() and table["inside_first"].all() and len(table) == 4
    # the same verdicts, but one estimate moved outside its sequential interval: fails
    moved = tmp_path / "moved" / "l2sp_vs_bss"
    shutil.copytree(seq / "l2sp_vs_bss", moved)
    verdicts = pd.read_csv(moved / "verdicts.csv")
    width = verdicts["ci_high"] - verdicts["ci_low"]
    verdicts.loc[0, ["mean", "ci_low", "ci_high"]] += 2 * float(width.iloc[0]) + 1.0
    verdicts.to_csv(moved / "verdicts.csv", index=False)
    assert script.main([*args, "--batched", str(tmp_path / "moved")]) == 1
    assert not pd.read_csv(out)["inside_first"].iloc[0]
    with pytest.raises(FileNotFoundError, match="batched run's tables"):
        script.main([*args, "--batched", str(tmp_path / "nothing")])
