"""scripts/compare_precision.py on the committed fp32 tables (issue 13's fp32-vs-bf16 check)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("compare_precision",
                                                  ROOT / "scripts" / "compare_precision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_table_against_itself_agrees_and_a_changed_verdict_fails(tmp_path: Path) -> None:
    script = _script()
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
