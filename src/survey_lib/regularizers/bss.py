"""Batch Spectral Shrinkage: shrink the smallest singular values of the batch features."""

from __future__ import annotations

import torch
from torch import nn

from survey_lib.regularizers.base import Regularizer
from survey_lib.train.context import StepContext

METHODS = ("auto", "svd", "gram")


def smallest_squared_singular_values(
    features: torch.Tensor, k: int, method: str = "auto"
) -> torch.Tensor:
    """The ``k`` smallest squared singular values :math:`\\sigma_{-1}^2, \\dots, \\sigma_{-k}^2`.

    ``"svd"`` takes :func:`torch.linalg.svdvals` of the (B, D) matrix. ``"gram"`` takes the
    eigenvalues of the smaller Gram matrix, :math:`F F^\\top` (B×B) when :math:`B \\le D`, else
    :math:`F^\\top F` (D×D): their eigenvalues are exactly the :math:`\\sigma_i^2`. The Gram matrix
    is formed in float64 so squaring the condition number costs no accuracy in the small
    eigenvalues that BSS penalises. ``"auto"`` is ``"gram"``, the cheaper one on CPU at batch 128
    with 64-256 features (``benchmarks/bench_bss.py``); both agree to float32 precision.

    Args:
        features: the batch feature matrix :math:`F`, shape (B, D).
        k: how many of the smallest values, ``1 <= k <= min(B, D)``.
        method: ``"auto"``, ``"svd"`` or ``"gram"``.

    Returns:
        Shape (k,), smallest first, differentiable with respect to ``features``; float32 for
        half-precision features, else their dtype.
    """
    if features.ndim != 2:
        raise ValueError(f"features must be a (B, D) matrix, got shape {tuple(features.shape)}")
    rank = min(features.shape)
    if not 1 <= k <= rank:
        raise ValueError(f"k must be in 1..min(B, D) = 1..{rank}, got {k}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    if method == "svd":
        # no half-precision SVD kernels: bfloat16/float16 features (autocast) go up to float32
        matrix = features.float() if features.dtype in (torch.float16, torch.bfloat16) else features
        return torch.linalg.svdvals(matrix)[-k:].flip(0).pow(2)
    wide = features.shape[0] <= features.shape[1]
    matrix = features.double()
    gram = matrix @ matrix.T if wide else matrix.T @ matrix
    eigenvalues = torch.linalg.eigvalsh(gram)[:k]  # ascending
    return eigenvalues.clamp_min(0).to(torch.promote_types(features.dtype, torch.float32))


class BSS(Regularizer):
    """Batch Spectral Shrinkage of Chen et al.

    Paper: "Catastrophic Forgetting Meets Negative Transfer: Batch Spectral Shrinkage for Safe
    Transfer Learning", NeurIPS 2019,
    https://proceedings.neurips.cc/paper/2019/hash/c6bff625bdb0393992c9d4db0c6bbe45-Abstract.html.

    .. math::

        \\Omega(F) = \\eta \\sum_{i=1}^{k} \\sigma_{-i}^2

    where :math:`\\sigma_{-i}` is the :math:`i`-th smallest singular value of the batch feature
    matrix :math:`F \\in \\mathbb{R}^{B \\times D}` (penultimate features, before the classifier).
    Defaults :math:`k = 1`, :math:`\\eta = 0.001` are the authors'.

    Args:
        source_model: unused (accepted so every regularizer is built the same way).
        target_model: unused.
        k: number of smallest singular values penalised.
        eta: trade-off :math:`\\eta`.
        method: how the singular values are computed, see
            :func:`smallest_squared_singular_values`.
    """

    def __init__(
        self,
        source_model: nn.Module | None = None,
        target_model: nn.Module | None = None,
        *,
        k: int = 1,
        eta: float = 0.001,
        method: str = "auto",
    ) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if eta < 0:
            raise ValueError(f"eta must be >= 0, got {eta}")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
        self.k = int(k)
        self.eta = float(eta)
        self.method = method

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Return :math:`\\eta \\sum_{i \\le k} \\sigma_{-i}^2` for features of shape (B, D)."""
        return self.eta * smallest_squared_singular_values(features, self.k, self.method).sum()

    def penalty(self, ctx: StepContext) -> torch.Tensor:
        return self(ctx.features)

    def extra_repr(self) -> str:
        return f"k={self.k}, eta={self.eta}, method={self.method!r}"
