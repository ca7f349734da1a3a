"""Stochastic Normalization: per-channel random choice between batch and moving statistics."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from survey_lib.regularizers.base import Regularizer, zero_like
from survey_lib.train.context import StepContext


class _StochNorm:
    """The forward shared by :class:`StochNorm1d` and :class:`StochNorm2d` (a mixin over BN)."""

    p: float

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(input)
        if not self.training:
            return super().forward(input)
        if self.running_mean is None or self.running_var is None:
            raise RuntimeError("StochNorm needs moving statistics (track_running_stats=True)")
        if self.momentum is None:  # cumulative moving average, as in BatchNorm
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked)
        else:
            self.num_batches_tracked.add_(1)
            factor = self.momentum
        # moving-statistics branch first: it must see the statistics before this batch updates them
        moving = F.batch_norm(
            input, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        )
        batch = F.batch_norm(
            input,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            True,
            factor,
            self.eps,
        )
        shape = (1, input.shape[1]) + (1,) * (input.ndim - 2)
        use_batch = torch.rand(shape, device=input.device) < self.p
        return torch.where(use_batch, batch, moving)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}"


class StochNorm2d(_StochNorm, nn.BatchNorm2d):
    """Stochastic Normalization of Kou et al. for (N, C, H, W) inputs.

    Paper: "Stochastic Normalization", NeurIPS 2020,
    https://proceedings.neurips.cc/paper/2020/hash/bc573864331a9e42e4511de6f678aa83-Abstract.html.

    In training, each channel is normalised with the mini-batch statistics with probability
    :math:`p` and with the moving statistics otherwise (a fresh draw per channel and step):

    .. math::

        \\hat{x}_{c} = s_c \\frac{x_c - \\mu_c}{\\sqrt{\\sigma_c^2 + \\epsilon}}
            + (1 - s_c) \\frac{x_c - \\tilde{\\mu}_c}{\\sqrt{\\tilde{\\sigma}_c^2 + \\epsilon}},
        \\quad s_c \\sim \\mathrm{Bernoulli}(p), \\quad y_c = \\gamma_c \\hat{x}_c + \\beta_c

    with :math:`\\mu, \\sigma^2` the batch statistics and :math:`\\tilde{\\mu}, \\tilde{\\sigma}^2`
    the moving ones, which are updated every training step as in BatchNorm and start from the
    pretrained values. ``p = 1`` is BatchNorm in train mode, ``p = 0`` normalises with the moving
    statistics only. In eval mode it is BatchNorm. This is the authors' definition (their code
    draws :math:`s \\sim \\mathrm{Bernoulli}(p)` and selects the batch branch when
    :math:`s = 1`); default :math:`p = 0.5`.

    It subclasses :class:`torch.nn.BatchNorm2d`, so its ``state_dict`` is BatchNorm's.

    Args:
        num_features: channels :math:`C`.
        p: probability of the batch-statistics branch.
        **kwargs: ``eps``, ``momentum``, ``affine``, ... as in BatchNorm2d.
    """

    def __init__(self, num_features: int, p: float = 0.5, **kwargs: object) -> None:
        super().__init__(num_features, **kwargs)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)


class StochNorm1d(_StochNorm, nn.BatchNorm1d):
    """Stochastic Normalization for (N, C) or (N, C, L) inputs; see :class:`StochNorm2d`."""

    def __init__(self, num_features: int, p: float = 0.5, **kwargs: object) -> None:
        super().__init__(num_features, **kwargs)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)


_CONVERSIONS: dict[type[nn.Module], type[nn.Module]] = {
    nn.BatchNorm1d: StochNorm1d,
    nn.BatchNorm2d: StochNorm2d,
}


def _convert(bn: nn.modules.batchnorm._BatchNorm, p: float) -> nn.Module:
    new = _CONVERSIONS[type(bn)](
        bn.num_features,
        p=p,
        eps=bn.eps,
        momentum=bn.momentum,
        affine=bn.affine,
        track_running_stats=bn.track_running_stats,
    )
    reference = next(bn.parameters(), None)
    if reference is None:
        reference = bn.running_mean if bn.running_mean is not None else torch.empty(0)
    new = new.to(device=reference.device, dtype=reference.dtype)
    new.load_state_dict(bn.state_dict())
    return new.train(bn.training)


def convert_to_stochnorm(model: nn.Module, p: float = 0.5) -> nn.Module:
    """Replace every ``BatchNorm1d``/``BatchNorm2d`` of ``model`` by its StochNorm twin, in place.

    Weights, biases, moving statistics and ``num_batches_tracked`` are copied, so the pretrained
    statistics become the starting moving statistics. BatchNorm subclasses (e.g. timm's
    ``BatchNormAct2d``, which also applies an activation) are left as they are, with a warning.

    Args:
        model: the model to convert (modified in place).
        p: probability of the batch-statistics branch.

    Returns:
        ``model`` (or the new module when ``model`` itself is a BatchNorm layer).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p}")
    if type(model) in _CONVERSIONS:
        return _convert(model, p)
    skipped = []
    for parent_name, parent in model.named_modules():
        for name, child in list(parent.named_children()):
            if type(child) in _CONVERSIONS:
                setattr(parent, name, _convert(child, p))
            elif isinstance(child, nn.modules.batchnorm._BatchNorm) and not isinstance(
                child, _StochNorm
            ):
                skipped.append(f"{parent_name}.{name}".lstrip("."))
    if skipped:
        warnings.warn(f"left BatchNorm subclasses unconverted: {skipped}", stacklevel=2)
    return model


class StochNorm(Regularizer):
    """Stochastic Normalization as an entry of the regularizer registry.

    Its penalty is zero; the method lives in :meth:`transform`, which must be applied to the
    target model before training (``model = reg.transform(model)``). ``penalty`` raises if the
    model it sees has no StochNorm layer, so a forgotten transform cannot pass for a result.

    Paper: Kou, You, Long & Wang, "Stochastic Normalization", NeurIPS 2020. See
    :class:`StochNorm2d` for the definition.

    Args:
        source_model: unused.
        target_model: unused (call :meth:`transform` on it).
        p: probability of the batch-statistics branch (default 0.5, the authors').
    """

    def __init__(
        self,
        source_model: nn.Module | None = None,
        target_model: nn.Module | None = None,
        *,
        p: float = 0.5,
    ) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)

    def transform(self, model: nn.Module) -> nn.Module:
        return convert_to_stochnorm(model, self.p)

    def forward(self, model: nn.Module) -> torch.Tensor:
        if not any(isinstance(module, _StochNorm) for module in model.modules()):
            raise RuntimeError(
                "the model has no StochNorm layer: call model = regularizer.transform(model) "
                "before training"
            )
        return next(model.parameters()).new_zeros(())

    def penalty(self, ctx: StepContext) -> torch.Tensor:
        self(ctx.model)
        return zero_like(ctx)

    def extra_repr(self) -> str:
        return f"p={self.p}"
