"""DELTA: attention-weighted distance between source and target feature maps."""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext

import torch
from torch import nn

from survey_lib.regularizers.base import (
    Regularizer,
    frozen_copy,
    model_units,
    squared_norm,
    unit_output_module,
)
from survey_lib.regularizers.delta_attention import Batch, channel_attention, fit_head
from survey_lib.train.context import StepContext

REDUCTIONS = ("sum", "mean")


def default_layers(model: nn.Module) -> tuple[str, ...]:
    """Names of the units (classifier excluded) that contain a convolution."""
    names = tuple(
        name
        for name, unit in model_units(model)[:-1]
        if any(isinstance(m, nn.modules.conv._ConvNd) for m in unit.modules())
    )
    if not names:
        raise ValueError(f"{type(model).__name__} has no convolutional unit; pass layers=[...]")
    return names


def feature_map_distance(
    target_maps: Mapping[str, torch.Tensor],
    source_maps: Mapping[str, torch.Tensor],
    weights: Mapping[str, torch.Tensor] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """:math:`\\frac12 \\sum_j \\sum_c C_j W_{j,c} \\|FM_{j,c}^t - FM_{j,c}^s\\|_2^2 / |S_j|`.

    Per sample, then averaged (``"mean"``, the paper's objective) or summed (``"sum"``, the
    authors' code) over the batch. :math:`|S_j|` is the number of spatial positions (1 for
    (B, C) outputs); ``weights``
    ``None`` means uniform :math:`W_{j,c} = 1/C_j`. Source maps are detached.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")
    total = None
    for name, target in target_maps.items():
        source = source_maps[name]
        if target.shape != source.shape:
            raise ValueError(
                f"layer {name}: target {tuple(target.shape)} vs source {tuple(source.shape)}"
            )
        batch, channels = target.shape[:2]
        diff = target.float() - source.detach().float()  # bf16 maps (autocast) compared in fp32
        per_channel = diff.reshape(batch, channels, -1).pow(2).mean(dim=2)
        if weights is None:
            per_sample = per_channel.sum(dim=1)
        else:
            weight = weights[name]
            if weight.shape != (channels,):
                raise ValueError(
                    f"layer {name}: {channels} channels but weights of shape {tuple(weight.shape)}"
                )
            per_sample = channels * (per_channel * weight).sum(dim=1)
        term = 0.5 * (per_sample.sum() if reduction == "sum" else per_sample.mean())
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no layers to compare")
    return total


def _is_channels_last(x: torch.Tensor) -> bool:
    """Whether a 4-D batch is laid out channels-last (and not also plain contiguous)."""
    return (
        x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    )


def _model_channels_last(model: nn.Module) -> bool:
    """Whether ``model``'s convolution kernels are stored channels-last (``fit`` does that
    when ``config.channels_last``); kernels with one input channel or 1x1 are ambiguous and
    skipped."""
    for param in model.parameters():
        if param.ndim == 4 and param.shape[1] > 1 and param.shape[2] * param.shape[3] > 1:
            return _is_channels_last(param)
    return False


def _capture(owner: weakref.ref, name: str) -> Callable[..., None]:
    def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
        regularizer = owner()
        # only training forwards: evaluation under no_grad must not leave stale maps behind
        if regularizer is not None and torch.is_grad_enabled():
            regularizer._captured[name] = output

    return hook


class DELTA(Regularizer):
    """DELTA of Li et al.: keep the target's feature maps close to the source's, channel-weighted.

    Paper: "DELTA: Deep Learning Transfer using Feature Map with Attention for Convolutional
    Networks", ICLR 2019, https://openreview.net/forum?id=rkgbwsAcYm.

    .. math::

        \\Omega(w) = \\frac{\\alpha}{B} \\sum_{i=1}^{B} \\frac12 \\sum_{j} \\sum_{c=1}^{C_j}
            C_j W_{j,c} \\frac{\\|FM_{j,c}(w, x_i) - FM_{j,c}(w^0, x_i)\\|_2^2}{|S_j|}
            + \\frac{\\beta}{2} \\|w_{\\text{head}}\\|_2^2

    :math:`FM_{j,c}` is channel :math:`c` of unit :math:`j`'s output (:math:`|S_j|` positions),
    :math:`W_{j,c}` the channel attention of :func:`~survey_lib.regularizers.delta_attention.channel_attention` (uniform :math:`1/C_j`
    when ``attention=False``, the unweighted variant), :math:`w^0` the frozen source.
    The per-example term, :math:`C_j W/|S_j|` and the L2 term on all head parameters (weights
    and biases) follow the authors' code. Batch reduction: the formula is written per example
    :math:`x_i` (survey section 5.2.1), added to the per-example loss and so averaged like the
    cross-entropy: the default ``reduction="mean"``. The authors' released code *sums* over the
    batch
    (``reduction="sum"``), which multiplies the effective :math:`\\alpha` by the batch size
    :math:`B`. With ``"sum"``, :math:`\\alpha = 0.01`, batch 64, SGD lr 0.01 and momentum 0.9,
    fine-tuning a randomly initialised ``alexnet_small`` (no BatchNorm) diverged within three
    steps in our check,
    while ``"mean"`` trained; ``resnet_small`` trained with both.

    The module keeps a frozen copy of the source (eval mode, parameters turned into buffers) and
    hooks the target's chosen units: the engine's forward pass leaves their outputs here, and
    :meth:`penalty` runs the source on ``ctx.inputs`` under ``no_grad`` and compares.

    Channel weights are computed once at construction from the pretrained body with the target's
    head, as in the authors' code: the head (``head``, default a copy of the target's classifier)
    is first fitted for ``head_steps`` Adam steps on frozen source features of ``attention_data``
    (a batch ``(inputs, labels)`` of normalised target data, or a list of batches); the target
    model itself is not changed. Precomputed ``channel_weights`` skip this.

    Args:
        source_model: the pretrained TransferModel.
        target_model: the model being fine-tuned (its units are hooked).
        alpha: feature-map trade-off.
        beta: head L2 trade-off.
        layers: unit names whose outputs are compared; default every unit holding a convolution.
        attention: weight channels by :func:`~survey_lib.regularizers.delta_attention.channel_attention` (else uniform).
        channel_weights: precomputed ``{layer: (C_j,) weights}``.
        attention_data: target data for the channel weights.
        head: classifier used for the channel weights (default: the target's).
        head_steps: Adam steps fitting that head on frozen source features (0: use as is).
        temperature: softmax temperature :math:`T` of the channel weights (authors: 5).
        reduction: ``"mean"`` (the paper's objective) or ``"sum"`` (the authors' code) over
            the batch.
        attention_amp: run the attention's forwards under bf16 autocast (as training on CUDA).

    Devices: the attention (head fit and ablations) runs on the device of ``attention_data``
    in its memory format (pass them as the run will train: on its device, channels-last when
    it trains channels-last), the source's forward in :meth:`penalty` on the step's device,
    in the target model's memory format and under the autocast the target's maps were
    computed in (bf16 maps: bf16 source maps; the distance itself is taken in float32).
    """

    needs_source = True
    needs_target = True

    def __init__(
        self,
        source_model: nn.Module,
        target_model: nn.Module,
        *,
        alpha: float = 0.01,
        beta: float = 0.01,
        layers: Sequence[str] | None = None,
        attention: bool = True,
        channel_weights: Mapping[str, torch.Tensor] | None = None,
        attention_data: Batch | Sequence[Batch] | None = None,
        head: nn.Module | None = None,
        head_steps: int = 100,
        temperature: float = 5.0,
        reduction: str = "mean",
        attention_amp: bool = False,
    ) -> None:
        super().__init__()
        for key, value in (("alpha", alpha), ("beta", beta), ("head_steps", head_steps)):
            if value < 0:
                raise ValueError(f"{key} must be >= 0, got {value}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}; valid: {', '.join(REDUCTIONS)}")
        self.alpha, self.beta, self.reduction = float(alpha), float(beta), reduction
        self.attention = bool(attention)
        body = [name for name, _ in model_units(source_model)[:-1]]
        self.layers = tuple(layers) if layers is not None else default_layers(source_model)
        target_units = [name for name, _ in model_units(target_model)[:-1]]
        unknown = [name for name in self.layers if name not in body or name not in target_units]
        if unknown or not self.layers:
            raise ValueError(f"layers {unknown or '[]'} are not body units; valid: {body}")
        self._last_index = max(body.index(name) for name in self.layers)
        self.source = frozen_copy(source_model)
        if self.attention:
            if channel_weights is None:
                if attention_data is None:
                    raise ValueError(
                        "DELTA with attention needs attention_data=(inputs, labels) or "
                        "channel_weights={layer: weights}; use 'delta_unweighted' for uniform "
                        "weights"
                    )
                channel_weights = self._attention(
                    source_model,
                    target_model,
                    attention_data,
                    head,
                    head_steps,
                    temperature,
                    attention_amp,
                )
            if sorted(channel_weights) != sorted(self.layers):
                raise ValueError(
                    f"channel_weights has layers {sorted(channel_weights)}, "
                    f"expected {sorted(self.layers)}"
                )
            for name in self.layers:
                self.register_buffer(
                    f"attention__{name}", torch.as_tensor(channel_weights[name]).detach().clone()
                )
        elif channel_weights is not None or attention_data is not None:
            raise ValueError("attention=False takes neither channel_weights nor attention_data")
        self._captured: dict[str, torch.Tensor] = {}
        self._source_channels_last = False
        owner = weakref.ref(self)
        self._handles = [
            unit_output_module(target_model, name).register_forward_hook(_capture(owner, name))
            for name in self.layers
        ]

    def _attention(
        self,
        source_model: nn.Module,
        target_model: nn.Module,
        data: Batch | Sequence[Batch],
        head: nn.Module | None,
        head_steps: int,
        temperature: float,
        amp: bool,
    ) -> dict[str, torch.Tensor]:
        is_one_batch = (
            isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor)
        )
        batches = [data] if is_one_batch else list(data)
        device = batches[0][0].device
        probe = frozen_copy(source_model).to(device)
        if _is_channels_last(batches[0][0]):
            probe.to(memory_format=torch.channels_last)
        classifier = copy.deepcopy(head if head is not None else target_model.get_classifier())
        classifier.to(device)
        if head_steps > 0:
            fit_head(probe, classifier, batches, steps=head_steps, amp=amp)
        probe.set_classifier(classifier)
        weights = channel_attention(probe, self.layers, batches, temperature=temperature, amp=amp)
        return {name: w.cpu() for name, w in weights.items()}

    def channel_weights(self) -> dict[str, torch.Tensor] | None:
        """The stored channel weights (``None`` for the unweighted variant)."""
        if not self.attention:
            return None
        return {name: getattr(self, f"attention__{name}") for name in self.layers}

    @torch.no_grad()
    def source_maps(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Outputs of the chosen units of the frozen source on ``inputs``."""
        maps: dict[str, torch.Tensor] = {}
        if getattr(self.source, "sequential", False):
            x = inputs
            for name, unit in model_units(self.source)[: self._last_index + 1]:
                x = unit(x)
                if name in self.layers:
                    maps[name] = x
            return maps
        handles = [
            unit_output_module(self.source, name).register_forward_hook(
                lambda m, a, out, name=name: maps.__setitem__(name, out)
            )
            for name in self.layers
        ]
        try:
            self.source(inputs)
        finally:
            for handle in handles:
                handle.remove()
        return maps

    def forward(self, inputs: torch.Tensor, model: nn.Module) -> torch.Tensor:
        """Penalty for the batch ``inputs`` that ``model`` (the hooked target) just ran on."""
        captured, self._captured = self._captured, {}
        missing = [name for name in self.layers if name not in captured]
        stale = [
            name
            for name in self.layers
            if name in captured and captured[name].shape[0] != inputs.shape[0]
        ]
        if missing or stale:
            raise RuntimeError(
                f"DELTA has no target feature maps for {missing + stale} from this batch: the "
                "hooked "
                "target model must run forward on these inputs with gradients enabled just before"
            )
        target = {name: captured[name] for name in self.layers}
        dtype = target[self.layers[0]].dtype
        amp = dtype in (torch.bfloat16, torch.float16)
        context = torch.autocast(inputs.device.type, dtype=dtype) if amp else nullcontext()
        with context:
            source = self.source_maps(inputs)
        distance = feature_map_distance(target, source, self.channel_weights(), self.reduction)
        head = squared_norm(list(model_units(model)[-1][1].parameters()), distance)
        return self.alpha * distance + 0.5 * self.beta * head

    def penalty(self, ctx: StepContext) -> torch.Tensor:
        if ctx.inputs is None:
            raise ValueError(
                "DELTA compares source and target feature maps on the input batch, but "
                "ctx.inputs is "
                "None (the step trained on cached frozen-unit outputs); train DELTA without caching"
            )
        self.follow_device(ctx)
        channels_last = _model_channels_last(ctx.model)
        if channels_last != self._source_channels_last:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            self.source.to(memory_format=fmt)
            self._source_channels_last = channels_last
        return self(ctx.inputs, ctx.model)

    def train(self, mode: bool = True) -> DELTA:
        super().train(mode)
        self.source.eval()  # the reference stays the pretrained network, BN statistics included
        return self

    def remove_hooks(self) -> None:
        """Detach from the target model."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def extra_repr(self) -> str:
        return (
            f"layers={list(self.layers)}, alpha={self.alpha}, beta={self.beta}, "
            f"attention={self.attention}, reduction={self.reduction!r}"
        )
