"""Reference tests for the regularised (shrinkage) H-score of Ibrahim, Ponomareva and Mazumder
(ECML-PKDD 2022): tr(Sigma_lambda^-1 (1 - lambda) Sigma_between)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.covariance import LedoitWolf

from survey_lib.transferability import h_score


def _features(
    n: int, d: int, c: int, seed: int, spread: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    return spread * rng.normal(size=(c, d))[y] + rng.normal(size=(n, d)), y


def _formula(f: np.ndarray, y: np.ndarray, c: int, *, ddof_between: int) -> float:
    """The paper's formula written out independently: Ledoit-Wolf Sigma_lambda (ML estimate)
    and the covariance of the per-sample class means E[f | y] (``ddof_between`` = 1 is
    ``np.cov``, TLlib's convention; 0 is the maximum-likelihood one)."""
    fc = f - f.mean(axis=0)
    est = LedoitWolf().fit(fc)
    g = np.zeros_like(fc)
    for k in range(c):
        g[y == k] = fc[y == k].mean(axis=0)
    cov_g = np.cov(g, rowvar=False, ddof=ddof_between)
    return float(np.trace(np.linalg.pinv(est.covariance_) @ ((1 - est.shrinkage_) * cov_g)))


def test_issue_example_is_bounded_by_c_minus_one() -> None:
    # The issue's case: 50 samples of 512-d features in 10 classes. Without the (1 - lambda)
    # factor the score was above C - 1 = 9.
    f, y = _features(50, 512, 10, seed=0)
    value = h_score(f, y, num_classes=10, shrinkage="ledoit-wolf")
    assert 0.0 < value <= 9.0
    lam = LedoitWolf().fit(f - f.mean(axis=0)).shrinkage_
    assert lam > 0.05  # the case where the factor matters


@pytest.mark.parametrize(
    ("n", "d", "c", "seed"), [(50, 512, 10, 0), (80, 6, 4, 1), (200, 40, 5, 2)]
)
def test_equals_the_papers_formula_and_tllib_up_to_n_over_n_minus_one(
    n: int, d: int, c: int, seed: int
) -> None:
    f, y = _features(n, d, c, seed)
    ours = h_score(f, y, num_classes=c, shrinkage="ledoit-wolf")
    assert ours == pytest.approx(_formula(f, y, c, ddof_between=0), rel=1e-8)
    # TLlib's regularized_h_score uses np.cov (N - 1) for the between-class term.
    assert ours * n / (n - 1) == pytest.approx(_formula(f, y, c, ddof_between=1), rel=1e-8)


@pytest.mark.parametrize("shrinkage", [0.1, 0.5, 0.9, "ledoit-wolf"])
def test_never_exceeds_c_minus_one_or_d(shrinkage: float | str) -> None:
    for seed in range(5):
        for n, d, c in ((30, 100, 6), (60, 3, 8), (40, 40, 4)):
            f, y = _features(n, d, c, seed, spread=3.0)  # well separated: near the bound
            value = h_score(f, y, num_classes=c, shrinkage=shrinkage)
            assert -1e-12 <= value <= min(c - 1, d) + 1e-9


def test_fixed_shrinkage_closed_form_on_diagonal_covariances() -> None:
    # Two classes at +-m e_1 with an isotropic within-class spread: everything is diagonal and
    # the score is (1 - l) b / ((1 - l) s_1 + l mu) along e_1 only.
    d, lam = 4, 0.3
    base = np.array([[1.0, 0, 0, 0], [-1.0, 0, 0, 0]])
    noise = np.array(
        [
            [0, 1.0, 0, 0],
            [0, -1.0, 0, 0],
            [0, 0, 1.0, 0],
            [0, 0, -1.0, 0],
            [0, 0, 0, 1.0],
            [0, 0, 0, -1.0],
        ]
    )
    f = np.concatenate([base[k] + noise for k in (0, 1)])
    y = np.repeat([0, 1], len(noise))
    sigma = f.T @ f / len(f)
    mu = np.trace(sigma) / d
    b = 1.0  # between-class variance along e_1 (class means +-1, equal weights)
    expected = (1 - lam) * b / ((1 - lam) * sigma[0, 0] + lam * mu)
    assert h_score(f, y, num_classes=2, shrinkage=lam) == pytest.approx(expected, rel=1e-12)


def test_missing_factor_would_fail_this_test() -> None:
    # Guard against the old bug: the unscaled between-class term gives a different value.
    f, y = _features(50, 512, 10, seed=0)
    fc = f - f.mean(axis=0)
    est = LedoitWolf().fit(fc)
    g = np.zeros_like(fc)
    for k in range(10):
        g[y == k] = fc[y == k].mean(axis=0)
    unscaled = float(np.trace(np.linalg.pinv(est.covariance_) @ np.cov(g, rowvar=False, ddof=0)))
    ours = h_score(f, y, num_classes=10, shrinkage="ledoit-wolf")
    assert unscaled > 9.0
    assert ours == pytest.approx((1 - est.shrinkage_) * unscaled, rel=1e-8)
