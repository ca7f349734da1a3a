"""Rank correlations over few units on constructed inputs with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from survey_lib.experiments.rank_stats import rank_correlation


def _frame(y_by_unit: dict[int, float], seeds=range(4), noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"unit": u, "x": u, "y": y + rng.normal(0, noise), "seed": s}
                         for s in seeds for u, y in y_by_unit.items()])


def test_four_units_cannot_reach_five_percent() -> None:
    r = rank_correlation(_frame({1: 4.0, 2: 3.0, 3: 2.0, 4: 1.0}), x="x", y="y", unit="unit",
                         n_boot=200)
    assert r.estimate == pytest.approx(-1.0)
    assert r.min_p == pytest.approx(2 / 24) and r.p_value == pytest.approx(2 / 24)
    assert r.n_units == 4 and r.n_seeds == 4


def test_estimate_matches_scipy_and_interval_is_clipped() -> None:
    frame = _frame({1: 1.0, 2: 3.0, 3: 2.0, 4: 5.0, 5: 4.0, 6: 6.0}, noise=0.3)
    r = rank_correlation(frame, x="x", y="y", unit="unit", n_boot=300)
    means = frame.groupby("unit")[["x", "y"]].mean()
    assert r.estimate == pytest.approx(stats.spearmanr(means.x, means.y).statistic)
    assert -1.0 <= r.low <= r.estimate <= r.high <= 1.0
    assert r.min_p == pytest.approx(2 / 720)


def test_incomplete_grid_is_rejected() -> None:
    frame = _frame({1: 1.0, 2: 2.0, 3: 3.0}).iloc[1:]
    with pytest.raises(ValueError, match="needs every"):
        rank_correlation(frame, x="x", y="y", unit="unit", n_boot=10)
