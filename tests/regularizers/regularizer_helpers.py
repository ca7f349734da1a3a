"""A tiny TransferModel and step contexts, so these tests need no concrete backbone."""

from __future__ import annotations

import copy

import torch
from torch import nn

from survey_lib.models.base import TransferModel
from survey_lib.train.context import StepContext


class TinyNet(TransferModel):
    """conv+BN unit, conv unit, pooling unit, linear classifier."""

    unit_names = ("conv1", "conv2", "pool", "classifier")

    def __init__(self, num_classes: int = 3, in_chans: int = 3, width: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()
        )
        self.conv2 = nn.Sequential(nn.Conv2d(width, 6, 3, padding=1), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.feature_dim = 6
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.classifier = nn.Linear(self.feature_dim, num_classes)


def make_pair(seed: int = 0, num_classes: int = 5) -> tuple[TinyNet, TinyNet]:
    """A 'pretrained' source and a target copied from it with a fresh head."""
    torch.manual_seed(seed)
    source = TinyNet(num_classes=3)
    target = copy.deepcopy(source)
    target.reset_classifier(num_classes)
    return source, target


def make_batch(
    seed: int = 1, size: int = 8, num_classes: int = 5
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size, 3, 8, 8, generator=generator)
    labels = torch.randint(0, num_classes, (size,), generator=generator)
    return inputs, labels


def step_context(model: TransferModel, inputs: torch.Tensor, labels: torch.Tensor) -> StepContext:
    """What the engine hands the penalty after its forward pass (hooks fire here)."""
    model.train()
    features = model.forward_features(inputs)
    logits = model.forward_head(features)
    return StepContext(model, inputs, features, logits, labels, step=0, epoch=0)
