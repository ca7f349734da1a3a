"""A tiny sequential TransferModel used by the training and runner tests."""

from __future__ import annotations

import torch
from torch import nn

from survey_lib.data.base import ImageDataset
from survey_lib.models.base import TransferModel


class TinyNet(TransferModel):
    """conv-bn-relu -> conv-relu-pool -> dropout-linear features -> linear head."""

    unit_names = ("block1", "block2", "fc", "head")

    def __init__(self, num_classes: int = 3, in_chans: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.block1 = nn.Sequential(
            nn.Conv2d(in_chans, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten()
        )
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(24, 8), nn.ReLU())
        self.head = nn.Linear(8, num_classes)
        self.feature_dim = 8
        self.num_classes = num_classes

    def reset_classifier(self, num_classes: int) -> None:
        self.head = nn.Linear(self.feature_dim, num_classes)
        self.num_classes = num_classes


def tiny_data(n: int = 96, size: int = 8, classes: int = 3, seed: int = 0) -> ImageDataset:
    """Random images whose mean brightness carries the label (learnable in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    noise = torch.randint(0, 80, (n, 1, size, size), generator=g)
    images = (noise + labels.view(n, 1, 1, 1) * 80).clamp(0, 255).to(torch.uint8)
    return ImageDataset("tiny", "train", images, labels, tuple(f"c{i}" for i in range(classes)))
