"""DELTA's channel attention: how much the loss rises when one output channel is removed.

Li et al., "DELTA: Deep Learning Transfer using Feature Map with Attention for Convolutional
Networks", ICLR 2019, https://openreview.net/forum?id=rkgbwsAcYm (section 3.2 and the authors'
code). Used by :class:`survey_lib.regularizers.delta.DELTA`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from survey_lib.regularizers.base import model_units, unit_output_module
from survey_lib.train.evaluate import autocast

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
        base = F.cross_entropy(model(inputs).float(), labels)
        channels, size = int(state["channels"]), inputs.shape[0]
        chunk = max(1, max_chunk // size)
        losses = []
        for start in range(0, channels, chunk):
            index = torch.arange(start, min(start + chunk, channels), device=inputs.device)
            mask = torch.ones(len(index), channels, device=inputs.device)
            mask[torch.arange(len(index)), index] = 0.0
            state["mask"] = mask
            repeated = inputs.repeat(len(index), *([1] * (inputs.ndim - 1)))
            logits = model(repeated).float()
            loss = F.cross_entropy(logits, labels.repeat(len(index)), reduction="none")
            losses.append(loss.view(len(index), size).mean(dim=1))
        return base, torch.cat(losses)
    finally:
        handle.remove()


def _prefix_units(model: nn.Module, layers: Sequence[str]) -> list[tuple[str, int]] | None:
    """``(layer, unit index)`` in forward order when the ablations can start at the ablated
    unit from cached activations: a sequential model whose hooked module for each layer is
    the unit itself. ``None`` otherwise (timm backbones: one whole forward per ablation)."""
    if not getattr(model, "sequential", False) or not callable(
        getattr(model, "forward_units", None)
    ):
        return None
    units = model_units(model)
    index = {name: i for i, (name, _) in enumerate(units)}
    if any(unit_output_module(model, name) is not units[index[name]][1] for name in layers):
        return None
    return sorted(((name, index[name]) for name in layers), key=lambda pair: pair[1])


def _masked_losses(
    forward: Callable[[torch.Tensor], torch.Tensor],
    activation: torch.Tensor,
    labels: torch.Tensor,
    max_chunk: int,
) -> torch.Tensor:
    """Loss with each channel of ``activation`` zeroed in turn, continuing with ``forward``."""
    channels, size = activation.shape[1], activation.shape[0]
    chunk = max(1, max_chunk // size)
    losses = []
    for start in range(0, channels, chunk):
        index = torch.arange(start, min(start + chunk, channels), device=activation.device)
        mask = torch.ones(len(index), channels, device=activation.device)
        mask[torch.arange(len(index)), index] = 0.0
        view = (len(index), 1, channels) + (1,) * (activation.ndim - 2)
        masked = activation.unsqueeze(0) * mask.view(view).to(activation.dtype)
        logits = forward(masked.reshape(len(index) * size, *activation.shape[1:]))
        loss = F.cross_entropy(logits.float(), labels.repeat(len(index)), reduction="none")
        losses.append(loss.view(len(index), size).mean(dim=1))
    return torch.cat(losses)


def _ablation_increases_cached(
    model: nn.Module,
    prefix: list[tuple[str, int]],
    inputs: torch.Tensor,
    labels: torch.Tensor,
    max_chunk: int,
) -> dict[str, torch.Tensor]:
    """Per layer, loss increase of each channel's ablation, each ablated forward starting at
    the ablated unit: ``forward_units(masked activation, j + 1)`` from the activation of unit
    ``j`` computed once per batch (the same function as the hooked whole forward)."""
    activations: dict[str, torch.Tensor] = {}
    x, done = inputs, 0
    for name, index in prefix:
        x = model.forward_units(x, done, index + 1)
        activations[name], done = x, index + 1
    base = F.cross_entropy(model.forward_units(x, done, None).float(), labels)
    return {
        name: _masked_losses(
            lambda h, start=index + 1: model.forward_units(h, start, None),
            activations[name],
            labels,
            max_chunk,
        )
        - base
        for name, index in prefix
    }


@torch.no_grad()
def channel_attention(
    model: nn.Module,
    layers: Sequence[str],
    batches: Iterable[Batch],
    *,
    temperature: float = 5.0,
    max_chunk: int = 512,
    amp: bool = False,
    cached: bool | None = None,
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

    The forwards run on the device of ``model`` and ``batches`` (put both there), under bf16
    autocast when ``amp`` (as the training steps on CUDA). For a sequential model (``cached``
    ``None``: whenever possible; ``True`` insists) every unit's activation is computed once
    per batch and each ablated forward starts at the ablated unit
    (``forward_units(masked, j + 1)``), instead of running the unchanged units before it again
    for every channel; other models (timm backbones) run one whole hooked forward per chunk.

    Returns:
        ``{layer: weights}``, each of shape (C_j,), summing to 1.
    """
    prefix = _prefix_units(model, layers) if cached is not False else None
    if cached and prefix is None:
        raise ValueError(
            f"cached=True needs a sequential model whose layers {list(layers)} are its units"
        )
    was_training = model.training
    model.eval()
    increases: dict[str, torch.Tensor] = {}
    count = 0
    try:
        for inputs, labels in batches:
            with autocast(inputs.device, amp):
                if prefix is not None:
                    batch = _ablation_increases_cached(model, prefix, inputs, labels, max_chunk)
                else:
                    batch = {}
                    for name in layers:
                        unit = unit_output_module(model, name)
                        base, ablated = _ablation_losses(model, unit, inputs, labels, max_chunk)
                        batch[name] = ablated - base
            for name in layers:
                increases[name] = increases.get(name, 0.0) + batch[name].float()
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
    body: nn.Module,
    head: nn.Module,
    batches: Sequence[Batch],
    *,
    steps: int,
    lr: float = 0.01,
    amp: bool = False,
) -> nn.Module:
    """Fit ``head`` on frozen ``body.forward_features`` by full-batch Adam (in place).

    The features are computed under bf16 autocast when ``amp``; the head is fitted in float32.
    """
    with torch.no_grad(), autocast(batches[0][0].device, amp):
        features = torch.cat([body.forward_features(inputs) for inputs, _ in batches])
    features = features.float()
    labels = torch.cat([labels for _, labels in batches])
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    head.train()
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(head(features), labels).backward()
        optimizer.step()
    return head.eval()
