"""The one in-memory dataset type every loader returns."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def tensor_checksum(images: torch.Tensor, labels: torch.Tensor) -> str:
    """SHA-256 (first 16 hex digits) of the raw bytes of ``images`` and ``labels``.

    Identifies the exact pixels and labels a result was computed on; it is recorded in every
    run's provenance.
    """
    digest = hashlib.sha256()
    digest.update(str(tuple(images.shape)).encode())
    digest.update(images.contiguous().numpy().tobytes())
    digest.update(labels.to(torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ImageDataset:
    """Images, labels and class names of one split of one dataset.

    Attributes:
        name: registry name, e.g. ``"fashion_mnist"``.
        split: ``"train"`` or ``"test"`` (or a derived name such as ``"train[A]"``).
        images: ``uint8`` tensor of shape (N, C, H, W).
        labels: ``int64`` tensor of shape (N,) with values in ``[0, len(class_names))``.
        class_names: one name per class; its length is the number of classes (never inferred
            from ``labels.max()``).
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"{self.name}/{self.split}: images must be a uint8 (N, C, H, W) tensor, "
                f"got {self.images.dtype} with shape {tuple(self.images.shape)}"
            )
        if self.labels.ndim != 1 or self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(
                f"{self.name}/{self.split}: labels must have shape ({self.images.shape[0]},), "
                f"got {tuple(self.labels.shape)}"
            )
        if self.labels.dtype != torch.int64:
            object.__setattr__(self, "labels", self.labels.to(torch.int64))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        if self.labels.numel() and (
            int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.class_names)
        ):
            raise ValueError(
                f"{self.name}/{self.split}: labels must lie in [0, {len(self.class_names)}), "
                f"got range [{int(self.labels.min())}, {int(self.labels.max())}]"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def checksum(self) -> str:
        """See :func:`tensor_checksum`."""
        return tensor_checksum(self.images, self.labels)

    def subset(self, indices: Sequence[int] | torch.Tensor, split: str | None = None) -> ImageDataset:
        """The examples at ``indices`` (same classes, same label ids)."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        return ImageDataset(
            self.name, split or self.split, self.images[idx], self.labels[idx], self.class_names
        )

    def select_classes(self, classes: Sequence[int], split: str | None = None) -> ImageDataset:
        """Keep only ``classes`` and relabel them ``0..len(classes)-1`` in the given order."""
        classes = [int(c) for c in classes]
        if len(set(classes)) != len(classes) or any(
            not 0 <= c < self.num_classes for c in classes
        ):
            raise ValueError(
                f"classes must be distinct ids in [0, {self.num_classes}), got {classes}"
            )
        lookup = torch.full((self.num_classes,), -1, dtype=torch.int64)
        lookup[torch.tensor(classes)] = torch.arange(len(classes))
        keep = lookup[self.labels] >= 0
        return ImageDataset(
            self.name,
            split or self.split,
            self.images[keep],
            lookup[self.labels[keep]],
            tuple(self.class_names[c] for c in classes),
        )

    def resized(self, size: int, channels: int | None = None) -> ImageDataset:
        """Bilinearly resize to ``size``×``size`` and optionally repeat/average to ``channels``.

        Returns ``self`` when neither the size nor the channel count changes (no copy, no float
        conversion), and repeats a single channel in ``uint8``: both give exactly the tensors
        of the float path (``round(float(x)) == x`` for ``uint8`` ``x``), without its cost.
        """
        if size < 1:
            raise ValueError(f"size must be a positive integer, got {size}")
        same_size = self.images.shape[-1] == size and self.images.shape[-2] == size
        in_channels = int(self.images.shape[1])
        if channels is not None and channels != in_channels and in_channels != 1 and channels != 1:
            raise ValueError(f"cannot convert {in_channels} channels to {channels}")
        if same_size and (channels is None or channels == in_channels):
            return self
        if same_size and in_channels == 1:  # only a channel repeat: exact in uint8
            images = self.images.repeat(1, channels, 1, 1)
            return ImageDataset(self.name, self.split, images, self.labels, self.class_names)
        x = self.images.float()
        if not same_size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        if channels is not None and channels != x.shape[1]:
            x = x.repeat(1, channels, 1, 1) if x.shape[1] == 1 else x.mean(dim=1, keepdim=True)
        images = x.round().clamp(0, 255).to(torch.uint8)
        return ImageDataset(self.name, self.split, images, self.labels, self.class_names)
