"""Batch-wise data augmentation on the training device, with explicit random generators.

Random crop with zero padding and horizontal flip, the standard CIFAR augmentation (He et al.,
"Deep Residual Learning for Image Recognition", CVPR 2016, https://arxiv.org/abs/1512.03385).
For an image :math:`x` of size :math:`H\\times W`, padding :math:`p`, offsets
:math:`(a, b)\\sim\\mathcal U\\{0..2p\\}^2` and flip bit :math:`f\\sim\\mathrm{Bernoulli}(1/2)`,

.. math::
    y_{c,i,j} = \\tilde x_{c,\\,a+i,\\; b + (f\\,(W-1-j) + (1-f)\\,j)},

where :math:`\\tilde x` is :math:`x` zero-padded by :math:`p`. The whole batch is one gather:
no per-image Python loop. The crop and the flip are applied to raw ``uint8`` pixels, before
normalisation, so the padding is black exactly as in ``torchvision.transforms.RandomCrop``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from survey_lib.train.config import AUGMENTS


def crop_flip(
    images: torch.Tensor,
    *,
    padding: int,
    crop: bool,
    flip: bool,
    generator: torch.Generator,
) -> torch.Tensor:
    """Random crop (zero padding ``padding``) and/or horizontal flip of a batch.

    Args:
        images: (B, C, H, W) tensor of any dtype, on the generator's device.
        padding: pixels of zero padding on each side for the crop.
        crop: apply the random crop.
        flip: apply the random horizontal flip (probability 1/2 per image).
        generator: the source of randomness (same device as ``images``).

    Returns:
        A new (B, C, H, W) tensor (``images`` itself when neither is requested).
    """
    if not (crop or flip):
        return images
    b, c, h, w = images.shape
    device = images.device
    rows = torch.arange(h, device=device).expand(b, h)
    cols = torch.arange(w, device=device).expand(b, w)
    src = images
    if crop and padding > 0:
        src = F.pad(images, (padding, padding, padding, padding))
        offsets = torch.randint(0, 2 * padding + 1, (2, b, 1), device=device, generator=generator)
        rows = rows + offsets[0]
        cols = cols + offsets[1]
    if flip:
        flipped = torch.rand(b, 1, device=device, generator=generator) < 0.5
        cols = torch.where(flipped, cols.flip(1), cols)
    batch = torch.arange(b, device=device).view(b, 1, 1, 1)
    chans = torch.arange(c, device=device).view(1, c, 1, 1)
    return src[batch, chans, rows.view(b, 1, h, 1), cols.view(b, 1, 1, w)]


def augment_batch(
    images: torch.Tensor, mode: str, *, padding: int, generator: torch.Generator
) -> torch.Tensor:
    """Apply the augmentation named ``mode`` (one of ``AUGMENTS``) to a batch."""
    if mode not in AUGMENTS:
        raise ValueError(f"augment must be one of {AUGMENTS}, got {mode!r}")
    return crop_flip(
        images,
        padding=padding,
        crop=mode in ("crop_flip", "crop"),
        flip=mode in ("crop_flip", "flip"),
        generator=generator,
    )
