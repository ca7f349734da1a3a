"""Runs that failed to train, detected by a rule fixed in the protocol before results are read.

A run *failed to train* when its test accuracy is below

.. math:: c + f\\,(\\tilde a - c),

where :math:`c` is chance accuracy (1 / classes), :math:`\\tilde a` the median accuracy of the
runs of the same cell (same condition and depth over seeds) and :math:`f` the protocol's
fraction (default 0.5): the run reached less than half of the above-chance accuracy that the
cell's typical run reaches. Failed runs are counted and shown, never silently dropped; how a
verdict treats them (kept, a robust estimator, a normalised network) is the protocol's choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def flag_failed(
    runs: pd.DataFrame,
    *,
    by: Sequence[str],
    chance: float,
    acc: str = "acc",
    fraction: float = 0.5,
) -> pd.Series:
    """Boolean Series (index of ``runs``): the run failed to train (module doc's rule)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    if not 0.0 <= chance < 1.0:
        raise ValueError(f"chance must be in [0, 1), got {chance!r}")
    missing = [c for c in [*by, acc] if c not in runs.columns]
    if missing:
        raise ValueError(f"runs lack columns {missing}; have {list(runs.columns)}")
    median = runs.groupby(list(by))[acc].transform("median")
    return runs[acc] < chance + fraction * (median - chance)


def failure_counts(runs: pd.DataFrame, failed: pd.Series, *, by: Sequence[str]) -> pd.DataFrame:
    """Per group of ``by``: the number of runs and of failed runs (for the page)."""
    frame = runs.assign(failed=failed.astype(bool))
    return (frame.groupby(list(by))
            .agg(runs=("failed", "size"), failed=("failed", "sum"))
            .reset_index())
