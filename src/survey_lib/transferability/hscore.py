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
    r"""H-score of features for a target labelling (Bao et al., ICIP 2019).

    Covariances are the maximum-likelihood (divide-by-:math:`N`) estimates. The inter-class
    covariance is :math:`\sum_c \hat p_c (\mu_c - \mu)(\mu_c - \mu)^\top`, with
    :math:`\hat p_c` the empirical class frequencies. :math:`\operatorname{cov}(f)^{-1}` is the
    Moore--Penrose pseudo-inverse (relative cut-off ``1e-10``), which is the authors' formula
    when the covariance is full rank and ignores null directions otherwise. With ``shrinkage``
    the feature covariance is first shrunk towards :math:`\frac{\operatorname{tr}\Sigma}{D} I`,
    :math:`\Sigma_\lambda = (1 - \lambda)\Sigma + \lambda \frac{\operatorname{tr}\Sigma}{D} I`
    (the Ledoit--Wolf variant of Ibrahim et al., "Newer is not always better: Rethinking
    transferability metrics, their peculiarities, stability and performance", ECML-PKDD 2022,
    https://arxiv.org/abs/2110.06893), which is better behaved when :math:`N \lesssim D`.

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
    if shrinkage is None:
        cov_f = f.T @ f / n
    elif shrinkage == "ledoit-wolf":
        cov_f, _ = ledoit_wolf(f, assume_centered=True)
    elif isinstance(shrinkage, (int, float)) and not isinstance(shrinkage, bool):
        if not 0.0 <= shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage}")
        cov_f = f.T @ f / n
        mu = np.trace(cov_f) / d
        cov_f = (1.0 - shrinkage) * cov_f + shrinkage * mu * np.eye(d)
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
    cov_g = (means * weights[:, None]).T @ means
    score = np.trace(np.linalg.pinv(cov_f, rcond=1e-10, hermitian=True) @ cov_g)
    return float(score)
