"""Input normalisation and fixed-feature extraction (the penultimate layer of a model)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from survey_lib.data.base import ImageDataset
from survey_lib.models.base import TransferModel


def _as_channel_tensor(values: Sequence[float], name: str, channels: int) -> torch.Tensor:
    out = torch.as_tensor(tuple(float(v) for v in values), dtype=torch.float32)
    if out.ndim != 1 or out.numel() != channels:
        raise ValueError(
            f"{name} must give one value per channel ({channels}), got {tuple(values)}"
        )
    return out.view(1, channels, 1, 1)


def normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Scale ``uint8`` images to [0, 1] and standardise each channel.

    .. math:: \\hat x_{c} = \\frac{x_{c} / 255 - \\mu_c}{\\sigma_c}

    Args:
        images: ``uint8`` tensor (N, C, H, W) on any device.
        mean: per-channel means :math:`\\mu_c` on the [0, 1] scale (timm's convention).
        std: per-channel standard deviations :math:`\\sigma_c` on the [0, 1] scale.

    Returns:
        ``float32`` tensor (N, C, H, W) on the device of ``images``.
    """
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise ValueError(
            f"images must be a uint8 (N, C, H, W) tensor, got {images.dtype} "
            f"with shape {tuple(images.shape)}"
        )
    channels = images.shape[1]
    mu = _as_channel_tensor(mean, "mean", channels).to(images.device)
    sigma = _as_channel_tensor(std, "std", channels).to(images.device)
    if bool((sigma <= 0).any()):
        raise ValueError(f"std must be positive, got {tuple(std)}")
    return (images.float().div_(255.0) - mu) / sigma


def dataset_stats(
    data: ImageDataset, *, chunk: int = 4096
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of a dataset's pixels on the [0, 1] scale.

    Computed in float64 over all pixels of all images (population standard deviation), in
    chunks of ``chunk`` images so large datasets do not need a float copy in memory.

    Returns:
        ``(mean, std)``, each a tuple with one float per channel.
    """
    if len(data) == 0:
        raise ValueError(f"{data.name}/{data.split} is empty: no statistics to compute")
    channels = data.images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, len(data), chunk):
        x = data.images[start : start + chunk].to(torch.float64).div_(255.0)
        total += x.sum(dim=(0, 2, 3))
        total_sq += x.square().sum(dim=(0, 2, 3))
    count = len(data) * data.images.shape[2] * data.images.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0.0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


@torch.no_grad()
def extract_features(
    model: TransferModel,
    data: ImageDataset,
    *,
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    mean: Sequence[float],
    std: Sequence[float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Penultimate features and logits of every image, in eval mode.

    The model is moved to ``device`` (and left there) and put in eval mode for the pass; its
    previous train/eval mode is restored afterwards. Images are normalised with
    :func:`normalize`; they must already have the size and channels the model expects (see
    :meth:`ImageDataset.resized`).

    Args:
        model: any :class:`TransferModel`.
        data: the images to embed.
        batch_size: images per forward pass.
        device: where to run the model.
        mean: per-channel means on the [0, 1] scale.
        std: per-channel standard deviations on the [0, 1] scale.

    Returns:
        ``(features, logits)``, float32 CPU tensors of shapes (N, feature_dim) and
        (N, num_classes), in the order of ``data``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    was_training = model.training
    model.to(device).eval()
    features: list[torch.Tensor] = []
    logits: list[torch.Tensor] = []
    try:
        for start in range(0, len(data), batch_size):
            x = normalize(data.images[start : start + batch_size].to(device), mean, std)
            feats = model.forward_features(x)
            features.append(feats.float().cpu())
            logits.append(model.forward_head(feats).float().cpu())
    finally:
        model.train(was_training)
    if not features:
        return torch.zeros(0, model.feature_dim), torch.zeros(0, model.num_classes)
    return torch.cat(features), torch.cat(logits)
