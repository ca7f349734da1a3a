r"""TransRate: the coding rate of the features minus their class-conditional coding rate.

Huang, Huang, Rong, Yang and Wei, "Frustratingly Easy Transferability Estimation", ICML 2022.
https://proceedings.mlr.press/v162/huang22d.html

With centred features :math:`Z \in \mathbb{R}^{N \times D}` (rows :math:`z_i`), the coding
rate at distortion :math:`\epsilon` (Ma et al., "Segmentation of multivariate mixed data via
lossy data coding and compression", TPAMI 2007; Yu et al., MCR², NeurIPS 2020) is

.. math::

    R(Z, \epsilon) = \tfrac12 \log\det\!\left(I_D + \tfrac{1}{N\epsilon} Z^\top Z\right),

and TransRate is

.. math::

    \mathrm{TrR}(Z, y) = R(Z, \epsilon) - \sum_{c} w_c\, R(Z_c, \epsilon),

where :math:`Z_c` holds the :math:`N_c` rows of class :math:`c` (each class coded with its own
:math:`N_c`). High TrR means the features are spread out overall (informative) but compact
within each class (separable).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from survey_lib.transferability._validate import check_features

_WEIGHTINGS = ("uniform", "size")


def coding_rate(z: np.ndarray, eps: float) -> float:
    r""":math:`\tfrac12 \log\det(I_D + Z^\top Z / (N\epsilon))` of the rows of ``z`` ``(N, D)``.

    Computed from the singular values of :math:`Z` (:math:`\tfrac12\sum_i \log(1 +
    s_i^2/(N\epsilon))`), which equals the :math:`D \times D` log-determinant and avoids
    forming it.
    """
    n = z.shape[0]
    s = np.linalg.svd(z, compute_uv=False)
    return float(0.5 * np.sum(np.log1p(s**2 / (n * eps))))


def transrate(
    features: Any,
    labels: Any,
    *,
    num_classes: int,
    eps: float = 1e-4,
    weighting: str = "uniform",
) -> float:
    r"""TransRate of features for a target labelling (Huang et al., ICML 2022).

    Conventions (stated because implementations differ):

    * ``eps`` multiplies :math:`N` directly, as in the code the paper publishes in its appendix
      (``1 / (n * eps)``, default ``1e-4``); the paper's text writes the factor as
      :math:`d/(n\epsilon^2)`, i.e. our ``eps`` is :math:`\epsilon^2/d` in that notation.
    * Features are centred by their overall mean and not rescaled. TransRate is therefore not
      scale-invariant: multiplying the features by :math:`a` changes every rate through
      :math:`\epsilon`. Compare models' scores as the paper does, on their raw features.
    * ``weighting="uniform"`` gives :math:`w_c = 1/C'` over the :math:`C'` classes present
      (the paper's appendix code, which divides by the number of classes);
      ``weighting="size"`` gives :math:`w_c = N_c/N`, the weighting of a partition's coding
      rate in MCR² (Yu et al. 2020). The two agree on balanced data.

    Classes in ``[0, num_classes)`` without samples are skipped.

    Args:
        features: penultimate-layer features (not logits or probabilities).
        labels: target labels in ``[0, num_classes)``.
        num_classes: number of target classes (never inferred from the labels).
        eps: distortion :math:`\epsilon` (> 0), in the convention above.
        weighting: ``"uniform"`` or ``"size"``.

    Returns:
        TransRate in nats (higher means more transferable).

    Shape:
        features ``(N, D)``, labels ``(N,)``.
    """
    f, y, _ = check_features(features, labels, num_classes=num_classes)
    if not (isinstance(eps, (int, float)) and not isinstance(eps, bool) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    if weighting not in _WEIGHTINGS:
        raise ValueError(f"weighting must be one of {_WEIGHTINGS}, got {weighting!r}")
    z = f - f.mean(axis=0, keepdims=True)
    present = np.unique(y)
    if weighting == "uniform":
        weights = np.full(present.size, 1.0 / present.size)
    else:
        weights = np.array([np.sum(y == c) for c in present], dtype=np.float64) / y.size
    conditional = sum(
        w * coding_rate(z[y == c], float(eps)) for w, c in zip(weights, present, strict=True)
    )
    return coding_rate(z, float(eps)) - float(conditional)
