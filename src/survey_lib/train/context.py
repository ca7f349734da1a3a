"""The object handed to penalty and feature hooks at every training step."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class StepContext:
    """What the training engine knows after the forward pass of one batch.

    Attributes:
        model: the model being trained (in train mode).
        inputs: the normalised, augmented input batch fed to the model, shape (B, C, H, W);
            ``None`` when the step trained on cached frozen-unit outputs.
        features: penultimate features, ``model.forward_features(inputs)``, shape (B, D).
        logits: classifier outputs, shape (B, K).
        labels: integer targets, shape (B,).
        step: global optimisation step, starting at 0.
        epoch: current epoch, starting at 0.
    """

    model: nn.Module
    inputs: torch.Tensor | None
    features: torch.Tensor
    logits: torch.Tensor
    labels: torch.Tensor
    step: int
    epoch: int
