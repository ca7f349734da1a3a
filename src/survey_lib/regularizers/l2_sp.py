"""L2-SP: weight decay towards the pretrained starting point."""

from __future__ import annotations

import torch
from torch import nn

from survey_lib.regularizers.base import (
    Regularizer,
    buffer_name,
    model_units,
    squared_norm,
    unit_weights,
)
from survey_lib.train.context import StepContext


class L2SP(Regularizer):
    """L2-SP of Li, Grandvalet & Davoine.

    Paper: "Explicit Inductive Bias for Transfer Learning with Convolutional Networks", ICML 2018,
    https://arxiv.org/abs/1802.01483.

    .. math::

        \\Omega(w) = \\frac{\\alpha}{2} \\|w_{\\mathcal{S}} - w^0_{\\mathcal{S}}\\|_2^2
                   + \\frac{\\beta}{2} \\|w_{\\bar{\\mathcal{S}}}\\|_2^2

    where :math:`w_{\\mathcal{S}}` are the transferred weights (every unit but the classifier),
    :math:`w^0` their pretrained values and :math:`w_{\\bar{\\mathcal{S}}}` the new head. Following
    the authors' code only conv and linear weights are penalised (parameters with at least two
    dimensions): not BN scales/shifts, not biases. Defaults :math:`\\alpha = 0.1`,
    :math:`\\beta = 0.01` are the authors' setting.

    The reference weights :math:`w^0` are copied into buffers at construction, matched to the
    target's parameters by qualified name (``unit.param``).

    Args:
        source_model: the pretrained TransferModel (its classifier may have another size).
        target_model: the model to fine-tune; when given, names and shapes are checked now.
        alpha: strength of the pull towards :math:`w^0`.
        beta: strength of the plain L2 on the new head.
    """

    needs_source = True

    def __init__(
        self,
        source_model: nn.Module,
        target_model: nn.Module | None = None,
        *,
        alpha: float = 0.1,
        beta: float = 0.01,
    ) -> None:
        super().__init__()
        for key, value in (("alpha", alpha), ("beta", beta)):
            if value < 0:
                raise ValueError(f"{key} must be >= 0, got {value}")
        self.alpha = float(alpha)
        self.beta = float(beta)
        self._init_references(model_units(source_model)[:-1])
        if target_model is not None:
            self.check_target(target_model)

    def _init_references(self, units: list[tuple[str, nn.Module]]) -> None:
        """Copy the weights of ``units`` into buffers, the reference :math:`w^0`."""
        names = []
        for qualified, param in unit_weights(units):
            self.register_buffer(buffer_name(qualified), param.detach().clone())
            names.append(qualified)
        #: qualified names of the weights pulled towards their pretrained values, in order.
        self.reference_names: tuple[str, ...] = tuple(names)

    def reference(self, qualified: str) -> torch.Tensor:
        """The stored pretrained value :math:`w^0` of parameter ``qualified``."""
        return getattr(self, buffer_name(qualified))

    def check_target(self, model: nn.Module) -> None:
        """Raise ``ValueError`` unless every reference weight has a same-shaped target parameter."""
        target = dict(unit_weights(model_units(model)))
        missing = [name for name in self.reference_names if name not in target]
        if missing:
            raise ValueError(
                f"target model has no parameter(s) {missing} matching the source; "
                f"target unit weights are {sorted(target)}"
            )
        for name in self.reference_names:
            want, got = tuple(self.reference(name).shape), tuple(target[name].shape)
            if want != got:
                raise ValueError(
                    f"shape mismatch for {name}: source {want}, target {got}; L2-SP needs the "
                    "transferred units to have the pretrained architecture"
                )

    def sp_term(self, model: nn.Module) -> torch.Tensor:
        """:math:`\\|w_{\\mathcal{S}} - w^0_{\\mathcal{S}}\\|_2^2` (unscaled)."""
        diffs = []
        for name in self.reference_names:
            param = model.get_parameter(name)
            reference = self.reference(name)
            if param.shape != reference.shape:
                self.check_target(model)
            diffs.append(param - reference)
        return squared_norm(diffs, next(model.parameters()))

    def head_term(self, model: nn.Module) -> torch.Tensor:
        """:math:`\\|w_{\\bar{\\mathcal{S}}}\\|_2^2` over the classifier's weights (unscaled)."""
        head = [p for _, p in unit_weights(model_units(model)[-1:])]
        return squared_norm(head, next(model.parameters()))

    def forward(self, model: nn.Module) -> torch.Tensor:
        """Return the L2-SP penalty of the target ``model`` (a scalar)."""
        return 0.5 * self.alpha * self.sp_term(model) + 0.5 * self.beta * self.head_term(model)

    def penalty(self, ctx: StepContext) -> torch.Tensor:
        self.follow_device(ctx)
        return self(ctx.model)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, beta={self.beta}, weights={len(self.reference_names)}"
