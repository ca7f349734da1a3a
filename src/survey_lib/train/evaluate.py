"""Evaluation of a classifier on an :class:`ImageDataset`: logits, loss and accuracy.

Images are normalised on the device as :math:`(x/255 - \\mu)/\\sigma` per channel, the same
transform the training engine applies; the reported loss is the mean cross-entropy
:math:`-\\frac1N\\sum_i \\log p_\\theta(y_i\\mid x_i)` and the accuracy the top-1 rate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from survey_lib.data.base import ImageDataset
from survey_lib.train.precision import resolve_precision


def normalizer(
    mean: Sequence[float], std: Sequence[float], channels: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` of shape (1, C, 1, 1) such that ``x_uint8 * scale + shift`` equals
    :math:`(x/255 - \\mu)/\\sigma`."""
    if len(mean) not in (1, channels) or len(std) not in (1, channels):
        raise ValueError(
            f"mean/std need 1 or {channels} values for {channels}-channel images, "
            f"got {len(mean)} and {len(std)}"
        )
    m = torch.tensor(mean, dtype=torch.float32).expand(channels)
    s = torch.tensor(std, dtype=torch.float32).expand(channels)
    scale = (1.0 / (255.0 * s)).view(1, channels, 1, 1).to(device)
    shift = (-m / s).view(1, channels, 1, 1).to(device)
    return scale, shift


def to_input(
    raw: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, channels_last: bool
) -> torch.Tensor:
    x = torch.addcmul(shift, raw.float(), scale)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if enabled:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def eval_logits(
    model: nn.Module, source: torch.Tensor, forward: Callable, batch_size: int, amp: bool
) -> torch.Tensor:
    with autocast(source.device, amp):
        return torch.cat(
            [
                forward(source[i : i + batch_size]).float()
                for i in range(0, source.shape[0], batch_size)
            ]
        )


def eval_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    loss = F.cross_entropy(logits, labels, reduction="sum") / max(1, labels.numel())
    acc = (logits.argmax(1) == labels).float().mean() if labels.numel() else loss * 0
    return {"loss": float(loss), "accuracy": float(acc)}


def predict_logits(
    model: nn.Module,
    data: ImageDataset,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 512,
    device: str = "cpu",
    amp_bf16: bool | None = None,
    channels_last: bool = True,
) -> torch.Tensor:
    """Logits of ``model`` (moved to ``device``, evaluated in eval mode) on every image.

    ``amp_bf16`` has :class:`~survey_lib.train.TrainConfig`'s meaning (``None``: bf16 on CUDA,
    fp32 on the CPU; ``True``: bf16 where the device computes it natively); pass the run's
    ``config.amp_bf16`` so evaluation uses the training precision.

    Returns:
        float32 tensor (N, K) on the CPU. The modules' train/eval modes are restored.
    """
    dev = torch.device(device)
    amp = resolve_precision(dev, amp_bf16) == "bf16"
    model.to(dev)
    scale, shift = normalizer(mean, std, data.images.shape[1], dev)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        logits = eval_logits(
            model,
            data.images.to(dev),
            lambda raw: model(to_input(raw, scale, shift, channels_last)),
            batch_size,
            amp,
        )
    finally:
        for module, mode in modes:
            module.training = mode
    return logits.cpu()


def evaluate(
    model: nn.Module,
    data: ImageDataset,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 512,
    device: str = "cpu",
    amp_bf16: bool | None = None,
    channels_last: bool = True,
) -> dict[str, float]:
    """Mean cross-entropy and top-1 accuracy of ``model`` on ``data`` (eval mode).

    Returns:
        ``{"loss": float, "accuracy": float}``.
    """
    logits = predict_logits(
        model,
        data,
        mean=mean,
        std=std,
        batch_size=batch_size,
        device=device,
        amp_bf16=amp_bf16,
        channels_last=channels_last,
    )
    return eval_metrics(logits, data.labels)
