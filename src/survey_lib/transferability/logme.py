r"""LogME: the log maximum evidence of a Bayesian linear model on the features.

You, Liu, Wang and Long, "LogME: Practical Assessment of Pre-trained Models for Transfer
Learning", ICML 2021. https://arxiv.org/abs/2102.11005 (algorithm refined in You et al.,
"Ranking and Tuning Pre-trained Models: A New Paradigm for Exploiting Model Hubs", JMLR 2022,
https://arxiv.org/abs/2110.10545).

For each target class :math:`k` the one-hot column :math:`y \in \{0, 1\}^N` is modelled as
:math:`y = F w + \varepsilon` with prior :math:`w \sim \mathcal{N}(0, \alpha^{-1} I_D)` and noise
:math:`\varepsilon \sim \mathcal{N}(0, \beta^{-1} I_N)`. With :math:`A = \alpha I + \beta F^\top F`
and :math:`m = \beta A^{-1} F^\top y`, the log evidence is

.. math::

    \mathcal{L}(\alpha, \beta) = \frac{D}{2}\log\alpha + \frac{N}{2}\log\beta
        - \frac{N}{2}\log 2\pi - \frac{\beta}{2}\lVert F m - y\rVert^2
        - \frac{\alpha}{2} m^\top m - \frac{1}{2}\log\lvert A\rvert ,

maximised by MacKay's fixed point
:math:`\gamma = \sum_i \frac{\beta\sigma_i}{\alpha + \beta\sigma_i}`,
:math:`\alpha \leftarrow \gamma / m^\top m`,
:math:`\beta \leftarrow (N - \gamma) / \lVert F m - y \rVert^2`, where :math:`\sigma_i` are the
eigenvalues of :math:`F^\top F`. LogME is :math:`\frac{1}{C}\sum_k \mathcal{L}_k^\ast / N`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from survey_lib.transferability._validate import check_features

_TINY = 1e-300  # only prevents division by zero; large alpha or beta are legitimate


def _spectrum(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-zero eigenvalues ``sigma`` of ``F^T F`` and the matching left singular vectors of F."""
    n, d = f.shape
    if n > d:
        # Eigendecomposition of the D x D Gram matrix is cheaper than an N x D SVD.
        sigma, v = np.linalg.eigh(f.T @ f)
        keep = sigma > max(sigma.max(), 0.0) * d * np.finfo(np.float64).eps
        sigma, v = sigma[keep], v[:, keep]
        u = (f @ v) / np.sqrt(sigma)
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)
        sigma = s**2
        keep = sigma > max(sigma.max(), 0.0) * n * np.finfo(np.float64).eps
        sigma, u = sigma[keep], u[:, keep]
    return sigma, u


def _log_evidence(
    alpha: float, beta: float, sigma: np.ndarray, x2: np.ndarray, outside: float, n: int, d: int
) -> tuple[float, float, float]:
    """Per-sample log evidence at (alpha, beta), with ``m^T m`` and ``||F m - y||^2``."""
    lam = alpha / beta
    m2 = float(np.sum(sigma * x2 / (sigma + lam) ** 2))
    res2 = float(np.sum((lam / (sigma + lam)) ** 2 * x2)) + outside
    # log|A|: the D - k null directions of F^T F contribute log(alpha) each.
    logdet_a = float(np.sum(np.log(alpha + beta * sigma))) + (d - sigma.shape[0]) * math.log(alpha)
    evidence = (
        0.5 * d * math.log(alpha)
        + 0.5 * n * math.log(beta)
        - 0.5 * n * math.log(2.0 * math.pi)
        - 0.5 * beta * res2
        - 0.5 * alpha * m2
        - 0.5 * logdet_a
    )
    return evidence / n, m2, res2


def _max_log_evidence(
    y: np.ndarray, sigma: np.ndarray, u: np.ndarray, d: int, tol: float, max_iter: int
) -> float:
    """Maximum over (alpha, beta) of the per-sample log evidence for one target column."""
    n = y.shape[0]
    x2 = (u.T @ y) ** 2
    outside = max(float(y @ y - x2.sum()), 0.0)  # part of y orthogonal to the span of F
    alpha, beta = 1.0, 1.0
    best, m2, res2 = _log_evidence(alpha, beta, sigma, x2, outside, n, d)
    for _ in range(max_iter):
        gamma = float(np.sum(beta * sigma / (alpha + beta * sigma)))
        new_alpha = gamma / max(m2, _TINY)
        new_beta = max(n - gamma, _TINY) / max(res2, _TINY)
        with np.errstate(over="ignore", invalid="ignore"):
            try:
                value, new_m2, new_res2 = _log_evidence(
                    new_alpha, new_beta, sigma, x2, outside, n, d
                )
            except (ValueError, OverflowError):
                break
        if not math.isfinite(value):
            break
        converged = abs(value - best) <= tol * max(1.0, abs(value)) or abs(
            new_alpha / new_beta - alpha / beta
        ) <= tol * (alpha / beta)
        alpha, beta, best, m2, res2 = new_alpha, new_beta, value, new_m2, new_res2
        if converged:
            break
    return best


def logme(
    features: Any,
    labels: Any,
    *,
    num_classes: int,
    tol: float = 1e-10,
    max_iter: int = 1000,
) -> float:
    r"""LogME score (You et al., ICML 2021): per-sample maximum log evidence, averaged over classes.

    Follows the authors' spectral fixed-point algorithm on the raw features (no centring, no
    bias term, as in the reference code). Two deliberate differences from that code: the
    iteration runs until the evidence or :math:`\lambda = \alpha/\beta` changes by less than
    ``tol`` (relative) instead of stopping after 11 steps / 0.1 %, and without the reference
    code's ``1e-5`` added to denominators, so the value is the actual maximum (or supremum: when
    :math:`N \le \operatorname{rank} F` the fit can be exact and :math:`\beta \to \infty`,
    where the evidence still converges); and the
    :math:`D - \operatorname{rank}(F)` null directions of :math:`F^\top F` contribute
    :math:`\log\alpha` to :math:`\log|A|` (the reference fixed-point code drops them when :math:`\operatorname{rank} F < D`, e.g. :math:`N < D`).
    Classes with no samples are skipped (their evidence is unbounded); the mean is over the
    classes present.

    Args:
        features: penultimate-layer features (not logits or probabilities).
        labels: target labels in ``[0, num_classes)``.
        num_classes: number of target classes (never inferred from the labels).
        tol: relative convergence tolerance on the evidence and on :math:`\alpha/\beta`.
        max_iter: cap on fixed-point iterations per class.

    Returns:
        LogME (nats per sample; higher means more transferable).

    Shape:
        features ``(N, D)``, labels ``(N,)``.
    """
    f, y, _ = check_features(features, labels, num_classes=num_classes)
    if not tol > 0 or max_iter < 1:
        raise ValueError(f"need tol > 0 and max_iter >= 1, got tol={tol}, max_iter={max_iter}")
    if not np.any(f):
        raise ValueError("features are all zero; LogME is undefined")
    sigma, u = _spectrum(f)
    evidences = [
        _max_log_evidence((y == cls).astype(np.float64), sigma, u, f.shape[1], tol, max_iter)
        for cls in np.unique(y)
    ]
    return float(np.mean(evidences))
