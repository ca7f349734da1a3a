"""What a notebook says about the runs of its grids that failed, and verdicts on partial grids.

:func:`survey_lib.runner.run_grid` records a failed run under ``failed/<run_id>.json`` and lists
the failures of a call in ``df.attrs["failed"]``. A notebook calls :func:`report_failures` after
each grid: it prints how many runs failed with their messages, and stops with those messages
when no run finished (instead of a ``KeyError`` in the next cell). Verdicts computed while runs
are missing are marked by :func:`survey_lib.experiments.verdicts.mark_incomplete`
(``complete = False`` and a note in the bound text).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd


class GridFailed(RuntimeError):
    """Every run of a grid failed (or the grid was empty); the message quotes the failures."""


def _brief(params: Mapping[str, Any]) -> str:
    """The parameters that tell runs of one grid apart: scalars, and the name of a target."""
    shown = {}
    for key, value in params.items():
        if key == "checkpoint_dir":
            continue
        if isinstance(value, Mapping) and "name" in value:
            shown[key] = value["name"]
        elif not isinstance(value, (Mapping, list)):
            shown[key] = value
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def failure_message(failure: Mapping[str, Any]) -> str:
    """One line for a failure record: its kind and message (or the failed step's values)."""
    failure = dict(failure)
    kind = failure.pop("kind", "failure")
    failure.pop("traceback", None)
    message = failure.pop("message", None)
    if message is None:
        message = json.dumps(failure, default=str, sort_keys=True)
    return f"{kind}: {str(message).strip().splitlines()[-1] if str(message).strip() else ''}"


def report_failures(df: pd.DataFrame, grid: str, *, limit: int = 10) -> int:
    """Print how many runs of ``grid`` failed in this call and why; return that number.

    Raises:
        GridFailed: no run of the grid finished (every one failed, or the grid was empty).
    """
    failed: Sequence[Mapping[str, Any]] = df.attrs.get("failed", [])
    finished = int(df["run_id"].nunique()) if len(df) and "run_id" in df else 0
    lines = [
        "  - "
        + ", ".join(x for x in (_brief(f.get("params", {})), f"seed={f.get('seed')}") if x)
        + f": {failure_message(f.get('failure') or {})}"
        for f in failed[:limit]
    ]
    if len(failed) > limit:
        lines.append(f"  - ... and {len(failed) - limit} more (see {grid}/failed/*.json)")
    if failed:
        print(f"{grid}: {len(failed)} of {len(failed) + finished} runs failed:", *lines, sep="\n")
    if finished == 0:
        why = "\n".join(lines) if lines else "  (the grid has no runs: check the parameters)"
        raise GridFailed(f"{grid}: no run finished ({len(failed)} failed):\n{why}")
    return len(failed)


__all__ = [
    "GridFailed",
    "failure_message",
    "report_failures",
]
