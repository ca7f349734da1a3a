"""The torch linear probe solves scikit-learn's problem: same coefficients, same accuracies."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from survey_lib.transfer import linear_probe
from survey_lib.transfer.linear_probe import TorchLogisticProbe

#: Stated tolerance: coefficients of the two solvers at a tight tol agree to 1e-4 relative to
#: their largest entry; accuracies on every split are equal.
COEF_TOL = 1e-4


def _problem(n: int, k: int, d: int, seed: int, noise: float = 2.0):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 1.5
    labels = rng.integers(0, k, size=n)
    x = centers[labels] + noise * rng.standard_normal((n, d)) + 3.0  # offset: scaling matters
    x[:, 0] = 7.0  # a constant feature (StandardScaler keeps scale 1)
    return x, labels


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("l2", [1e-2, 10.0])
def test_torch_coefficients_equal_sklearn_at_tight_tolerance(k: int, l2: float) -> None:
    x, y = _problem(120, k, 8, seed=k)
    reference = LogisticRegression(C=1.0 / (l2 * len(y)), tol=1e-10, max_iter=10_000)
    z = StandardScaler().fit_transform(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference.fit(z, y)
    probe = TorchLogisticProbe(max_iter=10_000, tol=1e-10)
    probe.l2 = l2
    probe.fit(x, y)
    assert probe.coef_.shape == reference.coef_.shape
    scale = np.abs(reference.coef_).max()
    np.testing.assert_allclose(probe.coef_, reference.coef_, atol=COEF_TOL * scale, rtol=0)
    np.testing.assert_allclose(
        probe.intercept_, reference.intercept_, atol=COEF_TOL * max(scale, 1.0), rtol=0
    )
    assert probe.score(x, y) == reference.score(z, y)


def test_linear_probe_torch_backend_matches_sklearn_backend() -> None:
    (xtr, ytr), (xva, yva), (xte, yte) = (
        _problem(n, 4, 8, seed=s) for n, s in ((80, 0), (40, 1), (100, 2))
    )
    kwargs = dict(
        num_classes=4, test_features=xte, test_labels=yte, tol=1e-7, max_iter=5000,
        l2_grid=np.logspace(-3, 2, 4),
    )  # fmt: skip
    sk = linear_probe(xtr, ytr, xva, yva, backend="sklearn", **kwargs)
    th = linear_probe(xtr, ytr, xva, yva, backend="torch", device="cpu", **kwargs)
    assert th.best_l2 == sk.best_l2
    assert th.test_accuracy == sk.test_accuracy
    np.testing.assert_array_equal(th.grid["val_accuracy"], sk.grid["val_accuracy"])
    np.testing.assert_array_equal(th.grid["train_accuracy"], sk.grid["train_accuracy"])
    assert th.grid["converged"].all()


def test_missing_classes_and_bad_backend() -> None:
    x, y = _problem(90, 4, 6, seed=3)
    keep = y != 2  # class 2 absent from training, as scikit-learn allows
    probe = TorchLogisticProbe(tol=1e-8)
    probe.fit(x[keep], y[keep])
    assert set(np.unique(probe.predict(x))) <= {0, 1, 3}
    with pytest.raises(ValueError, match="unknown backend 'jax'; valid: sklearn, torch"):
        linear_probe(x, y, x, y, num_classes=4, backend="jax")
