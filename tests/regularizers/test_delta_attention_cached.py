"""DELTA's attention from cached activations equals the naive hooked whole-model forwards."""

from __future__ import annotations

import pytest
import torch

from survey_lib.models import create_model
from survey_lib.regularizers.base import unit_output_module
from survey_lib.regularizers.delta import default_layers
from survey_lib.regularizers.delta_attention import (
    _ablation_increases_cached,
    _ablation_losses,
    _prefix_units,
    channel_attention,
)


def _model_and_batch(name: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, in_chans=1).eval()
    x = torch.randn(12, 1, 32, 32)
    y = torch.randint(0, 5, (12,))
    return model, x, y


@pytest.mark.parametrize("name", ["resnet_small", "alexnet_small"])
def test_cached_increases_equal_the_hooked_recomputation(name: str) -> None:
    model, x, y = _model_and_batch(name)
    layers = default_layers(model)
    prefix = _prefix_units(model, layers)
    assert prefix is not None and [n for n, _ in prefix] == list(layers)
    with torch.no_grad():
        cached = _ablation_increases_cached(model, prefix, x, y, max_chunk=40)
        for layer in layers:
            base, ablated = _ablation_losses(
                model, unit_output_module(model, layer), x, y, max_chunk=40
            )
            naive = ablated - base
            assert cached[layer].shape == naive.shape
            torch.testing.assert_close(cached[layer], naive, rtol=1e-4, atol=1e-6)
            assert naive.abs().max() > 0  # the ablations change the loss: the test can fail


def test_channel_attention_cached_and_naive_agree_and_cached_is_the_default() -> None:
    model, x, y = _model_and_batch("resnet_small")
    layers = default_layers(model)
    batches = [(x[:6], y[:6]), (x[6:], y[6:])]
    auto = channel_attention(model, layers, batches)
    cached = channel_attention(model, layers, batches, cached=True)
    naive = channel_attention(model, layers, batches, cached=False)
    for layer in layers:
        assert torch.equal(auto[layer], cached[layer])
        torch.testing.assert_close(cached[layer], naive[layer], rtol=1e-4, atol=1e-7)
        assert abs(float(cached[layer].sum()) - 1.0) < 1e-5


def test_cached_needs_a_sequential_model() -> None:
    model, x, y = _model_and_batch("resnet_small")
    model.sequential = False
    with pytest.raises(ValueError, match="cached=True needs a sequential model"):
        channel_attention(model, default_layers(model), [(x, y)], cached=True)
