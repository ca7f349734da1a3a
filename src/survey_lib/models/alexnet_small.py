"""A small AlexNet for 28-32 px images, cut into the eight units of Yosinski et al. (2014)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from survey_lib.models.base import TransferModel
from survey_lib.models.registry import register_model


class HeConv2d(nn.Conv2d):
    """``nn.Conv2d`` initialised for a following ReLU.

    He, Zhang, Ren & Sun, "Delving deep into rectifiers", ICCV 2015,
    https://arxiv.org/abs/1502.01852:

    .. math:: W \\sim \\mathcal N\\!\\left(0, \\tfrac{2}{\\text{fan}_\\text{in}}\\right), \\quad b = 0

    PyTorch's default (variance :math:`1/(3\\,\\text{fan}_\\text{in})`) loses about a factor
    six of signal variance per ReLU layer, which left this BatchNorm-free network at chance for
    hundreds of SGD steps. The initialisation lives in ``reset_parameters`` so that units
    re-initialised by :func:`survey_lib.transfer.transfer_units` match a freshly built network.
    """

    def reset_parameters(self) -> None:
        nn.init.kaiming_normal_(self.weight, mode="fan_in", nonlinearity="relu")
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class HeLinear(nn.Linear):
    """``nn.Linear`` with the initialisation of :class:`HeConv2d`."""

    def reset_parameters(self) -> None:
        nn.init.kaiming_normal_(self.weight, mode="fan_in", nonlinearity="relu")
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class FixedAvgPool2d(nn.Module):
    """Average pooling to a ``size``×``size`` output with a deterministic CUDA backward.

    Equal to ``nn.AdaptiveAvgPool2d(size)``, whose CUDA backward has no deterministic kernel
    (PyTorch, "torch.use_deterministic_algorithms"), on the inputs the protocols use:

    .. math::
        y_{ij} = \\frac{1}{k_h k_w} \\sum_{a<k_h,\\, b<k_w} x_{i k_h + a,\\; j k_w + b},
        \\qquad k_h = H / s,\\; k_w = W / s

    an identity when :math:`H = W = s` (AlexNetSmall's fc6 input at 28-32 px is 2×2), a plain
    ``avg_pool2d`` with kernel = stride = :math:`(k_h, k_w)` when :math:`s` divides both sides
    (adaptive pooling's windows are then exactly these). Other sizes fall back to
    ``F.adaptive_avg_pool2d`` (same values; nondeterministic backward on CUDA).
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        if int(size) < 1:
            raise ValueError(f"pool size must be >= 1, got {size!r}")
        self.size = int(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        s = self.size
        if h == s and w == s:
            return x
        if h % s == 0 and w % s == 0:
            return F.avg_pool2d(x, kernel_size=(h // s, w // s))
        return F.adaptive_avg_pool2d(x, s)

    def extra_repr(self) -> str:
        return f"size={self.size}"


def _conv_unit(
    in_chans: int, out_chans: int, kernel: int, stride: int, pool: bool, norm: bool
) -> nn.Sequential:
    layers: list[nn.Module] = [
        HeConv2d(in_chans, out_chans, kernel, stride=stride, padding=kernel // 2, bias=not norm)
    ]
    if norm:
        layers.append(nn.BatchNorm2d(out_chans))
    layers.append(nn.ReLU(inplace=True))
    if pool:  # AlexNet's overlapping max-pool: 3x3 windows, stride 2
        layers.append(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    return nn.Sequential(*layers)


class AlexNetSmall(TransferModel):
    """AlexNet scaled down to 28-32 px inputs, as eight transferable units.

    The unit view follows Yosinski, Clune, Bengio & Lipson, "How transferable are features in
    deep neural networks?", NeurIPS 2014, https://arxiv.org/abs/1411.1792: layers conv1..conv5,
    fc6, fc7 and the classifier (their fc8). Transferring ``n`` units copies layers ``1..n``.
    The architecture follows Krizhevsky, Sutskever & Hinton, "ImageNet classification with deep
    convolutional neural networks", NeurIPS 2012: ReLU everywhere, overlapping max-pooling after
    conv1, conv2 and conv5, dropout on fc6 and fc7, no batch normalisation (their local response
    normalisation is left out; ``norm=True`` adds BatchNorm after each convolution instead).

    Scaled for CPU: conv1 is a 5x5 convolution with stride 2 (AlexNet's is 11x11, stride 4), so a
    32 px image reaches conv3-conv5 at 4x4 and fc6 at 2x2 (28 px: 7 -> 4 -> 2). An average pool
    to ``pool_size`` before fc6 (:class:`FixedAvgPool2d`: the values of an adaptive average pool,
    an identity at 2x2, with a deterministic CUDA backward) makes any input size from about
    16 px work. With the default sizes
    one forward and backward pass on a 128x1x32x32 batch takes about 50 ms on one CPU core.

    .. math::
        f(x) = W_8\\,\\mathrm{fc}_7(\\mathrm{fc}_6(\\mathrm{conv}_5(\\cdots\\mathrm{conv}_1(x))))

    Args:
        num_classes: outputs of the classifier.
        in_chans: input channels.
        channels: output channels of conv1..conv5.
        fc_dim: width of fc6 and fc7 (the feature dimension).
        dropout: dropout probability after fc6 and fc7.
        norm: add BatchNorm after every convolution.
        pool_size: side of the average pool feeding fc6.
        frozen_dropout: keep the dropout of fc6 and fc7 active in training mode even when
            those units are frozen, as in the original Caffe experiments (see
            :meth:`forward_units`). ``False`` (default): the dropout modules sit inside their
            units, and a frozen unit, which the engine keeps in eval mode, drops nothing.

    Shape:
        input (N, in_chans, H, W) -> logits (N, num_classes); features (N, fc_dim).
    """

    unit_names = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "classifier")
    sequential = True

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        *,
        channels: Sequence[int] = (32, 64, 96, 96, 64),
        fc_dim: int = 256,
        dropout: float = 0.5,
        norm: bool = False,
        pool_size: int = 2,
        frozen_dropout: bool = False,
    ) -> None:
        super().__init__()
        if len(channels) != 5:
            raise ValueError(f"channels must give 5 widths (conv1..conv5), got {tuple(channels)}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
        c1, c2, c3, c4, c5 = (int(c) for c in channels)
        self.conv1 = _conv_unit(in_chans, c1, 5, 2, pool=True, norm=norm)
        self.conv2 = _conv_unit(c1, c2, 3, 1, pool=True, norm=norm)
        self.conv3 = _conv_unit(c2, c3, 3, 1, pool=False, norm=norm)
        self.conv4 = _conv_unit(c3, c4, 3, 1, pool=False, norm=norm)
        self.conv5 = _conv_unit(c4, c5, 3, 1, pool=True, norm=norm)
        # With frozen_dropout the two dropouts move out of their units (same places in the
        # computation, same parameter names: Dropout holds no tensors), so that the engine's
        # eval mode for frozen units does not reach them. Without it nothing is added.
        inside = () if frozen_dropout else (nn.Dropout(dropout),)
        self.fc6 = nn.Sequential(
            FixedAvgPool2d(pool_size),
            nn.Flatten(),
            HeLinear(c5 * pool_size * pool_size, fc_dim),
            nn.ReLU(inplace=True),
            *inside,
        )
        inside = () if frozen_dropout else (nn.Dropout(dropout),)
        self.fc7 = nn.Sequential(HeLinear(fc_dim, fc_dim), nn.ReLU(inplace=True), *inside)
        self._frozen_dropout = bool(frozen_dropout)
        if frozen_dropout:
            self.unit_dropout = nn.ModuleDict(
                {"fc6": nn.Dropout(dropout), "fc7": nn.Dropout(dropout)}
            )
        self.classifier = nn.Linear(fc_dim, num_classes)
        self.feature_dim = fc_dim
        self.num_classes = num_classes

    @property
    def frozen_dropout(self) -> bool:
        """Whether fc6/fc7 dropout follows the model's mode rather than its unit's."""
        return self._frozen_dropout

    def forward_units(
        self, x: torch.Tensor, start: int = 0, end: int | None = None
    ) -> torch.Tensor:
        """Units ``start..end-1`` in order; with ``frozen_dropout``, each of fc6 and fc7 is
        followed by its dropout, which is active whenever the *model* is in training mode.

        Yosinski, Clune, Bengio & Lipson, "How transferable are features in deep neural
        networks?", NeurIPS 2014, https://arxiv.org/abs/1411.1792, froze copied layers by a
        zero learning rate in Caffe, where a dropout layer applies in every training pass
        whatever the learning rate of the layer before it. For a frozen unit :math:`u` with
        output :math:`h_u` the training-mode output is therefore still

        .. math:: \\tilde h_u = \\frac{m \\odot h_u}{1 - p}, \\qquad m_j \\sim
            \\mathrm{Bernoulli}(1 - p),

        while the engine's frozen units (eval mode, :mod:`survey_lib.train.engine`) give
        :math:`h_u`. The masks are drawn in the same order from the same generator as the
        in-unit dropout, so with no unit frozen both variants compute the same thing.
        Outputs computed once for frozen units (``TrainConfig.cache_frozen``) would fix one
        mask: callers switch that cache off for this variant.
        """
        if not self._frozen_dropout:
            return super().forward_units(x, start, end)
        for name, module in self.units()[start:end]:
            x = module(x)
            if name in self.unit_dropout:
                x = self.unit_dropout[name](x)
        return x


@register_model("alexnet_small")
def alexnet_small(num_classes: int, in_chans: int = 1, **kwargs: object) -> AlexNetSmall:
    """Build :class:`AlexNetSmall` (kwargs: channels, fc_dim, dropout, norm, pool_size,
    frozen_dropout)."""
    return AlexNetSmall(num_classes, in_chans, **kwargs)  # type: ignore[arg-type]
