"""StochNorm against BatchNorm's two modes, and the BN -> StochNorm conversion."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from survey_lib.regularizers import (
    StochNorm1d,
    StochNorm2d,
    convert_to_stochnorm,
    create_regularizer,
)

from .regularizer_helpers import make_batch, make_pair, step_context


def pretrained_norm(cls=StochNorm2d, channels: int = 5, p: float = 0.5) -> nn.Module:
    """A norm layer with non-trivial affine parameters and moving statistics."""
    generator = torch.Generator().manual_seed(0)
    layer = cls(channels, p=p)
    with torch.no_grad():
        layer.weight.copy_(torch.rand(channels, generator=generator) + 0.5)
        layer.bias.copy_(torch.randn(channels, generator=generator))
        layer.running_mean.copy_(torch.randn(channels, generator=generator))
        layer.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
    return layer


def inputs(shape=(6, 5, 4, 4)) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1)) * 2 + 1


def reference(layer: nn.Module, x: torch.Tensor, training: bool) -> tuple[torch.Tensor, ...]:
    """F.batch_norm on copies of the layer's statistics: (output, new mean, new var)."""
    mean, var = layer.running_mean.clone(), layer.running_var.clone()
    out = F.batch_norm(x, mean, var, layer.weight, layer.bias, training, layer.momentum, layer.eps)
    return out, mean, var


@pytest.mark.parametrize("shape", [(6, 5, 4, 4), (6, 5), (6, 5, 3)])
def test_p_one_is_batch_statistics_batchnorm(shape) -> None:
    cls = StochNorm2d if len(shape) == 4 else StochNorm1d
    layer = pretrained_norm(cls, p=1.0).train()
    x = inputs(shape)
    expected, mean, var = reference(layer, x, training=True)
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer.running_mean, mean)
    torch.testing.assert_close(layer.running_var, var)


@pytest.mark.parametrize("shape", [(6, 5, 4, 4), (6, 5)])
def test_p_zero_is_moving_statistics_batchnorm(shape) -> None:
    cls = StochNorm2d if len(shape) == 4 else StochNorm1d
    layer = pretrained_norm(cls, p=0.0).train()
    x = inputs(shape)
    expected, _, _ = reference(layer, x, training=False)  # statistics before this batch
    _, mean, var = reference(layer, x, training=True)
    torch.testing.assert_close(layer(x), expected)
    # the moving statistics still track the target data, as in the authors' code
    torch.testing.assert_close(layer.running_mean, mean)
    torch.testing.assert_close(layer.running_var, var)


def test_eval_mode_is_plain_batchnorm() -> None:
    layer = pretrained_norm(p=0.5).eval()
    bn = nn.BatchNorm2d(5).eval()
    bn.load_state_dict(layer.state_dict())
    x = inputs()
    torch.testing.assert_close(layer(x), bn(x))


def test_each_channel_takes_one_branch() -> None:
    torch.manual_seed(0)
    layer = pretrained_norm(channels=64, p=0.5).train()
    x = inputs((6, 64, 3, 3))
    moving, _, _ = reference(layer, x, training=False)
    batch, _, _ = reference(layer, x, training=True)
    out = layer(x)
    is_batch = [torch.allclose(out[:, c], batch[:, c]) for c in range(64)]
    is_moving = [torch.allclose(out[:, c], moving[:, c]) for c in range(64)]
    assert all(b != m for b, m in zip(is_batch, is_moving))
    assert 16 < sum(is_batch) < 48  # Binomial(64, 0.5): outside this range has p < 1e-4


def test_gradients_reach_the_affine_parameters() -> None:
    layer = pretrained_norm(p=0.5).train()
    x = inputs().requires_grad_(True)
    layer(x).pow(2).sum().backward()
    assert layer.weight.grad.abs().sum() > 0 and layer.bias.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


def test_conversion_copies_parameters_and_statistics() -> None:
    source, _ = make_pair()
    with torch.no_grad():
        source.conv1[1].running_mean.add_(0.3)
        source.conv1[1].weight.mul_(1.7)
    source.classifier = nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 3))
    original = copy.deepcopy(source)
    converted = convert_to_stochnorm(source, p=1.0)
    assert converted is source
    assert type(converted.conv1[1]) is StochNorm2d and converted.conv1[1].p == 1.0
    assert type(converted.classifier[0]) is StochNorm1d
    for key, tensor in original.state_dict().items():
        torch.testing.assert_close(converted.state_dict()[key], tensor)
    x, _ = make_batch()
    original.eval(), converted.eval()
    torch.testing.assert_close(converted(x), original(x))
    original.train(), converted.train()  # p = 1: identical to BatchNorm in train mode
    torch.testing.assert_close(converted(x), original(x))


def test_registry_entry_transforms_and_refuses_an_untransformed_model(batch) -> None:
    source, target = make_pair()
    reg = create_regularizer("stochnorm", p=0.3)
    with pytest.raises(RuntimeError, match="transform"):
        reg.penalty(step_context(target, *batch))
    target = reg.transform(target)
    assert target.conv1[1].p == 0.3
    assert reg.penalty(step_context(target, *batch)).item() == 0.0
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        create_regularizer("stochnorm", p=1.5)
