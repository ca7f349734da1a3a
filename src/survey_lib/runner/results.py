"""Tidy long-form results: one row per run × metric, read from the per-run JSON records.

Wickham, "Tidy Data", Journal of Statistical Software 59(10), 2014,
https://doi.org/10.18637/jss.v059.i10: each variable a column, each observation a row, so
seaborn and :func:`survey_lib.runner.aggregate` take the table as it is.

On disk the table is stored normalised, as Wickham's section 3.4 ("multiple types in one
table") asks: ``runs.csv`` holds one row per run (its parameters, seed and code version) and
``results.csv`` one row per run × metric (``run_id, metric, value``);
:func:`read_results_csv` joins them back into the tidy table.
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

from survey_lib.io import atomic_write_text

#: columns of the slim ``results.csv``; the other columns of the tidy table are in ``runs.csv``.
METRIC_COLUMNS = ("run_id", "metric", "value")
#: file names of the two exports of a grid (see :func:`write_results_csv`).
RUNS_CSV, RESULTS_CSV = "runs.csv", "results.csv"

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


def write_results_csv(folder: str | os.PathLike[str], df: pd.DataFrame) -> None:
    """Write the tidy table ``df`` (see :func:`tidy`) normalised into ``folder``, atomically:
    ``runs.csv`` (``run_id, <params>, seed, code_version``, one row per run) and
    ``results.csv`` (``run_id, metric, value``, one row per run × metric)."""
    missing = [c for c in ("run_id", "seed", "metric", "value", "code_version") if c not in df]
    if missing:
        raise ValueError(f"not a tidy results table (see tidy()): missing column(s) {missing}")
    folder = Path(folder)
    run_cols = [c for c in df.columns if c not in ("metric", "value")]
    runs = df[run_cols].drop_duplicates("run_id")
    atomic_write_text(folder / RUNS_CSV, runs.to_csv(index=False))
    atomic_write_text(folder / RESULTS_CSV, df[list(METRIC_COLUMNS)].to_csv(index=False))


def read_results_csv(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """The tidy table a grid exported (see :func:`write_results_csv`): ``results.csv`` joined
    with ``runs.csv`` on ``run_id``, columns ``run_id, <params>, seed, metric, value,
    code_version`` in the order of ``results.csv``, as :func:`survey_lib.runner.run_grid`
    returned it (list/dict parameters as JSON strings). A folder written before ``runs.csv``
    existed (a ``results.csv`` holding every column) is read as it is.

    Raises:
        FileNotFoundError: ``folder`` has no ``results.csv``, or a slim one without
            ``runs.csv``.
        ValueError: ``results.csv`` names runs that ``runs.csv`` lacks.
    """
    folder = Path(folder)
    path = folder / RESULTS_CSV
    if not path.is_file():
        raise FileNotFoundError(f"no {RESULTS_CSV} in {folder}: run_grid writes it there")
    ids = {"run_id": str, "code_version": str, "metric": str}
    metrics = pd.read_csv(path, dtype=ids)
    if list(metrics.columns) != list(METRIC_COLUMNS):
        return metrics  # the earlier, wide export: already the tidy table
    runs_path = folder / RUNS_CSV
    if not runs_path.is_file():
        raise FileNotFoundError(
            f"{path} holds only {', '.join(METRIC_COLUMNS)}; its runs' parameters belong in "
            f"{runs_path}, which is missing (re-run the grid to write both)"
        )
    runs = pd.read_csv(runs_path, dtype=ids)
    unknown = sorted(set(metrics["run_id"]) - set(runs["run_id"]))
    if unknown:
        raise ValueError(
            f"{path} names {len(unknown)} run(s) missing from {runs_path}, e.g. {unknown[:3]}; "
            "the two files come from different run_grid calls (re-run the grid)"
        )
    df = metrics.merge(runs, on="run_id", how="left", validate="many_to_one", sort=False)
    params = [c for c in runs.columns if c not in ("run_id", "seed", "code_version")]
    return df[["run_id", *params, "seed", "metric", "value", "code_version"]]
