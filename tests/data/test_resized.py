"""``ImageDataset.resized``: the early returns give exactly the tensors of the float path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from survey_lib.data.base import ImageDataset


def _reference(images: torch.Tensor, size: int, channels: int | None) -> torch.Tensor:
    """The float path every call took before the early returns (the old implementation)."""
    x = images.float()
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    if channels is not None and channels != x.shape[1]:
        x = x.repeat(1, channels, 1, 1) if x.shape[1] == 1 else x.mean(dim=1, keepdim=True)
    return x.round().clamp(0, 255).to(torch.uint8)


def _dataset(channels: int, side: int = 12) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, channels, side, side), dtype=torch.uint8, generator=g)
    return ImageDataset("toy", "train", images, torch.tensor([0, 1, 0, 1, 0, 1]), ("a", "b"))


@pytest.mark.parametrize(
    ("in_channels", "size", "channels"),
    [
        (1, 12, None),
        (1, 12, 1),
        (3, 12, 3),
        (1, 12, 3),
        (1, 8, 3),
        (3, 8, 1),
        (3, 12, 1),
        (3, 16, None),
    ],
)
def test_resized_equals_the_float_path(in_channels: int, size: int, channels: int | None) -> None:
    ds = _dataset(in_channels)
    out = ds.resized(size, channels)
    expected = _reference(ds.images, size, channels)
    assert out.images.dtype == torch.uint8
    assert torch.equal(out.images, expected)
    assert torch.equal(out.labels, ds.labels) and out.class_names == ds.class_names


def test_resized_returns_self_when_nothing_changes() -> None:
    ds = _dataset(3)
    assert ds.resized(12) is ds
    assert ds.resized(12, 3) is ds
    assert ds.resized(8) is not ds


def test_resized_rejects_bad_channel_conversions_and_sizes() -> None:
    with pytest.raises(ValueError, match="cannot convert 3 channels to 2"):
        _dataset(3).resized(12, 2)
    with pytest.raises(ValueError, match="size must be a positive integer"):
        _dataset(1).resized(0)
