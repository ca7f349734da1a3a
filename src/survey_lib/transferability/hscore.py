r"""H-score: how much of the feature covariance is explained by the target classes.

Bao, Li, Huang, Zheng, Wang, Tong and Zhong, "An Information-Theoretic Approach to
Transferability in Task Transfer Learning", IEEE ICIP 2019.
https://doi.org/10.1109/ICIP.2019.8803726

For zero-mean features :math:`f(X) \in \mathbb{R}^D` and target label :math:`Y`,

.. math::

    \mathcal{H}(f) = \operatorname{tr}\!\left(\operatorname{cov}(f(X))^{-1}\,
    \operatorname{cov}\!\left(\mathbb{E}_{P_{X\mid Y}}[f(X)\mid Y]\right)\right).

It grows as the class-conditional means spread apart (inter-class covariance) and as the
features become less redundant. It lies in :math:`[0, \min(D, C - 1)]` with the pseudo-inverse.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.covariance import ledoit_wolf

from survey_lib.transferability._validate import check_features


def h_score(
    features: Any,
    labels: Any,
    *,
    num_classes: int,
    shrinkage: float | str | None = None,
) -> float:
    r"""H-score of features for a target labelling (Bao et al., ICIP 2019), optionally shrunk.

    Covariances are the maximum-likelihood (divide-by-:math:`N`) estimates. The inter-class
    covariance is :math:`\Sigma_g = \sum_c \hat p_c (\mu_c - \mu)(\mu_c - \mu)^\top`, with
    :math:`\hat p_c` the empirical class frequencies. :math:`\operatorname{cov}(f)^{-1}` is the
    Moore--Penrose pseudo-inverse (relative cut-off ``1e-10``), which is the authors' formula
    when the covariance is full rank and ignores null directions otherwise.

    With ``shrinkage`` this is the regularised H-score of Ibrahim, Ponomareva and Mazumder
    ("Newer is not always better: Rethinking transferability metrics, their peculiarities,
    stability and performance", ECML-PKDD 2022, https://arxiv.org/abs/2110.06893, Eq. for
    :math:`\mathcal{H}_\alpha`):

    .. math::

        \mathcal{H}_\lambda(f) = \operatorname{tr}\!\left(\Sigma_\lambda^{-1}\,
        (1 - \lambda)\,\Sigma_g\right), \qquad
        \Sigma_\lambda = (1 - \lambda)\Sigma + \lambda \tfrac{\operatorname{tr}\Sigma}{D} I .

    Both covariances are shrunk by the same factor :math:`1 - \lambda`; because
    :math:`\Sigma_g \preceq \Sigma` (between-class ≤ total covariance),
    :math:`(1-\lambda)\Sigma_g \preceq \Sigma_\lambda` and the score stays in
    :math:`[0, C - 1]` like the plain H-score (:math:`\lambda = 1` gives 0). ``"ledoit-wolf"``
    takes :math:`\lambda` and :math:`\Sigma_\lambda` from scikit-learn's Ledoit--Wolf
    estimator (maximum-likelihood covariance).

    Convention: TLlib's ``regularized_h_score`` computes the same formula but estimates
    :math:`\Sigma_g` with ``np.cov`` (divide by :math:`N - 1`) while its Ledoit--Wolf
    :math:`\Sigma_\lambda` divides by :math:`N`, so its value is ours times
    :math:`N / (N - 1)` (and can therefore exceed :math:`C - 1` by that factor).

    Classes in ``[0, num_classes)`` that have no samples contribute nothing.

    Args:
        features: penultimate-layer features (not logits or probabilities).
        labels: target class indices in ``[0, num_classes)``.
        num_classes: number of target classes (never inferred from the labels).
        shrinkage: ``None`` (pseudo-inverse, the original), a float :math:`\lambda \in [0, 1]`,
            or ``"ledoit-wolf"`` for the data-driven :math:`\lambda`.

    Returns:
        The H-score (higher means more transferable).

    Shape:
        features ``(N, D)``, labels ``(N,)``.
    """
    f, y, c = check_features(features, labels, num_classes=num_classes)
    n, d = f.shape
    f = f - f.mean(axis=0, keepdims=True)
    lam = 0.0
    if shrinkage is None:
        cov_f = f.T @ f / n
    elif shrinkage == "ledoit-wolf":
        cov_f, lam = ledoit_wolf(f, assume_centered=True)
    elif isinstance(shrinkage, (int, float)) and not isinstance(shrinkage, bool):
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
        lam = float(shrinkage)
        cov_f = f.T @ f / n
        mu = np.trace(cov_f) / d
        cov_f = (1.0 - lam) * cov_f + lam * mu * np.eye(d)
    else:
        raise ValueError(
            f"shrinkage must be None, a float in [0, 1] or 'ledoit-wolf', got {shrinkage!r}"
        )
    counts = np.bincount(y, minlength=c).astype(np.float64)
    sums = np.zeros((c, d))
    np.add.at(sums, y, f)
    present = counts > 0
    means = sums[present] / counts[present, None]
    weights = counts[present] / n
    # Features are centred, so the overall mean is zero and cov(E[f|Y]) is the weighted outer
    # product of the class means.
    cov_g = (1.0 - float(lam)) * ((means * weights[:, None]).T @ means)
    score = np.trace(np.linalg.pinv(cov_f, rcond=1e-10, hermitian=True) @ cov_g)
    return float(score)


def shrinkage_h_score(features: Any, labels: Any, *, num_classes: int) -> float:
    r"""The regularised H-score of Ibrahim et al. (ECML-PKDD 2022) with the Ledoit--Wolf
    :math:`\lambda`: ``h_score(..., shrinkage="ledoit-wolf")`` (see :func:`h_score`)."""
    return h_score(features, labels, num_classes=num_classes, shrinkage="ledoit-wolf")
