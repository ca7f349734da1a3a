"""Layer-wise L2-SP: L2-SP on the lower units, plain L2 above."""

from __future__ import annotations

import torch
from torch import nn

from survey_lib.regularizers.base import Regularizer, model_units, squared_norm, unit_weights
from survey_lib.regularizers.l2_sp import L2SP


class L2SPLower(L2SP):
    """L2-SP on the first ``m`` units and plain L2 towards zero on the transferred units above.

    Papers: Plested, Shen & Gedeon, "Non-binary deep transfer learning for image
    classification", arXiv 2021, https://arxiv.org/abs/2107.08585 (the combination the survey
    highlights in its section 5.2.1), built on L2-SP of Li, Grandvalet & Davoine, ICML 2018,
    https://arxiv.org/abs/1802.01483.

    .. math::

        \\Omega(w) = \\frac{\\alpha}{2} \\sum_{u < m} \\|w_u - w^0_u\\|_2^2
                   + \\frac{\\alpha_{\\text{upper}}}{2} \\sum_{m \\le u < n-1} \\|w_u\\|_2^2
                   + \\frac{\\beta}{2} \\|w_{n-1}\\|_2^2

    over the ``n`` units :math:`w_0, \\dots, w_{n-1}` (the last is the new classifier), conv and
    linear weights only, as in :class:`~survey_lib.regularizers.l2_sp.L2SP`. ``num_sp_units = 0``
    is plain L2 on the body; ``num_sp_units = n - 1`` is L2-SP.

    Args:
        source_model: the pretrained TransferModel.
        target_model: the model to fine-tune; when given, names and shapes are checked now.
        num_sp_units: :math:`m`, how many lower units are pulled towards their pretrained values.
        alpha: strength of the pull towards :math:`w^0` (L2-SP default 0.1).
        alpha_upper: strength of the L2 towards zero on units :math:`m .. n-2`. Default 0.01 is
            our choice (the L2-SP head coefficient); Plested et al. tune it.
        beta: strength of the L2 on the head (L2-SP default 0.01).
    """

    def __init__(
        self,
        source_model: nn.Module,
        target_model: nn.Module | None = None,
        *,
        num_sp_units: int,
        alpha: float = 0.1,
        alpha_upper: float = 0.01,
        beta: float = 0.01,
    ) -> None:
        Regularizer.__init__(self)
        for key, value in (("alpha", alpha), ("alpha_upper", alpha_upper), ("beta", beta)):
            if value < 0:
                raise ValueError(f"{key} must be >= 0, got {value}")
        units = model_units(source_model)
        if not 0 <= num_sp_units <= len(units) - 1:
            raise ValueError(
                f"num_sp_units must be in 0..{len(units) - 1} (the model has {len(units) - 1} "
                f"transferred units {[name for name, _ in units[:-1]]}), got {num_sp_units}"
            )
        self.alpha = float(alpha)
        self.alpha_upper = float(alpha_upper)
        self.beta = float(beta)
        self.num_sp_units = int(num_sp_units)
        #: names of the transferred units decayed towards zero.
        self.upper_units = tuple(name for name, _ in units[num_sp_units:-1])
        self._init_references(units[:num_sp_units])
        if target_model is not None:
            self.check_target(target_model)

    def upper_term(self, model: nn.Module) -> torch.Tensor:
        """:math:`\\sum_{m \\le u < n-1} \\|w_u\\|_2^2` (unscaled)."""
        units = [(name, module) for name, module in model_units(model) if name in self.upper_units]
        return squared_norm([p for _, p in unit_weights(units)], next(model.parameters()))

    def forward(self, model: nn.Module) -> torch.Tensor:
        """Return the layer-wise penalty of the target ``model`` (a scalar)."""
        return (
            0.5 * self.alpha * self.sp_term(model)
            + 0.5 * self.alpha_upper * self.upper_term(model)
            + 0.5 * self.beta * self.head_term(model)
        )

    def extra_repr(self) -> str:
        return (
            f"num_sp_units={self.num_sp_units}, alpha={self.alpha}, "
            f"alpha_upper={self.alpha_upper}, beta={self.beta}"
        )
