"""scripts/compare_batching.py (issue 13's sequential-vs-batched check) on committed tables."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("compare_batching",
                                                  ROOT / "scripts" / "compare_batching.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_run_against_itself_passes_and_a_moved_estimate_fails(tmp_path: Path) -> None:
    script = _script()
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
