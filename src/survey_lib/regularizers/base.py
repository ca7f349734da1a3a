"""The contract every transfer regularizer follows, and the helpers they share.

A regularizer is a small :class:`torch.nn.Module` built from the pretrained (source) model. Its
reference weights live in buffers, so ``.to()`` and ``state_dict()`` carry them. ``forward(...)``
takes the method's natural inputs (a model, a feature matrix, a batch) and returns a scalar;
``penalty(ctx)`` adapts it to the training engine's hook, which adds it to the loss:

.. math::

    \\min_w \\; \\frac{1}{n} \\sum_{i=1}^n L(z(x_i, w), y_i) + \\Omega(w)

with the trade-off coefficients (``alpha``, ``beta``, ``eta``) inside :math:`\\Omega`, as in the
original papers' code.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn

from survey_lib.train.context import StepContext


class Regularizer(nn.Module):
    """Base class: a penalty added to the training loss.

    Class attributes say what the factory must supply: ``needs_source`` (the pretrained model)
    and ``needs_target`` (the model being fine-tuned, for methods that hook into it).
    """

    needs_source: bool = False
    needs_target: bool = False

    def __init__(self) -> None:
        super().__init__()
        #: resolved hyperparameters, filled by :func:`create_regularizer` (for provenance).
        self.hparams: dict[str, object] = {}

    def penalty(self, ctx: StepContext) -> torch.Tensor:
        """The penalty for one training step; the engine adds it to the loss."""
        raise NotImplementedError

    def transform(self, model: nn.Module) -> nn.Module:
        """Change the model before training (identity except for normalisation methods)."""
        return model

    def follow_device(self, ctx: StepContext) -> None:
        """Move the buffers to the step's device: ``fit`` moves the model, not the penalty."""
        buffer = next(self.buffers(), None)
        if buffer is not None and buffer.device != ctx.logits.device:
            self.to(ctx.logits.device)


class CombinedRegularizer(Regularizer):
    """The sum of several regularizers, e.g. L2-SP + BSS.

    .. math::

        \\Omega(\\cdot) = \\sum_r \\Omega_r(\\cdot)

    Args:
        parts: named regularizers, in the order their transforms are applied.
    """

    def __init__(self, parts: Mapping[str, Regularizer]) -> None:
        super().__init__()
        if not parts:
            raise ValueError("CombinedRegularizer needs at least one regularizer")
        self.parts = nn.ModuleDict(dict(parts))

    def forward(self, ctx: StepContext) -> torch.Tensor:
        total = self.parts[next(iter(self.parts))].penalty(ctx)
        for name in list(self.parts)[1:]:
            total = total + self.parts[name].penalty(ctx)
        return total

    def penalty(self, ctx: StepContext) -> torch.Tensor:
        return self(ctx)

    def transform(self, model: nn.Module) -> nn.Module:
        for part in self.parts.values():
            model = part.transform(model)
        return model


def model_units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``model.units()`` of a :class:`~survey_lib.models.base.TransferModel`, checked."""
    units = getattr(model, "units", None)
    if not callable(units):
        raise TypeError(
            f"{type(model).__name__} has no units(); transfer regularizers need a TransferModel "
            "(ordered (name, module) units, classifier last)"
        )
    pairs = list(units())
    if len(pairs) < 2:
        raise ValueError(f"{type(model).__name__} has {len(pairs)} unit(s); need a body and a head")
    return pairs


def unit_output_module(model: nn.Module, name: str) -> nn.Module:
    """The module whose output is unit ``name``'s output: where feature-map hooks attach
    (``model.unit_output(name)`` when the model defines it, else the unit itself)."""
    unit_output = getattr(model, "unit_output", None)
    if callable(unit_output):
        return unit_output(name)
    units = dict(model_units(model))
    if name not in units:
        raise ValueError(f"unknown unit {name!r}; valid: {list(units)}")
    return units[name]


def is_penalized_weight(param: torch.Tensor) -> bool:
    """Conv and linear weights have at least two dimensions; BN scales/shifts and biases are 1-D.

    This is the rule of the L2-SP authors' code (kernels only) and of timm's weight-decay
    exclusion list.
    """
    return param.ndim >= 2


def unit_weights(
    units: Iterable[tuple[str, nn.Module]], *, weights_only: bool = True
) -> list[tuple[str, nn.Parameter]]:
    """``(unit.param, parameter)`` pairs of the given units, weights only by default."""
    return [
        (f"{name}.{pname}", param)
        for name, module in units
        for pname, param in module.named_parameters()
        if not weights_only or is_penalized_weight(param)
    ]


def buffer_name(qualified: str) -> str:
    """A buffer name for a qualified parameter name (buffer names cannot contain dots)."""
    return "w0__" + qualified.replace(".", "__")


def squared_norm(tensors: Sequence[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """:math:`\\sum_t \\|t\\|_2^2`, a zero tensor shaped and placed like ``like`` when empty."""
    total = like.new_zeros(())
    for tensor in tensors:
        total = total + tensor.pow(2).sum()
    return total


def zero_like(ctx: StepContext) -> torch.Tensor:
    """A scalar zero on the device and dtype of the step's logits."""
    return ctx.logits.new_zeros(())


def frozen_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode whose parameters became buffers.

    Buffers move with ``.to()``, appear in ``state_dict()``, take no gradient and are invisible
    to ``parameters()``, so no optimizer can update the copy by accident.
    """
    clone = copy.deepcopy(model)
    for module in clone.modules():
        for name, param in list(module._parameters.items()):
            del module._parameters[name]
            module.register_buffer(name, None if param is None else param.detach().clone())
    return clone.eval()
