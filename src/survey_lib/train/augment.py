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

``rrc_flip`` is the Inception random-resized crop (Szegedy et al., "Going Deeper with
Convolutions", CVPR 2015, https://arxiv.org/abs/1409.4842) plus the flip, the augmentation of
Kornblith et al.'s fine-tuning protocol: a box of random area and aspect ratio
(:func:`sample_boxes`, torchvision's ``RandomResizedCrop`` rule and defaults) is resized back to
the input size by a batched bilinear gather (:func:`resized_crop`), again without a per-image
loop. Note that it crops the stored image (here already resized and centre-cropped), not the
original full-resolution file.
"""

from __future__ import annotations

import math

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


# --- random-resized crop (Inception) -------------------------------------------------------

RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (3.0 / 4.0, 4.0 / 3.0)
RRC_ATTEMPTS = 10


def sample_boxes(
    batch: int,
    height: int,
    width: int,
    *,
    scale: tuple[float, float] = RRC_SCALE,
    ratio: tuple[float, float] = RRC_RATIO,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    r"""Crop boxes of the random-resized crop, drawn for a whole batch at once.

    Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, https://arxiv.org/abs/1409.4842
    (the Inception crop), with the sampling rule and defaults of torchvision's
    ``RandomResizedCrop.get_params``. For an :math:`H\times W` image each of
    :math:`T = 10` attempts draws an area fraction and a log aspect ratio

    .. math::
        s \sim \mathcal U(s_0, s_1), \quad \log r \sim \mathcal U(\log r_0, \log r_1), \quad
        w = \operatorname{round}\sqrt{s H W r}, \quad h = \operatorname{round}\sqrt{s H W / r},

    and the first attempt with :math:`0 < w \le W` and :math:`0 < h \le H` is placed at
    :math:`(i, j)` with :math:`i \sim \mathcal U\{0..H-h\}`, :math:`j \sim \mathcal U\{0..W-w\}`.
    When no attempt fits, the box is the centred crop of the whole image with its aspect ratio
    clamped to :math:`[r_0, r_1]`.

    Args:
        batch: number of boxes :math:`B`.
        height: image height :math:`H`.
        width: image width :math:`W`.
        scale: :math:`(s_0, s_1)`, area fractions with :math:`0 < s_0 \le s_1`.
        ratio: :math:`(r_0, r_1)`, width / height with :math:`0 < r_0 \le r_1`.
        generator: the source of randomness (on ``device``).
        device: where the boxes are drawn.

    Returns:
        ``int64`` tensor of shape (B, 4): top :math:`i`, left :math:`j`, height :math:`h`,
        width :math:`w` of each box.
    """
    if not 0 < scale[0] <= scale[1]:
        raise ValueError(f"scale must satisfy 0 < low <= high, got {scale!r}")
    if not 0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must satisfy 0 < low <= high, got {ratio!r}")
    area = float(height * width)
    u = torch.rand(3, batch, RRC_ATTEMPTS, device=device, generator=generator, dtype=torch.float64)
    s = scale[0] + (scale[1] - scale[0]) * u[0]
    log_r0, log_r1 = math.log(ratio[0]), math.log(ratio[1])
    r = torch.exp(log_r0 + (log_r1 - log_r0) * u[1])
    w = torch.round(torch.sqrt(s * area * r)).long()
    h = torch.round(torch.sqrt(s * area / r)).long()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.long().argmax(1, keepdim=True)  # index of the first fitting attempt
    found = fits.any(1)
    w = w.gather(1, first).squeeze(1)
    h = h.gather(1, first).squeeze(1)
    # fallback: the whole image, aspect ratio clamped to the range (torchvision's rule)
    in_ratio = width / height
    if in_ratio < ratio[0]:
        fw, fh = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fw, fh = int(round(height * ratio[1])), height
    else:
        fw, fh = width, height
    w = torch.where(found, w, torch.full_like(w, fw))
    h = torch.where(found, h, torch.full_like(h, fh))
    pos = torch.rand(2, batch, device=device, generator=generator, dtype=torch.float64)
    top = torch.floor(pos[0] * (height - h + 1)).long().clamp(max=height - h)
    left = torch.floor(pos[1] * (width - w + 1)).long().clamp(max=width - w)
    top = torch.where(found, top, (height - h) // 2)
    left = torch.where(found, left, (width - w) // 2)
    return torch.stack([top, left, h, w], 1)


def _source_index(
    start: torch.Tensor, length: torch.Tensor, out: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear source taps of resizing a span of ``length`` pixels starting at ``start`` to
    ``out`` pixels: ``F.interpolate``'s half-pixel rule (``align_corners=False``), clamped to the
    span, so the result equals cropping first and resizing the crop."""
    dst = torch.arange(out, device=start.device, dtype=torch.float64)
    src = ((dst + 0.5) * (length.double() / out).unsqueeze(1) - 0.5).clamp(min=0.0)
    i0 = src.floor().long()
    i0 = torch.minimum(i0, (length - 1).unsqueeze(1))
    i1 = torch.minimum(i0 + 1, (length - 1).unsqueeze(1))
    frac = (src - i0.double()).float()
    return start.unsqueeze(1) + i0, start.unsqueeze(1) + i1, frac


def resized_crop(
    images: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int], *, flip: torch.Tensor | None
) -> torch.Tensor:
    r"""Crop each image to its box and resize it bilinearly to ``size``, in one batched gather.

    Separable bilinear interpolation with the half-pixel convention of
    ``F.interpolate(..., mode="bilinear", align_corners=False)`` applied to each crop: output
    row :math:`u` of a box of height :math:`h` at top :math:`i` reads source row
    :math:`i + \max(0, (u + \tfrac12) h / H' - \tfrac12)` (clamped to the box). Crops are never
    larger than the output here, so no antialiasing is needed. ``uint8`` inputs are rounded
    back to ``uint8``.

    Args:
        images: (B, C, H, W).
        boxes: (B, 4) ``int64`` boxes (top, left, height, width), as from :func:`sample_boxes`.
        size: output :math:`(H', W')`.
        flip: (B,) bool, mirror the output horizontally where true (or ``None``).

    Returns:
        (B, C, H', W') tensor of the dtype of ``images``.
    """
    b, c, _, _ = images.shape
    out_h, out_w = size
    r0, r1, fy = _source_index(boxes[:, 0], boxes[:, 2], out_h)  # (B, H')
    c0, c1, fx = _source_index(boxes[:, 1], boxes[:, 3], out_w)  # (B, W')
    if flip is not None:
        f = flip.view(b, 1)
        c0, c1, fx = (torch.where(f, t.flip(1), t) for t in (c0, c1, fx))
    x = images.float()
    w_in = x.shape[-1]

    def rows(index: torch.Tensor) -> torch.Tensor:
        return x.gather(2, index.view(b, 1, out_h, 1).expand(b, c, out_h, w_in))

    fy4 = fy.view(b, 1, out_h, 1)
    x = rows(r0) * (1 - fy4) + rows(r1) * fy4  # (B, C, H', W)

    def cols(index: torch.Tensor) -> torch.Tensor:
        return x.gather(3, index.view(b, 1, 1, out_w).expand(b, c, out_h, out_w))

    fx4 = fx.view(b, 1, 1, out_w)
    y = cols(c0) * (1 - fx4) + cols(c1) * fx4
    if images.dtype == torch.uint8:
        return y.round_().clamp_(0, 255).to(torch.uint8)
    return y.to(images.dtype)


def random_resized_crop_flip(
    images: torch.Tensor,
    *,
    generator: torch.Generator,
    scale: tuple[float, float] = RRC_SCALE,
    ratio: tuple[float, float] = RRC_RATIO,
    flip: bool = True,
) -> torch.Tensor:
    r"""Random-resized crop (Inception) and horizontal flip of a batch, at the input's size.

    Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, https://arxiv.org/abs/1409.4842;
    the fine-tuning augmentation of Kornblith, Shlens and Le, CVPR 2019. Each image gets a box
    from :func:`sample_boxes` (torchvision's ``RandomResizedCrop`` defaults: scale
    :math:`(0.08, 1)`, ratio :math:`(3/4, 4/3)`), is resized from it to :math:`H \times W`
    (:func:`resized_crop`) and mirrored with probability 1/2:

    .. math::
        y = \operatorname{flip}^{f}\big(\operatorname{resize}_{H\times W}
        (x_{i:i+h,\; j:j+w})\big), \quad f \sim \mathrm{Bernoulli}(1/2).

    Args:
        images: (B, C, H, W) on the generator's device.
        generator: the source of randomness (same device as ``images``).
        scale: area-fraction range of the crop.
        ratio: aspect-ratio range (width / height) of the crop.
        flip: apply the random horizontal flip.

    Returns:
        A new (B, C, H, W) tensor of the dtype of ``images``.
    """
    b, _, h, w = images.shape
    boxes = sample_boxes(b, h, w, scale=scale, ratio=ratio, generator=generator,
                         device=images.device)
    flips = torch.rand(b, device=images.device, generator=generator) < 0.5 if flip else None
    return resized_crop(images, boxes, (h, w), flip=flips)


def augment_batch(
    images: torch.Tensor, mode: str, *, padding: int, generator: torch.Generator
) -> torch.Tensor:
    """Apply the augmentation named ``mode`` (one of ``AUGMENTS``) to a batch (``padding`` is
    used by the crops of :func:`crop_flip` only)."""
    if mode not in AUGMENTS:
        raise ValueError(f"augment must be one of {AUGMENTS}, got {mode!r}")
    if mode == "rrc_flip":
        return random_resized_crop_flip(images, generator=generator)
    return crop_flip(
        images,
        padding=padding,
        crop=mode in ("crop_flip", "crop"),
        flip=mode in ("crop_flip", "flip"),
        generator=generator,
    )
