"""Tidy long-form results: one row per run × metric, read from the per-run JSON records.

Wickham, "Tidy Data", Journal of Statistical Software 59(10), 2014,
https://doi.org/10.18637/jss.v059.i10: each variable a column, each observation a row, so
seaborn and :func:`survey_lib.runner.aggregate` take the table as it is.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd


def read_record(path: Path) -> dict[str, Any]:
    """One run record (a JSON file written by run_grid)."""
    return json.loads(path.read_text())


def _cell(value: Any) -> Any:
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def tidy(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The tidy table of run records (see :func:`load_results`)."""
    param_cols: list[str] = []
    for rec in records:
        param_cols += [k for k in rec["params"] if k not in param_cols]
    columns = ["run_id", *param_cols, "seed", "metric", "value", "code_version"]
    rows = []
    for rec in records:
        base = {
            "run_id": rec["run_id"],
            **{k: _cell(rec["params"].get(k, math.nan)) for k in param_cols},
            "seed": rec["seed"],
        }
        code = rec.get("provenance", {}).get("code_version")
        for metric, value in rec["metrics"].items():
            rows.append({**base, "metric": metric, "value": float(value), "code_version": code})
    return pd.DataFrame(rows, columns=columns)


def load_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Tidy table of every finished run recorded under an experiment folder.

    Args:
        path: ``results_dir/name``.

    Returns:
        One row per run × metric: ``run_id, <param columns>, seed, metric, value,
        code_version``. List/dict parameter values appear as JSON strings. Runs of every code
        version on disk are included; filter on ``code_version`` (or use run_grid's return
        value) to keep one.
    """
    runs = Path(path) / "runs"
    if not runs.is_dir():
        raise FileNotFoundError(
            f"no results at {path}: expected a folder {runs} written by run_grid"
        )
    return tidy([read_record(p) for p in sorted(runs.glob("*.json"))])
