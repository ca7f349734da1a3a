"""Tidy long-form results: one row per run × metric, read from the per-run JSON records.

Wickham, "Tidy Data", Journal of Statistical Software 59(10), 2014,
https://doi.org/10.18637/jss.v059.i10: each variable a column, each observation a row, so
seaborn and :func:`survey_lib.runner.aggregate` take the table as it is.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

#: keys every record written by run_grid holds; a result record holds ``metrics`` too and a
#: failure record ``failure``.
RECORD_KEYS = ("run_id", "params", "seed")


class CorruptRecord(ValueError):
    """A run record that is not the complete JSON object run_grid writes (e.g. truncated)."""

    def __init__(self, path: Path, why: str) -> None:
        self.path, self.why = Path(path), why
        super().__init__(f"run record {path} is corrupt: {why}")


def read_record(path: Path, *, need: str | None = "metrics") -> dict[str, Any]:
    """One run record (a JSON file written by run_grid).

    Args:
        path: the record's file.
        need: the key that makes it a complete record of its kind (``"metrics"`` for
            ``runs/``, ``"failure"`` for ``failed/``; ``None``: only :data:`RECORD_KEYS`).

    Raises:
        CorruptRecord: the file is not valid UTF-8 JSON, not an object, lacks a key, or its
            ``run_id`` is not its file name.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptRecord(path, f"not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise CorruptRecord(path, f"a JSON {type(record).__name__}, not an object")
    missing = [k for k in (*RECORD_KEYS, *([need] if need else [])) if k not in record]
    if missing:
        raise CorruptRecord(path, f"missing key(s) {', '.join(missing)}")
    if record["run_id"] != path.stem:
        raise CorruptRecord(path, f"holds run {record['run_id']!r}, not {path.stem!r}")
    if need == "metrics" and (not isinstance(record["metrics"], dict) or not record["metrics"]):
        raise CorruptRecord(path, "metrics is not a non-empty object")
    return record


def quarantine(path: Path, experiment_dir: Path) -> Path:
    """Move an unreadable record aside into ``<experiment_dir>/corrupt/<runs|failed>/``
    (a time stamp is added when that name is taken); returns where it went."""
    path = Path(path)
    dest_dir = Path(experiment_dir) / "corrupt" / path.parent.name
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / path.name
    if dest.exists():
        dest = dest_dir / f"{path.stem}.{time.strftime('%Y%m%dT%H%M%S')}.{time.time_ns()}.json"
    os.replace(path, dest)
    return dest


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
        value) to keep one. A corrupt record is skipped with a warning naming it.
    """
    runs = Path(path) / "runs"
    if not runs.is_dir():
        raise FileNotFoundError(
            f"no results at {path}: expected a folder {runs} written by run_grid"
        )
    records = []
    for p in sorted(runs.glob("*.json")):
        try:
            records.append(read_record(p))
        except CorruptRecord as exc:  # left in place: run_grid moves it aside and re-runs it
            warnings.warn(f"{exc}; skipped (the next run_grid call re-runs it)", stacklevel=2)
    return tidy(records)
