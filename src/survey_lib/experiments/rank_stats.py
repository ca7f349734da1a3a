"""Rank correlations over a handful of units (targets, source models), with statistics that fit.

A Spearman correlation over four targets can take only a few values, and with identical ranks
in every seed a t-interval over seeds has zero width: that says nothing about the targets.
Here the uncertainty comes from the units and the seeds together:

* the **estimate** is Spearman's :math:`\\rho` (Pearson's r of ``scipy.stats.rankdata`` ranks) of the seed-averaged
  values over the units, averaged over strata when there are strata (e.g. one correlation over
  source models per target);
* the **interval** is a 95 % percentile bootstrap that resamples seeds (the same draw for every
  unit: seeds pair the units) and then units (or strata) with replacement, recomputing the
  estimate; resamples where a correlation is undefined (a constant variable) are dropped and
  counted. The interval is clipped to :math:`[-1, 1]`. scipy's ``bootstrap`` resamples one
  level only, hence the two-level loop here;
* the **permutation p-value** (two-sided) is exact: all pairings of x with y over the units,
  or, with strata, every combination of within-stratum pairings, enumerated (scipy's
  ``permutation_test`` has no stratified option, and was far slower here for 6! pairings). Its
  smallest attainable value, ``min_p``, is what the design allows: for four units it is
  2/24 ≈ 0.083, so no number of seeds can make a four-target correlation significant at 5 %.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

N_BOOT = 2000


@dataclass(frozen=True)
class RankResult:
    """Estimate, clipped bootstrap interval and exact permutation p of a rank correlation."""

    estimate: float
    low: float
    high: float
    n_units: int
    n_seeds: int
    p_value: float
    min_p: float
    per_seed_sd: float
    dropped: int


def _rho_last(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's ρ along the last axis: Pearson's r of the average ranks
    (``scipy.stats.rankdata``), equal to ``scipy.stats.spearmanr`` and vectorised over the
    bootstrap draws; NaN where either variable is constant."""
    rx, ry = stats.rankdata(x, axis=-1), stats.rankdata(y, axis=-1)
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    den = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    return float(_rho_last(np.asarray(x, dtype=float), np.asarray(y, dtype=float)))


def _arrays(frame: pd.DataFrame, x: str, y: str, unit: str, strata: str | None,
            seed: str) -> tuple[np.ndarray, np.ndarray]:
    """``X[seed, stratum, unit]`` and ``Y`` (one stratum when ``strata`` is None)."""
    keys = [seed, strata or "_stratum", unit]
    frame = frame.assign(_stratum=0) if strata is None else frame
    means = frame.groupby(keys)[[x, y]].mean()
    shape = tuple(len(level) for level in means.index.remove_unused_levels().levels)
    if len(means) != math.prod(shape):
        raise ValueError(f"rank_correlation needs every {seed} × {keys[1]} × {unit}; "
                         f"got {len(means)} of {math.prod(shape)}")
    return means[x].to_numpy().reshape(shape), means[y].to_numpy().reshape(shape)


def _mean_rho(xs: np.ndarray, ys: np.ndarray) -> float:
    """Mean over strata (axis 0) of ρ over units (axis 1); NaN if any is undefined."""
    values = [_rho(a, b) for a, b in zip(xs, ys)]
    return math.nan if any(math.isnan(v) for v in values) else float(np.mean(values))


def _permutation(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float]:
    """Exact two-sided p of the mean ρ over strata (every combination of within-stratum
    pairings, enumerated), and its smallest attainable value."""
    per_group = []
    for a, b in zip(xs, ys):
        if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
            return math.nan, math.nan
        perms = np.array(list(itertools.permutations(range(len(b)))))
        per_group.append(_rho_last(np.broadcast_to(a, perms.shape), b[perms]))
    null = per_group[0]
    for extra in per_group[1:]:  # mean over strata of every combination
        null = (null[:, None] + extra[None, :]).ravel()
    null = np.abs(null / len(per_group))
    observed = abs(_mean_rho(xs, ys))
    return float(np.mean(null >= observed - 1e-12)), float(np.mean(null >= null.max() - 1e-12))


def rank_correlation(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    unit: str,
    strata: str | None = None,
    seed: str = "seed",
    seeds: Sequence[int] | None = None,
    n_boot: int = N_BOOT,
    rng_seed: int = 0,
) -> RankResult:
    """Spearman's ρ of ``x`` vs ``y`` over ``unit`` (see module doc), from one row per
    (stratum,) unit and seed; ``seeds`` restricts to those seeds (the split halves)."""
    missing = [c for c in [x, y, unit, seed, *([strata] if strata else [])]
               if c not in frame.columns]
    if missing:
        raise ValueError(f"rank_correlation: frame lacks columns {missing}")
    if seeds is not None:
        frame = frame[frame[seed].isin(list(seeds))]
    X, Y = _arrays(frame, x, y, unit, strata, seed)  # noqa: N806 (seed × stratum × unit)
    n_seeds, n_strata, n_units = X.shape
    est = _mean_rho(X.mean(0), Y.mean(0))
    per_seed = [v for v in (_mean_rho(X[i], Y[i]) for i in range(n_seeds)) if not math.isnan(v)]
    sd = float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else math.nan
    p, min_p = _permutation(X.mean(0), Y.mean(0))
    rng = np.random.default_rng(rng_seed)
    s_idx = rng.integers(0, n_seeds, (n_boot, n_seeds))
    xs, ys = X[s_idx].mean(1), Y[s_idx].mean(1)  # draw × stratum × unit
    if strata is None:  # resample the units of the single stratum
        u_idx = rng.integers(0, n_units, (n_boot, 1, n_units))
        xs, ys = np.take_along_axis(xs, u_idx, -1), np.take_along_axis(ys, u_idx, -1)
    else:  # resample strata
        t_idx = rng.integers(0, n_strata, (n_boot, n_strata))[:, :, None]
        xs, ys = np.take_along_axis(xs, t_idx, 1), np.take_along_axis(ys, t_idx, 1)
    values = _rho_last(xs, ys).mean(-1)  # NaN if any stratum's ρ is undefined
    dropped = int(np.isnan(values).sum())
    draws = values[~np.isnan(values)]
    if len(draws) < 2:
        low = high = math.nan
    else:
        low, high = (float(np.clip(q, -1.0, 1.0)) for q in np.percentile(draws, [2.5, 97.5]))
    return RankResult(est, low, high, n_units if strata is None else n_strata, n_seeds, p,
                      min_p, sd, dropped)
