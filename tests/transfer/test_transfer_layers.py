"""transfer_units, freezing and per-unit learning rates."""

from __future__ import annotations

import pytest
import torch

from survey_lib.models import TransferModel, create_model
from survey_lib.transfer import (
    freeze_units,
    frozen_unit_count,
    lr_multipliers_for,
    set_train_mode,
    transfer_units,
    unit_param_groups,
)


@pytest.fixture(autouse=True)
def _single_thread() -> None:
    torch.set_num_threads(1)


def _model(name: str = "alexnet_small", num_classes: int = 5, seed: int = 0) -> TransferModel:
    torch.manual_seed(seed)
    return create_model(name, num_classes=num_classes)


def _unit_state(model: TransferModel) -> list[dict[str, torch.Tensor]]:
    return [
        {k: v.detach().clone() for k, v in unit.state_dict().items()} for _, unit in model.units()
    ]


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _train_steps(model: TransferModel, params: list[dict], steps: int = 3) -> None:
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = torch.randn(16, 1, 32, 32, generator=gen)
        y = torch.randint(0, model.num_classes, (16,), generator=gen)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize("name", ["alexnet_small", "resnet_small"])
def test_first_units_copied_rest_reinitialised(name: str) -> None:
    source, target = _model(name, 10, seed=1), _model(name, 5, seed=2)
    before = _unit_state(target)
    transfer_units(source, target, 3, seed=0)
    src, dst = _unit_state(source), _unit_state(target)
    for i in range(3):
        assert _equal(src[i], dst[i])
    for i in range(3, len(dst)):
        assert not _equal(src[i], dst[i]) or not any(v.is_floating_point() for v in src[i].values())
        weights = [k for k, v in dst[i].items() if v.ndim >= 2]
        assert weights and all(not torch.equal(dst[i][k], before[i][k]) for k in weights)


def test_reinitialisation_is_seeded_and_leaves_global_rng_alone() -> None:
    source = _model(seed=1)
    a = transfer_units(source, _model(seed=2), 2, seed=123)
    other = _model(seed=3)
    torch.manual_seed(99)
    state = torch.random.get_rng_state()
    b = transfer_units(source, other, 2, seed=123)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (_, ua), (_, ub) in zip(a.units(), b.units()):
        assert _equal(ua.state_dict(), ub.state_dict())
    c = transfer_units(source, _model(seed=2), 2, seed=124)
    assert not torch.equal(c.fc6[2].weight, a.fc6[2].weight)


