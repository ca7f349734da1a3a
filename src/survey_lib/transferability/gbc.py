r"""GBC: Gaussian Bhattacharyya coefficient between the target classes in feature space.

Pándy, Agostinelli, Uijlings, Ferrari and Mensink, "Transferability Estimation using
Bhattacharyya Class Separability", CVPR 2022. https://arxiv.org/abs/2111.12780

Each target class :math:`c` is modelled as a Gaussian :math:`\mathcal{N}(\mu_c, \Sigma_c)` in
the source model's feature space. For two classes, with
:math:`\Sigma = \tfrac12(\Sigma_i + \Sigma_j)`, the Bhattacharyya distance and coefficient are

.. math::

    D_B(i, j) = \tfrac18 (\mu_i - \mu_j)^\top \Sigma^{-1} (\mu_i - \mu_j)
        + \tfrac12 \log \frac{\det \Sigma}{\sqrt{\det \Sigma_i \det \Sigma_j}}, \qquad
    \mathrm{BC}(i, j) = e^{-D_B(i, j)} = \int \sqrt{p_i(x)\, p_j(x)}\, dx ,

and the score sums the overlap of every ordered pair of distinct classes,

.. math::

    \mathrm{GBC} = -\sum_{i} \sum_{j \ne i} \mathrm{BC}(i, j) \;\in\; [-C'(C'-1), 0] ,

so it is 0 when the classes do not overlap at all (higher means more transferable).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from survey_lib.transferability._validate import check_features

_COVARIANCES = ("diagonal", "spherical")


def bhattacharyya_diagonal(
    mu1: np.ndarray, var1: np.ndarray, mu2: np.ndarray, var2: np.ndarray
) -> float:
    r"""Bhattacharyya distance :math:`D_B` between two Gaussians with diagonal covariances
    ``diag(var1)`` and ``diag(var2)`` (all variances > 0)."""
    avg = 0.5 * (var1 + var2)
    mahalanobis = float(np.sum((mu1 - mu2) ** 2 / avg)) / 8.0
    log_ratio = float(np.sum(np.log(avg)) - 0.5 * (np.sum(np.log(var1)) + np.sum(np.log(var2))))
    return mahalanobis + 0.5 * log_ratio


def gbc(
    features: Any,
    labels: Any,
    *,
    num_classes: int,
    covariance: str = "diagonal",
    var_floor: float = 1e-6,
    pca_dim: int | None = None,
) -> float:
    r"""Gaussian Bhattacharyya coefficient score (Pándy et al., CVPR 2022).

    Conventions (stated because implementations differ):

    * Per-class Gaussians have a ``"diagonal"`` covariance (per-dimension variances) or a
      ``"spherical"`` one (:math:`\sigma_c^2 I` with :math:`\sigma_c^2` the mean of the
      per-dimension variances), the two variants of the paper. Variances are the
      maximum-likelihood ones (divide by :math:`N_c`), plus ``var_floor`` times the overall
      variance of that dimension, so a class of one sample or a dead dimension stays finite
      and the score remains invariant to rescaling each feature.
    * Every ordered pair :math:`(i, j), i \ne j` is counted (each unordered pair twice), with
      no weighting by class size, as in the paper's equation.
    * The authors' code first projects the features with PCA; ``pca_dim`` does the same
      (scikit-learn ``PCA`` fitted on these features, ``svd_solver="full"``); by default no
      projection is made.

    Classes in ``[0, num_classes)`` without samples are skipped.

    Args:
        features: penultimate-layer features (not logits or probabilities).
        labels: target labels in ``[0, num_classes)``.
        num_classes: number of target classes (never inferred from the labels).
        covariance: ``"diagonal"`` or ``"spherical"``.
        var_floor: relative variance floor (>= 0).
        pca_dim: number of PCA dimensions kept first, or ``None``.

    Returns:
        GBC, in :math:`[-C'(C'-1), 0]` for the :math:`C'` classes present.

    Shape:
        features ``(N, D)``, labels ``(N,)``.
    """
    f, y, _ = check_features(features, labels, num_classes=num_classes)
    if covariance not in _COVARIANCES:
        raise ValueError(f"covariance must be one of {_COVARIANCES}, got {covariance!r}")
    if not var_floor >= 0:
        raise ValueError(f"var_floor must be >= 0, got {var_floor}")
    if pca_dim is not None:
        if (
            isinstance(pca_dim, bool)
            or not isinstance(pca_dim, (int, np.integer))
            or not (1 <= pca_dim <= min(f.shape))
        ):
            raise ValueError(
                f"pca_dim must be None or an integer in [1, {min(f.shape)}], got {pca_dim!r}"
            )
        from sklearn.decomposition import PCA

        f = PCA(n_components=int(pca_dim), svd_solver="full").fit_transform(f)
    floor = var_floor * f.var(axis=0)
    floor = np.where(floor > 0, floor, np.finfo(np.float64).tiny ** 0.5)
    present = np.unique(y)
    means, variances = [], []
    for c in present:
        rows = f[y == c]
        var = rows.var(axis=0) + floor
        if covariance == "spherical":
            var = np.full_like(var, var.mean())
        means.append(rows.mean(axis=0))
        variances.append(var)
    total = 0.0
    for i in range(present.size):
        for j in range(present.size):
            if i != j:
                d_b = bhattacharyya_diagonal(means[i], variances[i], means[j], variances[j])
                total += float(np.exp(-d_b))
    return -total
