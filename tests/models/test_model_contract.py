"""Contract tests: every model exposes the same transfer hooks (units, features, head)."""

from __future__ import annotations

import time

import pytest
import torch

from survey_lib.models import TransferModel, create_model, list_models

# Every registered model, plus one timm backbone with random weights (tiny input keeps it fast).
CASES = [(name, {}, 32) for name in list_models()] + [("resnet10t", {"in_chans": 1}, 32)]
EXPECTED_UNITS = {
    "alexnet_small": ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "classifier"),
    "resnet_small": ("stem", "stage1", "stage2", "stage3", "classifier"),
    "resnet10t": ("stem", "stage1", "stage2", "stage3", "stage4", "head"),
}


@pytest.fixture(autouse=True)
def _single_thread() -> None:
    torch.set_num_threads(1)


def _build(name: str, kwargs: dict, num_classes: int = 7) -> TransferModel:
    torch.manual_seed(0)
    return create_model(name, num_classes=num_classes, **kwargs)


def test_registry_lists_the_small_models() -> None:
    assert {"alexnet_small", "resnet_small"} <= set(list_models())


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="alexnet_small.*resnet_small"):
        create_model("no_such_net", num_classes=3)


@pytest.mark.parametrize(("name", "kwargs", "size"), CASES)
def test_units_and_shapes(name: str, kwargs: dict, size: int) -> None:
    model = _build(name, kwargs).eval()
    assert tuple(u for u, _ in model.units()) == EXPECTED_UNITS[name]
    assert model.unit_names[-1] == model.classifier_name
    x = torch.randn(3, 1, size, size)
    features = model.forward_features(x)
    assert features.shape == (3, model.feature_dim)
    logits = model(x)
    assert logits.shape == (3, 7)
    torch.testing.assert_close(logits, model.forward_head(features))


@pytest.mark.parametrize(("name", "kwargs", "size"), CASES)
def test_units_cover_every_parameter_once(name: str, kwargs: dict, size: int) -> None:
    model = _build(name, kwargs)
    in_units = [id(p) for _, unit in model.units() for p in unit.parameters()]
    assert len(in_units) == len(set(in_units))
    assert set(in_units) == {id(p) for p in model.parameters()}


@pytest.mark.parametrize(("name", "kwargs", "size"), CASES)
def test_reset_classifier_changes_head(name: str, kwargs: dict, size: int) -> None:
    model = _build(name, kwargs)
    model.reset_classifier(4)
    assert model.num_classes == 4
    assert model(torch.randn(2, 1, size, size)).shape == (2, 4)
    head = dict(model.units())[model.classifier_name]
    assert any(p.shape[0] == 4 for p in head.parameters())
    with pytest.raises(ValueError):
        model.reset_classifier(0)


@pytest.mark.parametrize(("name", "kwargs", "size"), [c for c in CASES if c[0] in list_models()])
def test_sequential_units_compose(name: str, kwargs: dict, size: int) -> None:
    model = _build(name, kwargs).eval()
    assert model.sequential
    x = torch.randn(2, 1, size, size)
    full = model(x)
    for k in range(len(model.unit_names) + 1):
        middle = model.forward_units(x, 0, k)
        torch.testing.assert_close(model.forward_units(middle, k), full)
    torch.testing.assert_close(
        model.forward_units(x, 0, len(model.unit_names) - 1), model.forward_features(x)
    )


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("name", ["alexnet_small", "resnet_small"])
def test_small_models_take_28_and_32_px(name: str, size: int) -> None:
    model = _build(name, {"in_chans": 3}).eval()
    assert model(torch.randn(2, 3, size, size)).shape == (2, 7)


def test_alexnet_norm_and_dropout_options() -> None:
    plain = create_model("alexnet_small", num_classes=3)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    normed = create_model("alexnet_small", num_classes=3, norm=True, dropout=0.2)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in normed.modules()) == 5
    assert {m.p for m in normed.modules() if isinstance(m, torch.nn.Dropout)} == {0.2}


def test_gradients_reach_every_unit() -> None:
    model = _build("resnet_small", {})
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 1, 32, 32)), torch.arange(4))
    loss.backward()
    for name, unit in model.units():
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in unit.parameters()), name


def test_local_weights_round_trip(tmp_path) -> None:
    source = _build("alexnet_small", {}, num_classes=10)
    path = tmp_path / "source.pt"
    torch.save(source.state_dict(), path)
    same = create_model("alexnet_small", num_classes=10, weights=path)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(same.state_dict()[key], value)
    other_head = create_model("alexnet_small", num_classes=4, weights=path)
    torch.testing.assert_close(other_head.conv1[0].weight, source.conv1[0].weight)
    assert other_head.classifier.out_features == 4
    with pytest.raises(ValueError, match="not a file"):
        create_model("alexnet_small", num_classes=4, weights=tmp_path / "missing.pt")


@pytest.mark.parametrize("name", ["alexnet_small", "resnet_small"])
def test_small_models_are_fast_on_one_core(name: str) -> None:
    model = _build(name, {}, num_classes=10)
    x, y = torch.randn(128, 1, 32, 32), torch.randint(0, 10, (128,))
    for _ in range(2):  # warm-up
        torch.nn.functional.cross_entropy(model(x), y).backward()
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        timings.append(time.perf_counter() - start)
    # ~50 ms on an idle core; a generous bound for a shared machine.
    assert min(timings) < 0.4


@pytest.mark.parametrize("name", ["alexnet_small", "resnet_small"])
def test_small_models_learn_from_their_initialisation(name: str) -> None:
    # Bright-left vs bright-right images: a dead initialisation would stay at log(2) loss.
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 28, 28, generator=gen) * 0.5
    y = torch.arange(64) % 2
    x[y == 0, :, :, :14] += 1.0
    x[y == 1, :, :, 14:] += 1.0
    model = _build(name, {}, num_classes=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
