"""A small CIFAR-style ResNet (ResNet-8 by default), cut into stem, three stages and a head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from survey_lib.models.base import TransferModel
from survey_lib.models.registry import register_model


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and an identity (or 1x1 projection) shortcut.

    .. math:: y = \\mathrm{ReLU}\\big(\\mathrm{BN}(W_2 * \\mathrm{ReLU}(\\mathrm{BN}(W_1 * x)))
        + P x\\big)
    """

    def __init__(self, in_chans: int, out_chans: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, out_chans, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_chans)
        self.conv2 = nn.Conv2d(out_chans, out_chans, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_chans)
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_chans != out_chans:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_chans, out_chans, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_chans),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNetSmall(TransferModel):
    """A CIFAR-style residual network with units stem, stage1, stage2, stage3, classifier.

    He, Zhang, Ren & Sun, "Deep residual learning for image recognition", CVPR 2016,
    https://arxiv.org/abs/1512.03385 (the 6n+2-layer CIFAR networks of their Section 4.2): a 3x3
    stem, three stages of ``blocks_per_stage`` basic blocks with widths 16, 32, 64 (stages 2
    and 3 halve the resolution), global average pooling and a linear classifier. The default,
    one block per stage, is ResNet-8; ``blocks_per_stage=3`` is ResNet-20.

    Scaled for CPU: the stem has stride 2 by default (the paper's has stride 1; pass
    ``stem_stride=1`` for the original), which makes one forward and backward pass on a
    128x1x32x32 batch take about 40 ms on one core instead of about 190 ms.

    Units compose: the global average pool (no parameters) is applied after the last stage, so
    ``forward_units(x, 0, 4) == forward_features(x)`` has shape (N, widths[-1]) and
    ``forward_units(features, 4, 5)`` gives the logits.

    Args:
        num_classes: outputs of the classifier.
        in_chans: input channels.
        widths: channels of stage1..stage3 (the stem has ``widths[0]``).
        blocks_per_stage: basic blocks per stage.
        stem_stride: stride of the stem convolution.

    Shape:
        input (N, in_chans, H, W) -> logits (N, num_classes); features (N, widths[-1]).
    """

    unit_names = ("stem", "stage1", "stage2", "stage3", "classifier")
    sequential = True

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        *,
        widths: Sequence[int] = (16, 32, 64),
        blocks_per_stage: int = 1,
        stem_stride: int = 2,
    ) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ValueError(f"widths must give 3 stage widths, got {tuple(widths)}")
        if blocks_per_stage < 1:
            raise ValueError(f"blocks_per_stage must be >= 1, got {blocks_per_stage}")
        w1, w2, w3 = (int(w) for w in widths)
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, w1, 3, stride=stem_stride, padding=1, bias=False),
            nn.BatchNorm2d(w1),
            nn.ReLU(inplace=True),
        )
        self.stage1 = self._stage(w1, w1, blocks_per_stage, stride=1)
        self.stage2 = self._stage(w1, w2, blocks_per_stage, stride=2)
        self.stage3 = self._stage(w2, w3, blocks_per_stage, stride=2)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(w3, num_classes)
        self.feature_dim = w3
        self.num_classes = num_classes

    @staticmethod
    def _stage(in_chans: int, out_chans: int, blocks: int, stride: int) -> nn.Sequential:
        layers = [BasicBlock(in_chans, out_chans, stride)]
        layers += [BasicBlock(out_chans, out_chans, 1) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward_units(
        self, x: torch.Tensor, start: int = 0, end: int | None = None
    ) -> torch.Tensor:
        last_feature_unit = len(self.unit_names) - 2
        for index in range(len(self.unit_names))[start:end]:
            x = getattr(self, self.unit_names[index])(x)
            if index == last_feature_unit:
                x = self.pool(x)
        return x


@register_model("resnet_small")
def resnet_small(num_classes: int, in_chans: int = 1, **kwargs: object) -> ResNetSmall:
    """Build :class:`ResNetSmall` (kwargs: widths, blocks_per_stage, stem_stride)."""
    return ResNetSmall(num_classes, in_chans, **kwargs)  # type: ignore[arg-type]
