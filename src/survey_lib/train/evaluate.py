"""Evaluation of a classifier on an :class:`ImageDataset`: logits, loss and accuracy.

Images are normalised on the device as :math:`(x/255 - \\mu)/\\sigma` per channel, the same
transform the training engine applies; the reported loss is the mean cross-entropy
:math:`-\\frac1N\\sum_i \\log p_\\theta(y_i\\mid x_i)`, the accuracy the top-1 rate and
the mean per-class accuracy Kornblith et al. report (:func:`mean_per_class_accuracy`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from survey_lib.data.base import ImageDataset
from survey_lib.train.precision import note_precision, resolve_precision


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


def mean_per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    r"""Mean per-class accuracy: the top-1 rate of each class, averaged over classes.

    Kornblith, Shlens, Le, "Do Better ImageNet Models Transfer Better?", CVPR 2019,
    https://arxiv.org/abs/1805.08974 (reported for Caltech-101, Pets, Flowers and Aircraft):

    .. math::
        \text{mpc} = \frac{1}{|C'|} \sum_{c \in C'} \frac{|\{i : y_i = c,\ \hat y_i = c\}|}
        {|\{i : y_i = c\}|},

    with :math:`C'` the classes present in ``labels``: a class with no test image has no
    accuracy and is skipped (not counted as 0 or 1). On a balanced test set it equals top-1.

    Args:
        predictions: predicted class per example, shape (N,).
        labels: true class per example, shape (N,).

    Returns:
        The mean per-class accuracy in [0, 1]; 0.0 for an empty test set (as top-1).
    """
    if labels.numel() == 0:
        return 0.0
    present, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    correct = torch.zeros(len(present), dtype=torch.float64)
    correct.index_add_(0, inverse.cpu(), (predictions == labels).double().cpu())
    return float((correct / counts.cpu().double()).mean())


def eval_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """``loss`` (mean cross-entropy), ``accuracy`` (top-1) and ``mean_per_class_accuracy``
    (:func:`mean_per_class_accuracy`) of ``logits`` (N, K) against ``labels`` (N,)."""
    loss = F.cross_entropy(logits, labels, reduction="sum") / max(1, labels.numel())
    pred = logits.argmax(1)
    acc = (pred == labels).float().mean() if labels.numel() else loss * 0
    return {"loss": float(loss), "accuracy": float(acc),
            "mean_per_class_accuracy": mean_per_class_accuracy(pred, labels)}


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
    precision = resolve_precision(dev, amp_bf16)
    note_precision(precision)  # recorded in the run's provenance (survey_lib.train.precision)
    amp = precision == "bf16"
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
    """Mean cross-entropy, top-1 and mean per-class accuracy of ``model`` on ``data`` (eval
    mode; :func:`eval_metrics`).

    Returns:
        ``{"loss": float, "accuracy": float, "mean_per_class_accuracy": float}``.
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
