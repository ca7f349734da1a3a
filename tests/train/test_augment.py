"""Batch-wise crop and flip against a per-image brute-force reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from survey_lib.train import augment_batch, crop_flip


def _images(b: int = 64, c: int = 2, h: int = 6, w: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(1, 256, (b, c, h, w), generator=g).to(torch.uint8)


def _candidates(image: torch.Tensor, padding: int, crop: bool, flip: bool) -> list[torch.Tensor]:
    """Every output a per-image RandomCrop(padding) + RandomHorizontalFlip could produce."""
    _, h, w = image.shape
    p = padding if crop else 0
    padded = F.pad(image, (p, p, p, p))
    out = []
    for a in range(2 * p + 1):
        for b in range(2 * p + 1):
            view = padded[:, a : a + h, b : b + w]
            out.append(view)
            if flip:
                out.append(view.flip(-1))
    return out


@pytest.mark.parametrize("mode", ["crop_flip", "crop", "flip"])
def test_every_output_is_a_valid_crop_or_flip(mode: str) -> None:
    x = _images()
    y = augment_batch(x, mode, padding=2, generator=torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    crop, flip = mode in ("crop_flip", "crop"), mode in ("crop_flip", "flip")
    for i in range(x.shape[0]):
        assert any(torch.equal(y[i], c) for c in _candidates(x[i], 2, crop, flip)), i


def test_offsets_and_flips_are_varied_and_black_padding_appears() -> None:
    x = _images(b=400)
    y = crop_flip(x, padding=2, crop=False, flip=True, generator=torch.Generator().manual_seed(3))
    flipped = sum(not torch.equal(y[i], x[i]) for i in range(len(x)))
    assert 150 < flipped < 250  # about half, Bernoulli(1/2)
    z = crop_flip(x, padding=2, crop=True, flip=False, generator=torch.Generator().manual_seed(3))
    # images have no zero pixel, so zeros only come from the padding of shifted crops
    shifted = (z == 0).flatten(1).any(1).float().mean().item()
    assert shifted > 0.7  # 1 - 1/25 of crops touch the padding


def test_seeded_generator_reproduces_and_seeds_differ() -> None:
    x = _images()
    run = [
        augment_batch(x, "crop_flip", padding=4, generator=torch.Generator().manual_seed(s))
        for s in (5, 5, 6)
    ]
    assert torch.equal(run[0], run[1])
    assert not torch.equal(run[0], run[2])


def test_none_is_identity_and_unknown_mode_rejected() -> None:
    x = _images()
    assert augment_batch(x, "none", padding=4, generator=torch.Generator()) is x
    with pytest.raises(ValueError, match="augment must be one of"):
        augment_batch(x, "cutout", padding=4, generator=torch.Generator())
