"""Contract tests run on every registered regularizer (and one combination)."""

from __future__ import annotations

import pytest
import torch

from survey_lib.regularizers import create_regularizer, list_regularizers
from survey_lib.regularizers.base import Regularizer

from .regularizer_helpers import make_batch, make_pair, step_context

NAMES = [*list_regularizers(), "l2_sp+bss"]
#: regularizers whose penalty is identically zero (they act elsewhere or not at all)
ZERO = {"none", "stochnorm"}
#: regularizers holding reference tensors: a different source must change the penalty
WITH_BUFFERS = {"l2_sp", "l2_sp_lower", "delta", "delta_sum", "delta_unweighted", "l2_sp+bss"}


def build(name: str, source, target, batch):
    """The regularizer ``name`` with the extra arguments it needs on the tiny model."""
    extra = {
        "l2_sp_lower": {"num_sp_units": 1},
        "delta": {"attention_data": batch, "head_steps": 5},
        "delta_sum": {"attention_data": batch, "head_steps": 5},
    }
    regularizer = create_regularizer(
        name, source_model=source, target_model=target, **extra.get(name, {})
    )
    return regularizer, regularizer.transform(target)


def perturb(model: torch.nn.Module, seed: int = 3) -> None:
    """Move the target away from the source so every pull-back term is non-zero."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))


def perturbed_setup(name: str):
    """(source, target, regularizer, inputs, labels) with the target moved off the source."""
    source, target = make_pair()
    inputs, labels = make_batch()
    regularizer, target = build(name, source, target, (inputs, labels))
    perturb(target)
    return source, target, regularizer, inputs, labels


def test_registry_is_complete() -> None:
    assert set(list_regularizers()) >= {
        "none",
        "l2",
        "l2_sp",
        "l2_sp_lower",
        "delta",
        "delta_unweighted",
        "bss",
        "stochnorm",
    }


def assert_penalty_contract(regularizer, target, inputs, labels, *, zero: bool) -> None:
    """What a correct regularizer satisfies: on the fresh target (copied from the source, new
    head) a finite, non-negative scalar, which may be 0 (a pure pull-back such as L1-SP is 0 at
    w = w0); once the target has moved off the source, positive (unless it is identically 0)."""
    value = regularizer.penalty(step_context(target, inputs, labels))
    assert value.ndim == 0
    assert torch.isfinite(value)
    assert value.item() >= 0.0
    if zero:
        assert value.item() == 0.0
    perturb(target)
    moved = regularizer.penalty(step_context(target, inputs, labels))
    assert torch.isfinite(moved)
    if zero:
        assert moved.item() == 0.0
    else:
        assert moved.item() > 0.0


@pytest.mark.parametrize("name", NAMES)
def test_penalty_is_a_finite_scalar(name: str) -> None:
    source, target = make_pair()
    inputs, labels = make_batch()
    regularizer, target = build(name, source, target, (inputs, labels))
    assert_penalty_contract(regularizer, target, inputs, labels, zero=name in ZERO)


class L1SP(Regularizer):
    """A pull-back towards the source only, alpha * sum |w - w0| over the transferred weights
    (L1-SP, Li et al. 2018, section 3.2): 0 at w = w0, as a correct regularizer may be."""

    needs_source = True

    def __init__(self, source, target, *, alpha: float = 0.1) -> None:
        super().__init__()
        self.alpha = alpha
        shapes = {n: p.shape for n, p in target.named_parameters()}
        self.names = [n for n, p in source.named_parameters() if shapes.get(n) == p.shape]
        for i, n in enumerate(self.names):
            self.register_buffer(f"ref{i}", dict(source.named_parameters())[n].detach().clone())

    def penalty(self, ctx):
        params = dict(ctx.model.named_parameters())
        return self.alpha * sum(
            (params[n] - getattr(self, f"ref{i}")).abs().sum() for i, n in enumerate(self.names)
        )


def test_contract_accepts_a_penalty_that_is_zero_at_the_source() -> None:
    source, target = make_pair()
    inputs, labels = make_batch()
    assert_penalty_contract(L1SP(source, target), target, inputs, labels, zero=False)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_the_target_only(name: str) -> None:
    source, target, regularizer, inputs, labels = perturbed_setup(name)
    source_before = {k: v.clone() for k, v in source.state_dict().items()}
    buffers_before = {k: v.clone() for k, v in regularizer.state_dict().items()}

    value = regularizer.penalty(step_context(target, inputs, labels))
    assert list(regularizer.parameters()) == []
    if name in ZERO:
        assert not value.requires_grad
        return
    value.backward()
    grads = [p.grad for p in target.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in source.parameters())
    assert all(not b.requires_grad for b in regularizer.buffers())

    torch.optim.SGD(target.parameters(), lr=0.5).step()
    regularizer.penalty(step_context(target, inputs, labels))
    for key, tensor in source.state_dict().items():
        assert torch.equal(tensor, source_before[key]), key
    for key, tensor in regularizer.state_dict().items():
        assert torch.equal(tensor, buffers_before[key]), key


@pytest.mark.parametrize("name", NAMES)
def test_dtype_and_device_moves_carry_the_buffers(name: str) -> None:
    source, target, regularizer, inputs, labels = perturbed_setup(name)
    value32 = regularizer.penalty(step_context(target, inputs, labels))

    assert regularizer.to("cpu") is regularizer
    assert all(b.device.type == "cpu" for b in regularizer.buffers())
    regularizer.to(torch.float64)
    target.to(torch.float64)
    floating = [b for b in regularizer.buffers() if b.is_floating_point()]
    assert all(b.dtype == torch.float64 for b in floating)
    value64 = regularizer.penalty(step_context(target, inputs.double(), labels))
    assert value64.dtype == torch.float64
    torch.testing.assert_close(value64.float(), value32.detach(), rtol=1e-4, atol=1e-7)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_move_gives_the_cpu_value(name: str) -> None:
    source, target, regularizer, inputs, labels = perturbed_setup(name)
    on_cpu = regularizer.penalty(step_context(target, inputs, labels)).detach()
    regularizer.to("cuda")
    target.to("cuda")
    assert all(b.device.type == "cuda" for b in regularizer.buffers())
    on_gpu = regularizer.penalty(step_context(target, inputs.cuda(), labels.cuda()))
    assert on_gpu.device.type == "cuda"
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name: str) -> None:
    source, target = make_pair(seed=0)
    other_source, _ = make_pair(seed=5)
    inputs, labels = make_batch()
    original, target = build(name, source, target, (inputs, labels))
    fresh, _ = build(name, other_source, target, (inputs, labels))
    perturb(target)

    ctx = step_context(target, inputs, labels)
    before = (original.penalty(ctx).item(), fresh.penalty(ctx).item())
    if name in WITH_BUFFERS:
        assert before[0] != pytest.approx(before[1], rel=1e-3)

    fresh.load_state_dict(original.state_dict())
    ctx = step_context(target, inputs, labels)
    assert fresh.penalty(ctx).item() == pytest.approx(original.penalty(ctx).item(), rel=1e-6)
