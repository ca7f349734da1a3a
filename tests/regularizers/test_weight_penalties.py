"""Reference tests of the weight penalties (L2, L2-SP, layer-wise L2-SP) against hand sums."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from survey_lib.regularizers import create_regularizer

from .regularizer_helpers import TinyNet, make_pair

BODY_WEIGHTS = ("conv1.0.weight", "conv2.0.weight")


def sgd_step(model: TinyNet, inputs: torch.Tensor, labels: torch.Tensor, lr: float = 0.5) -> None:
    model.zero_grad()
    F.cross_entropy(model(inputs), labels).backward()
    with torch.no_grad():
        for param in model.parameters():
            param.sub_(lr * param.grad)


def sq(tensor: torch.Tensor) -> float:
    return float(tensor.detach().double().pow(2).sum())


def test_l2_sp_alpha_term_is_exactly_zero_at_initialisation(pair) -> None:
    source, target = pair
    reg = create_regularizer("l2_sp", source_model=source, target_model=target)
    assert reg.reference_names == BODY_WEIGHTS
    assert reg.sp_term(target).item() == 0.0
    expected = 0.5 * 0.01 * sq(target.classifier.weight)
    assert reg(target).item() == pytest.approx(expected, rel=1e-6)


def test_l2_sp_matches_a_hand_computation_after_a_step(pair, batch) -> None:
    source, target = pair
    reg = create_regularizer("l2_sp", source_model=source, target_model=target, alpha=0.3, beta=0.7)
    sgd_step(target, *batch)
    sp = sum(sq(target.get_parameter(name) - source.get_parameter(name)) for name in BODY_WEIGHTS)
    assert sp > 0
    expected = 0.5 * 0.3 * sp + 0.5 * 0.7 * sq(target.classifier.weight)
    assert reg(target).item() == pytest.approx(expected, rel=1e-5)


def test_l2_sp_ignores_norm_layers_and_biases(pair) -> None:
    source, target = pair
    reg = create_regularizer("l2_sp", source_model=source, target_model=target)
    before = reg(target).item()
    with torch.no_grad():
        target.conv1[1].weight.add_(1.0)
        target.conv1[1].bias.add_(1.0)
        target.conv1[0].bias.add_(1.0)
        target.classifier.bias.add_(1.0)
    assert reg(target).item() == before
    with torch.no_grad():
        target.conv2[0].weight.add_(0.1)
    assert reg(target).item() > before


def test_l2_sp_rejects_a_target_of_another_shape() -> None:
    source = TinyNet(num_classes=3, width=4)
    target = TinyNet(num_classes=5, width=5)
    with pytest.raises(ValueError, match="shape mismatch for conv1.0.weight"):
        create_regularizer("l2_sp", source_model=source, target_model=target)
    reg = create_regularizer("l2_sp", source_model=source)
    with pytest.raises(ValueError, match="shape mismatch"):
        reg(target)


def test_l2_sp_lower_matches_a_hand_computation(pair, batch) -> None:
    source, target = pair
    reg = create_regularizer(
        "l2_sp_lower",
        source_model=source,
        target_model=target,
        num_sp_units=1,
        alpha=0.3,
        alpha_upper=0.2,
        beta=0.7,
    )
    sgd_step(target, *batch)
    expected = (
        0.5 * 0.3 * sq(target.conv1[0].weight - source.conv1[0].weight)
        + 0.5 * 0.2 * sq(target.conv2[0].weight)
        + 0.5 * 0.7 * sq(target.classifier.weight)
    )
    assert reg(target).item() == pytest.approx(expected, rel=1e-5)


def test_l2_sp_lower_spans_l2_to_l2_sp(pair, batch) -> None:
    source, target = pair
    sgd_step(target, *batch)
    everything = create_regularizer(
        "l2_sp_lower", source_model=source, num_sp_units=3, alpha=0.3, beta=0.7
    )
    l2_sp = create_regularizer("l2_sp", source_model=source, alpha=0.3, beta=0.7)
    assert everything(target).item() == pytest.approx(l2_sp(target).item(), rel=1e-6)
    nothing = create_regularizer(
        "l2_sp_lower", source_model=source, num_sp_units=0, alpha_upper=0.2, beta=0.7
    )
    body = sq(target.conv1[0].weight) + sq(target.conv2[0].weight)
    expected = 0.5 * 0.2 * body + 0.5 * 0.7 * sq(target.classifier.weight)
    assert nothing(target).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="num_sp_units must be in 0..3"):
        create_regularizer("l2_sp_lower", source_model=source, num_sp_units=4)


def test_l2_matches_a_hand_computation(pair) -> None:
    _, target = pair
    weights = sum(sq(p) for p in target.parameters() if p.ndim >= 2)
    everything = sum(sq(p) for p in target.parameters())
    reg = create_regularizer("l2", alpha=0.4)
    assert reg(target).item() == pytest.approx(0.5 * 0.4 * weights, rel=1e-6)
    reg_all = create_regularizer("l2", alpha=0.4, weights_only=False)
    assert reg_all(target).item() == pytest.approx(0.5 * 0.4 * everything, rel=1e-6)


def test_reference_weights_are_snapshots_not_views() -> None:
    source, target = make_pair()
    reg = create_regularizer("l2_sp", source_model=source, target_model=target)
    with torch.no_grad():
        source.conv1[0].weight.add_(1.0)  # e.g. the source object is fine-tuned later
    assert reg.sp_term(target).item() == 0.0
