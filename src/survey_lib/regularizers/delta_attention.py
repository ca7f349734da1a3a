"""DELTA's channel attention: how much the loss rises when one output channel is removed.

Li et al., "DELTA: Deep Learning Transfer using Feature Map with Attention for Convolutional
Networks", ICLR 2019, https://openreview.net/forum?id=rkgbwsAcYm (section 3.2 and the authors'
code). Used by :class:`survey_lib.regularizers.delta.DELTA`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from survey_lib.regularizers.base import unit_output_module

Batch = tuple[torch.Tensor, torch.Tensor]


def _ablation_losses(
    model: nn.Module, unit: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, max_chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(base loss, loss with each output channel of ``unit`` zeroed), in eval mode, no grad."""
    state: dict[str, torch.Tensor | int | None] = {"mask": None}

    def hook(module: nn.Module, args: object, output: torch.Tensor) -> torch.Tensor | None:
        mask = state["mask"]
        if mask is None:
            state["channels"] = output.shape[1]
            return None
        copies = mask.shape[0]
        view = (copies, 1, output.shape[1]) + (1,) * (output.ndim - 2)
        shaped = output.reshape(copies, -1, *output.shape[1:]) * mask.view(view).to(output.dtype)
        return shaped.reshape(output.shape)

    handle = unit.register_forward_hook(hook)
    try:
        base = F.cross_entropy(model(inputs), labels)
        channels, size = int(state["channels"]), inputs.shape[0]
        chunk = max(1, max_chunk // size)
        losses = []
        for start in range(0, channels, chunk):
            index = torch.arange(start, min(start + chunk, channels), device=inputs.device)
            mask = torch.ones(len(index), channels, device=inputs.device)
            mask[torch.arange(len(index)), index] = 0.0
            state["mask"] = mask
            repeated = inputs.repeat(len(index), *([1] * (inputs.ndim - 1)))
            loss = F.cross_entropy(model(repeated), labels.repeat(len(index)), reduction="none")
            losses.append(loss.view(len(index), size).mean(dim=1))
        return base, torch.cat(losses)
    finally:
        handle.remove()


@torch.no_grad()
def channel_attention(
    model: nn.Module,
    layers: Sequence[str],
    batches: Iterable[Batch],
    *,
    temperature: float = 5.0,
    max_chunk: int = 512,
) -> dict[str, torch.Tensor]:
    """DELTA's channel weights from the loss increase when each channel is removed.

    For unit :math:`j` and channel :math:`c`, :math:`\\Delta_{j,c}` is the increase of the
    cross-entropy of ``model`` (pretrained body with the target's head, eval mode) when that
    channel of the unit's output is set to zero, averaged over ``batches``. Following the
    authors' code the increases are standardised within the layer and passed through a softmax:

    .. math::

        W_{j,c} = \\operatorname{softmax}_c\\left(\\frac{\\Delta_{j,c} - \\bar{\\Delta}_j}
                  {T \\, \\operatorname{std}_c \\Delta_{j,c}}\\right)

    The authors zero the channel's conv filter; we zero the unit's output channel (the same for a
    conv without bias whose output is not renormalised, and defined for any unit). Cost: one
    forward per channel of every layer per batch (chunked ``max_chunk`` samples at a time).

    Returns:
        ``{layer: weights}``, each of shape (C_j,), summing to 1.
    """
    was_training = model.training
    model.eval()
    increases: dict[str, torch.Tensor] = {}
    count = 0
    try:
        for inputs, labels in batches:
            for name in layers:
                unit = unit_output_module(model, name)
                base, ablated = _ablation_losses(model, unit, inputs, labels, max_chunk)
                increases[name] = increases.get(name, 0.0) + (ablated - base)
            count += 1
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("attention data holds no batch")
    weights = {}
    for name in layers:
        increase = increases[name] / count
        spread = increase.std(unbiased=False)
        z = (increase - increase.mean()) / spread if spread > 0 else torch.zeros_like(increase)
        weights[name] = torch.softmax(z / temperature, dim=0)
    return weights


def fit_head(
    body: nn.Module, head: nn.Module, batches: Sequence[Batch], *, steps: int, lr: float = 0.01
) -> nn.Module:
    """Fit ``head`` on frozen ``body.forward_features`` by full-batch Adam (in place)."""
    with torch.no_grad():
        features = torch.cat([body.forward_features(inputs) for inputs, _ in batches])
    labels = torch.cat([labels for _, labels in batches])
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    head.train()
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(head(features), labels).backward()
        optimizer.step()
    return head.eval()
