"""BSS keeps its target out of autocast: the features it sees are float32, as on a CPU.

CPU bf16 autocast stands in for CUDA's: the hooks key on ``torch.is_autocast_enabled``.
"""

from __future__ import annotations

import torch

from survey_lib.models import create_model
from survey_lib.regularizers import create_regularizer


def _model_and_batch() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return create_model("resnet_small", num_classes=10, in_chans=1).train(), torch.randn(
        32, 1, 32, 32
    )


def _bf16():
    return torch.autocast("cpu", dtype=torch.bfloat16)


def test_features_under_autocast_equal_fp32_features_with_bss_attached() -> None:
    model, x = _model_and_batch()
    reference = model.forward_features(x)
    with _bf16():
        rounded = model.forward_features(x)
    assert rounded.dtype == torch.bfloat16  # without BSS: bf16 features, another spectrum
    reg = create_regularizer("bss", target_model=model, k=1, eta=1.0)
    with _bf16():
        features = model.forward_features(x)
        logits = model.forward_head(features)
    assert features.dtype == torch.float32 and logits.dtype == torch.float32
    assert torch.equal(features, reference)
    assert reg(features).item() == reg(reference).item()
    assert reg(rounded).item() != reg(reference).item()
    assert torch.is_autocast_enabled("cpu") is False  # state restored after the block


def test_autocast_state_is_restored_around_each_module() -> None:
    model, x = _model_and_batch()
    create_regularizer("l2+bss", target_model=model, source_model=model)
    other = torch.nn.Linear(4, 4)
    with _bf16():
        model.forward_features(x)
        assert torch.is_autocast_enabled("cpu")
        assert other(torch.randn(2, 4)).dtype == torch.bfloat16  # other models still autocast


def test_without_autocast_the_hooks_change_nothing_and_can_be_removed() -> None:
    model, x = _model_and_batch()
    before = model.forward_features(x)
    reg = create_regularizer("bss", target_model=model)
    assert torch.equal(model.forward_features(x), before)
    reg.remove_hooks()
    with _bf16():
        assert model.forward_features(x).dtype == torch.bfloat16
    off = create_regularizer("bss", target_model=model, fp32_features=False)
    with _bf16():
        assert model.forward_features(x).dtype == torch.bfloat16
    assert "fp32_features=False" in repr(off)
