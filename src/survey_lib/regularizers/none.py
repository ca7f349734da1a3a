"""No regularization: the plain fine-tuning baseline."""

from __future__ import annotations

import torch

from survey_lib.regularizers.base import Regularizer, zero_like
from survey_lib.train.context import StepContext


class NoRegularizer(Regularizer):
    """:math:`\\Omega(\\cdot) = 0`, a baseline cell in every comparison.

    ``penalty`` returns a scalar zero on the logits' device and dtype; it carries no gradient.
    """

    def __init__(self, source_model: object = None, target_model: object = None) -> None:
        super().__init__()

    def forward(self, like: torch.Tensor) -> torch.Tensor:
        return like.new_zeros(())

    def penalty(self, ctx: StepContext) -> torch.Tensor:
        return zero_like(ctx)
