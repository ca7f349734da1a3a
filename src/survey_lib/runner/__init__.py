"""Experiment runner: resumable grids of runs, tidy results, aggregation with t-intervals."""

from survey_lib.runner.aggregate import aggregate
from survey_lib.runner.grid import (
    ManyFn,
    RunFailed,
    RunOutput,
    expand_grid,
    resolve_params,
    run_grid,
    run_id,
)
from survey_lib.runner.results import CorruptRecord, load_results, read_results_csv, tidy

__all__ = [
    "CorruptRecord",
    "ManyFn",
    "RunFailed",
    "RunOutput",
    "aggregate",
    "expand_grid",
    "load_results",
    "read_results_csv",
    "resolve_params",
    "run_grid",
    "run_id",
    "tidy",
]
