"""LogME against a slow, direct maximisation of the Gaussian marginal likelihood (synthetic data).

The direct reference never uses the SVD fixed point: for each class column y it maximises

    log N(y; 0, alpha^{-1} F F^T + beta^{-1} I_N)

over (log alpha, log beta) with scipy, building the N x N covariance explicitly. This is the
same quantity as the evidence in the LogME paper (Bayesian linear regression with the weights
integrated out), written in a different way.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

from survey_lib.transferability import logme


def _direct_log_evidence(f: np.ndarray, y: np.ndarray) -> float:
    n = f.shape[0]
    gram = f @ f.T

    def negative(log_params: np.ndarray) -> float:
        alpha, beta = np.exp(log_params)
        cov = gram / alpha + np.eye(n) / beta
        return -float(multivariate_normal.logpdf(y, mean=np.zeros(n), cov=cov))

    best = None
    for start in ([0.0, 0.0], [2.0, 1.0], [-2.0, 2.0]):
        res = minimize(
            negative,
            np.array(start),
            method="Nelder-Mead",
            options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000},
        )
        if best is None or res.fun < best.fun:
            best = res
    return -best.fun / n


def _direct_logme(f: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    return float(
        np.mean([_direct_log_evidence(f, (labels == c).astype(float)) for c in range(num_classes)])
    )


def _problem(
    n: int, d: int, num_classes: int, seed: int, rank: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic features that carry some (not perfect) information about the labels."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    means = rng.normal(size=(num_classes, d))
    f = means[labels] + 1.5 * rng.normal(size=(n, d))
    if rank is not None:  # project onto a random rank-r subspace of R^D
        basis = np.linalg.qr(rng.normal(size=(d, rank)))[0]
        f = f @ basis @ basis.T
    return f, labels


@pytest.mark.parametrize(
    ("n", "d", "num_classes", "rank"),
    [
        (40, 6, 3, None),  # N > D, full rank: interior maximum
        (30, 20, 3, 8),  # rank F < D < N: null directions of F^T F enter log|A|
        (20, 30, 2, None),  # N < D: y lies in the span of F, supremum at beta -> infinity
    ],
)
def test_logme_matches_direct_evidence_maximisation(
    n: int, d: int, num_classes: int, rank: int | None
) -> None:
    f, labels = _problem(n, d, num_classes, seed=n + d, rank=rank)
    fast = logme(f, labels, num_classes=num_classes)
    slow = _direct_logme(f, labels, num_classes)
    assert fast == pytest.approx(slow, rel=1e-3)
    # The fixed point is a maximum: the direct optimiser cannot beat it by more than round-off.
    assert slow <= fast + 1e-6


def test_logme_is_invariant_to_feature_scale() -> None:
    # Rescaling F is absorbed by alpha, so the maximum evidence is unchanged.
    f, labels = _problem(50, 5, 3, seed=1)
    assert logme(10.0 * f, labels, num_classes=3) == pytest.approx(
        logme(f, labels, num_classes=3), rel=1e-6
    )


def test_logme_prefers_informative_features() -> None:
    rng = np.random.default_rng(2)
    labels = np.arange(90) % 3
    informative = np.eye(3)[labels] * 3.0 + rng.normal(size=(90, 3))
    noise = rng.normal(size=(90, 3))
    assert logme(informative, labels, num_classes=3) > logme(noise, labels, num_classes=3) + 0.2
