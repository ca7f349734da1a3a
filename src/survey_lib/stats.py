"""Small-sample statistics used to report every result: mean and 95 % Student-t interval.

For ``n`` seeds with mean :math:`\\bar x` and sample standard deviation :math:`s`, the
two-sided interval is :math:`\\bar x \\pm t_{1-\\alpha/2,\\,n-1}\\, s/\\sqrt{n}`. With ``n = 1``
the interval is undefined and is returned as NaN (never as zero width).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy import stats as _sps


def t_interval(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float, int]:
    """Mean and two-sided Student-t confidence interval.

    Args:
        values: the per-seed measurements (NaNs are rejected).
        confidence: coverage of the interval, in (0, 1).

    Returns:
        ``(mean, low, high, n)``; ``low``/``high`` are NaN when ``n < 2``.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        raise ValueError("t_interval needs at least one value, got none")
    if np.isnan(arr).any():
        raise ValueError("t_interval got NaN values; drop failed runs before aggregating")
    n = int(arr.size)
    mean = float(arr.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(_sps.t.ppf(0.5 + confidence / 2.0, n - 1) * arr.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


def t_errorbar(values: Iterable[float]) -> tuple[float, float]:
    """``(low, high)`` of the 95 % t-interval, for seaborn's ``errorbar=`` argument."""
    _, low, high, _ = t_interval(values)
    return low, high
