"""Plain L2 regularization (weight decay towards zero) as an explicit penalty."""

from __future__ import annotations

import torch
from torch import nn

from survey_lib.regularizers.base import Regularizer, is_penalized_weight, squared_norm
from survey_lib.train.context import StepContext


class L2(Regularizer):
    """Weight decay towards zero, the baseline of Li, Grandvalet & Davoine.

    Paper: "Explicit Inductive Bias for Transfer Learning with Convolutional Networks", ICML 2018,
    https://arxiv.org/abs/1802.01483 (the L2 baseline their L2-SP is compared with).

    .. math::

        \\Omega(w) = \\frac{\\alpha}{2} \\|w\\|_2^2

    over every conv and linear weight of the model, head included. Biases and normalisation
    scales/shifts (1-D parameters) are left out by default, as in the L2-SP authors' code; pass
    ``weights_only=False`` to penalise every parameter (what ``torch.optim.SGD(weight_decay=...)``
    does, with ``weight_decay`` equal to :math:`\\alpha`).

    Args:
        source_model: unused (accepted so every regularizer is built the same way).
        target_model: unused.
        alpha: strength :math:`\\alpha`. Default 0.01 is our choice (the same magnitude as the
            L2-SP head coefficient); the papers tune it per dataset.
        weights_only: penalise only parameters with at least two dimensions.
    """

    def __init__(
        self,
        source_model: nn.Module | None = None,
        target_model: nn.Module | None = None,
        *,
        alpha: float = 0.01,
        weights_only: bool = True,
    ) -> None:
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.weights_only = bool(weights_only)

    def forward(self, model: nn.Module) -> torch.Tensor:
        """Return :math:`\\frac{\\alpha}{2}\\|w\\|^2` for ``model``'s parameters (a scalar)."""
        params = [p for p in model.parameters() if not self.weights_only or is_penalized_weight(p)]
        like = next(model.parameters())
        return 0.5 * self.alpha * squared_norm(params, like)

    def penalty(self, ctx: StepContext) -> torch.Tensor:
        return self(ctx.model)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, weights_only={self.weights_only}"
