"""Reference tests for TransRate (Huang et al., ICML 2022) and GBC (Pándy et al., CVPR 2022):
closed forms on constructed features and brute-force integrals."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from survey_lib.transferability import gbc, transrate
from survey_lib.transferability.gbc import bhattacharyya_diagonal
from survey_lib.transferability.transrate import coding_rate


def _blobs(n: int, d: int, c: int, spread: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    return spread * rng.normal(size=(c, d))[y] + rng.normal(size=(n, d)), y


# --- TransRate -------------------------------------------------------------------------------


def test_coding_rate_equals_the_log_determinant() -> None:
    z = np.random.default_rng(0).normal(size=(30, 7))
    eps = 0.05
    _, logdet = np.linalg.slogdet(np.eye(7) + z.T @ z / (30 * eps))
    assert coding_rate(z, eps) == pytest.approx(0.5 * logdet, rel=1e-12)
    wide = np.random.default_rng(1).normal(size=(5, 40))  # N < D
    _, logdet = np.linalg.slogdet(np.eye(40) + wide.T @ wide / (5 * eps))
    assert coding_rate(wide, eps) == pytest.approx(0.5 * logdet, rel=1e-10)


def test_transrate_closed_form_on_orthogonal_class_codes() -> None:
    # Class c sits at +-a e_c (two samples each): every rate is a sum of log(1 + s^2/(N eps)).
    a, eps, c = 2.0, 0.1, 3
    f = np.concatenate([[a * np.eye(c)[k], -a * np.eye(c)[k]] for k in range(c)])
    y = np.repeat(np.arange(c), 2)
    n = len(y)
    # Overall mean is 0; Z^T Z = 2 a^2 I_c; class k: Z_k^T Z_k = 2 a^2 e_k e_k^T with N_k = 2.
    overall = 0.5 * c * math.log1p(2 * a**2 / (n * eps))
    per_class = 0.5 * math.log1p(2 * a**2 / (2 * eps))
    expected = overall - per_class  # uniform weights: the mean of identical class rates
    assert transrate(f, y, num_classes=c, eps=eps) == pytest.approx(expected, rel=1e-12)
    assert transrate(f, y, num_classes=c, eps=eps, weighting="size") == pytest.approx(
        expected, rel=1e-12
    )


def test_transrate_weightings_differ_on_unbalanced_classes() -> None:
    f, y = _blobs(60, 5, 3, 1.0, seed=2)
    keep = (y != 2) | (np.arange(60) < 12)  # class 2 keeps only a few samples
    f, y = f[keep], y[keep]
    z = f - f.mean(axis=0)
    rates = {k: coding_rate(z[y == k], 1e-4) for k in range(3)}
    sizes = {k: np.mean(y == k) for k in range(3)}
    total = coding_rate(z, 1e-4)
    assert transrate(f, y, num_classes=3) == pytest.approx(total - np.mean(list(rates.values())))
    assert transrate(f, y, num_classes=3, weighting="size") == pytest.approx(
        total - sum(sizes[k] * rates[k] for k in range(3))
    )


def test_transrate_rises_as_classes_separate() -> None:
    scores = [transrate(*_blobs(120, 4, 3, s, seed=3), num_classes=3, eps=0.01)
              for s in (0.0, 1.0, 3.0)]  # fmt: skip
    assert scores[0] < scores[1] < scores[2]


def test_transrate_is_translation_invariant_and_rejects_bad_options() -> None:
    f, y = _blobs(40, 4, 2, 1.0, seed=4)
    assert transrate(f + 7.0, y, num_classes=2) == pytest.approx(
        transrate(f, y, num_classes=2), rel=1e-9
    )
    with pytest.raises(ValueError, match="eps"):
        transrate(f, y, num_classes=2, eps=0.0)
    with pytest.raises(ValueError, match="weighting"):
        transrate(f, y, num_classes=2, weighting="balanced")


# --- GBC -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("m1", "s1", "m2", "s2"), [(0.0, 1.0, 1.5, 1.0), (0.3, 0.5, -1.0, 2.0)])
def test_bhattacharyya_coefficient_equals_the_overlap_integral(
    m1: float, s1: float, m2: float, s2: float
) -> None:
    # BC = int sqrt(p q) dx, brute force by quadrature in 1-D.
    overlap, _ = integrate.quad(
        lambda x: math.sqrt(norm.pdf(x, m1, s1) * norm.pdf(x, m2, s2)), -30, 30, limit=200
    )
    d_b = bhattacharyya_diagonal(
        np.array([m1]), np.array([s1**2]), np.array([m2]), np.array([s2**2])
    )
    assert math.exp(-d_b) == pytest.approx(overlap, rel=1e-8)


def test_gbc_sums_every_ordered_pair_of_class_gaussians() -> None:
    f, y = _blobs(90, 3, 3, 1.0, seed=5)
    stats = [(f[y == k].mean(axis=0), f[y == k].var(axis=0) + 1e-6 * f.var(axis=0))
             for k in range(3)]  # fmt: skip
    expected = 0.0
    for i, j in itertools.permutations(range(3), 2):
        (mi, vi), (mj, vj) = stats[i], stats[j]
        # diagonal Gaussians: the overlap factorises into 1-D coefficients
        per_dim = [
            math.sqrt(2 * math.sqrt(vi[d] * vj[d]) / (vi[d] + vj[d]))
            * math.exp(-((mi[d] - mj[d]) ** 2) / (4 * (vi[d] + vj[d])))
            for d in range(3)
        ]
        expected -= math.prod(per_dim)
    assert gbc(f, y, num_classes=3) == pytest.approx(expected, rel=1e-10)


def test_gbc_bounds_and_separation() -> None:
    scores = [gbc(*_blobs(120, 4, 3, s, seed=6), num_classes=3) for s in (0.0, 1.0, 4.0)]
    assert -6.0 <= scores[0] < scores[1] < scores[2] <= 0.0
    assert scores[0] < -5.0  # identical classes overlap almost fully: BC near 1 for 6 pairs
    assert scores[2] > -0.5


def test_gbc_spherical_variant_and_pca() -> None:
    f, y = _blobs(80, 6, 2, 1.0, seed=7)
    var = [f[y == k].var(axis=0) + 1e-6 * f.var(axis=0) for k in range(2)]
    mu = [f[y == k].mean(axis=0) for k in range(2)]
    sph = [np.full(6, v.mean()) for v in var]
    expected = -2 * math.exp(-bhattacharyya_diagonal(mu[0], sph[0], mu[1], sph[1]))
    assert gbc(f, y, num_classes=2, covariance="spherical") == pytest.approx(expected, rel=1e-10)
    # PCA keeping every dimension is a rotation: the diagonal score changes, the spherical one
    # (rotation-invariant up to the variance floor) does not.
    assert gbc(f, y, num_classes=2, covariance="spherical", pca_dim=6) == pytest.approx(
        expected, rel=1e-4
    )
    with pytest.raises(ValueError, match="pca_dim"):
        gbc(f, y, num_classes=2, pca_dim=7)
    with pytest.raises(ValueError, match="covariance"):
        gbc(f, y, num_classes=2, covariance="full")


def test_gbc_is_invariant_to_rescaling_each_feature() -> None:
    f, y = _blobs(60, 4, 3, 1.0, seed=8)
    scale = np.array([1e-3, 1.0, 10.0, 1e3])
    assert gbc(f * scale, y, num_classes=3) == pytest.approx(gbc(f, y, num_classes=3), rel=1e-9)