def test_reinitialisation_matches_the_models_own_init() -> None:
    # AlexNetSmall: He-normal conv/fc layers with zero bias, a PyTorch-default classifier
    # (U(-b, b), b = 1/sqrt(fan_in)). Scaling the target first exposes skipped resets.
    target = _model(seed=2)
    with torch.no_grad():
        for p in target.parameters():
            p.mul_(10.0).add_(1.0)
    transfer_units(_model(seed=1), target, 0, seed=7)
    layers = [m for m in target.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert len(layers) == 8
    for layer in layers[:-1]:
        fan_in = layer.weight[0].numel()
        assert layer.weight.std().item() == pytest.approx((2.0 / fan_in) ** 0.5, rel=0.2)
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    head = layers[-1]
    bound = 1.0 / head.weight.shape[1] ** 0.5
    assert head.weight.abs().max() <= bound and head.bias.abs().max() <= bound


def test_shape_mismatch_is_a_clear_error() -> None:
    wide = create_model("alexnet_small", num_classes=5, channels=(16, 64, 96, 96, 64))
    with pytest.raises(ValueError, match=r"unit 'conv1'.*shape"):
        transfer_units(wide, _model(), 1)
    with pytest.raises(ValueError, match="units differ"):
        transfer_units(_model("resnet_small"), _model(), 1)
    with pytest.raises(ValueError, match=r"n must be an int in \[0, 8\]"):
        transfer_units(_model(), _model(), 9)


def test_frozen_units_do_not_move_under_sgd_with_momentum_and_decay() -> None:
    source, target = _model(seed=1), _model(seed=2)
    transfer_units(source, target, 3, freeze=True, seed=0)
    assert frozen_unit_count(target) == 3
    before = _unit_state(target)
    groups = unit_param_groups(target, 0.1, weight_decay=5e-4)  # None: keep frozen units frozen
    assert {g["unit"] for g in groups} == set(target.unit_names[3:])
    _train_steps(target, groups)
    after = _unit_state(target)
    for i in range(3):
        assert _equal(before[i], after[i])
    for i in range(3, len(after)):
        assert not _equal(before[i], after[i])


def test_frozen_batchnorm_statistics_stay_fixed_in_set_train_mode() -> None:
    model = _model("resnet_small", seed=0)
    freeze_units(model, 2)
    set_train_mode(model)
    assert not model.stem.training and not model.stage1.training and model.stage2.training
    before = _unit_state(model)
    _train_steps(model, unit_param_groups(model, 0.1, weight_decay=5e-4))
    after = _unit_state(model)
    assert _equal(before[0], after[0]) and _equal(before[1], after[1])
    assert not torch.equal(before[2]["0.bn1.running_mean"], after[2]["0.bn1.running_mean"])


def test_freeze_units_and_count() -> None:
    model = _model()
    assert frozen_unit_count(model) == 0
    freeze_units(model, 5)
    assert frozen_unit_count(model) == 5
    assert all(p.requires_grad for p in model.fc6.parameters())
    freeze_units(model, 2)
    assert frozen_unit_count(model) == 2


def test_lr_multipliers_make_expected_groups() -> None:
    model = _model()
    mults = lr_multipliers_for(model, 3, 0.1)
    assert mults == [0.1, 0.1, 0.1, 1.0, 1.0, 1.0, 1.0, 1.0]
    groups = unit_param_groups(model, 0.01, weight_decay=1e-4, lr_multipliers=mults)
    by_unit = {(g["unit"], g["weight_decay"]): g for g in groups}
    assert by_unit[("conv2", 1e-4)]["lr"] == pytest.approx(0.001)
    assert by_unit[("conv2", 0.0)]["params"] == [model.conv2[0].bias]
    assert by_unit[("fc7", 1e-4)]["lr"] == pytest.approx(0.01)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_zero_multiplier_freezes_and_mapping_form() -> None:
    model = _model()
    groups = unit_param_groups(
        model, 0.1, weight_decay=0.0, lr_multipliers={"conv1": 0.0, "conv2": 0.5}
    )
    assert "conv1" not in {g["unit"] for g in groups}
    assert not any(p.requires_grad for p in model.conv1.parameters())
    assert [g["lr"] for g in groups if g["unit"] == "conv2"] == pytest.approx([0.05, 0.05])
    assert frozen_unit_count(model) == 1
    no_skip = unit_param_groups(model, 0.1, weight_decay=1e-3, skip_norm_bias_decay=False)
    assert all(g["weight_decay"] == 1e-3 for g in no_skip)
    with pytest.raises(ValueError, match="unknown units"):
        unit_param_groups(model, 0.1, weight_decay=0.0, lr_multipliers={"conv9": 1.0})
    with pytest.raises(ValueError, match="one value per unit"):
        unit_param_groups(model, 0.1, weight_decay=0.0, lr_multipliers=[1.0, 1.0])


def test_timm_units_transfer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    source = create_model("resnet10t", num_classes=10)
    target = create_model("resnet10t", num_classes=3)
    transfer_units(source, target, 2, freeze=True, seed=0)
    torch.testing.assert_close(
        target.model.layer1[0].conv1.weight, source.model.layer1[0].conv1.weight
    )
    torch.testing.assert_close(target.model.conv1[0].weight, source.model.conv1[0].weight)
    assert not torch.equal(target.model.layer2[0].conv1.weight, source.model.layer2[0].conv1.weight)
    assert frozen_unit_count(target) == 2
