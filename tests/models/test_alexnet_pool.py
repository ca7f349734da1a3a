"""AlexNetSmall's pool before fc6 equals ``nn.AdaptiveAvgPool2d`` exactly on the CPU (values
and gradients) while avoiding its nondeterministic CUDA backward (issue 12 item 3)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from survey_lib.models.alexnet_small import AlexNetSmall, FixedAvgPool2d


@pytest.mark.parametrize(("side", "size"), [(2, 2), (4, 2), (6, 3), (8, 2), (1, 2), (3, 2), (5, 2)])
def test_fixed_pool_equals_adaptive_pool_exactly(side: int, size: int) -> None:
    x = torch.randn(3, 5, side, side, generator=torch.Generator().manual_seed(side))
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, ref = FixedAvgPool2d(size)(a), nn.AdaptiveAvgPool2d(size)(b)
    assert torch.equal(ours, ref)
    g = torch.randn_like(ref)
    ours.backward(g)
    ref.backward(g)
    assert torch.equal(a.grad, b.grad)


def test_no_adaptive_pool_left_and_no_deterministic_warning_at_32px() -> None:
    model = AlexNetSmall(5)
    assert not any(isinstance(m, nn.AdaptiveAvgPool2d) for m in model.modules())
    assert isinstance(model.fc6[0], FixedAvgPool2d)
    assert model.fc6[2].weight.shape[1] == 64 * 4  # checkpoints keep their keys and shapes
    with torch.no_grad():
        maps = model.forward_units(torch.zeros(2, 1, 32, 32), 0, 5)
    assert maps.shape[-2:] == (2, 2)  # the protocols' inputs: the identity branch


def test_bad_pool_size() -> None:
    with pytest.raises(ValueError, match="pool size"):
        FixedAvgPool2d(0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_alexnet_backward_is_deterministic_on_cuda() -> None:
    from survey_lib.gpu import export_determinism_env

    export_determinism_env()  # cuBLAS reads it at its first call (gpu_check.sh sets it first)
    torch.use_deterministic_algorithms(True)  # raises on an op without a deterministic kernel
    try:
        model = AlexNetSmall(5).cuda()
        x = torch.randn(8, 1, 32, 32, device="cuda")
        grads = []
        for _ in range(2):
            model.zero_grad()
            model(x).square().sum().backward()
            grads.append([p.grad.clone() for p in model.parameters()])
        assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
    finally:
        torch.use_deterministic_algorithms(False)
