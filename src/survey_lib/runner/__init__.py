"""Experiment runner: resumable grids of runs, tidy results, aggregation with t-intervals."""

from survey_lib.runner.aggregate import aggregate
from survey_lib.runner.grid import (
    RunFailed,
    RunOutput,
    expand_grid,
    resolve_params,
    run_grid,
    run_id,
)
from survey_lib.runner.results import load_results, tidy

__all__ = [
    "RunFailed",
    "RunOutput",
    "aggregate",
    "expand_grid",
    "load_results",
    "resolve_params",
    "run_grid",
    "run_id",
    "tidy",
]
