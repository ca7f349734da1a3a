"""Mean and Student-t confidence interval of every metric per group of runs.

For the :math:`n` seeds of a cell with values :math:`x_1..x_n`,

.. math::
    \\bar x \\pm t_{1-\\alpha/2,\\,n-1}\\,\\frac{s}{\\sqrt n},

computed by :func:`survey_lib.stats.t_interval` (NaN bounds when :math:`n = 1`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from survey_lib.stats import t_interval

COLUMNS = ("metric", "mean", "ci_low", "ci_high", "ci_half", "n")


def aggregate(
    df: pd.DataFrame,
    by: str | Sequence[str],
    *,
    metric: str | Sequence[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Summarise a tidy results table (see :func:`survey_lib.runner.load_results`).

    Args:
        df: one row per run × metric, with columns ``by``, ``metric`` and ``value``.
        by: the column(s) defining a cell, e.g. ``["method", "n_per_class"]``.
        metric: keep only this metric (or these metrics); ``None`` keeps all.
        confidence: coverage of the t-interval.

    Returns:
        Columns ``by + [metric, mean, ci_low, ci_high, ci_half, n]``, one row per cell and
        metric, sorted by them; ``ci_half = (ci_high - ci_low) / 2``.
    """
    by = [by] if isinstance(by, str) else list(by)
    missing = [c for c in [*by, "metric", "value"] if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the table; it has {list(df.columns)}")
    if "metric" in by:
        by.remove("metric")
    if metric is not None:
        wanted = [metric] if isinstance(metric, str) else list(metric)
        unknown = sorted(set(wanted) - set(df["metric"]))
        if unknown:
            raise ValueError(
                f"metrics {unknown} not in the table; it has {sorted(set(df['metric']))}"
            )
        df = df[df["metric"].isin(wanted)]
    rows = []
    for key, group in df.groupby([*by, "metric"], sort=True, dropna=False):
        try:
            mean, low, high, n = t_interval(group["value"].to_numpy(dtype=float), confidence)
        except ValueError as exc:
            raise ValueError(f"cell {dict(zip([*by, 'metric'], key))}: {exc}") from exc
        rows.append((*key, mean, low, high, (high - low) / 2, n))
    return pd.DataFrame(rows, columns=[*by, *COLUMNS])
