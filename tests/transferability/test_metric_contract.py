"""Contract tests run over every registered transferability metric (synthetic inputs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from survey_lib.transferability import get_metric, list_metrics

NUM_CLASSES = 3
N = 60


def _inputs(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic features (N, 8) or softmax probabilities (N, 6), and labels with all classes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(N) % NUM_CLASSES
    if get_metric(name).input == "features":
        x = rng.normal(size=(N, 8)) + 1.5 * np.eye(8)[labels]
    else:
        logits = rng.normal(size=(N, 6)) + 2.0 * np.eye(6)[labels]
        x = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return x, labels.astype(np.int64)


ALL = list_metrics()


FEATURE_METRICS = ["hscore", "logme", "knn", "linear", "hscore_shrinkage", "transrate", "gbc"]


def test_registry_lists_the_nine_metrics_with_their_inputs() -> None:
    assert ALL == ["hscore", "nce", "leep", "logme", "knn", "linear", "hscore_shrinkage",
                   "transrate", "gbc"]  # fmt: skip
    assert list_metrics("probabilities") == ["nce", "leep"]
    assert list_metrics("features") == FEATURE_METRICS
    with pytest.raises(ValueError, match="features"):
        list_metrics("logits")  # type: ignore[arg-type]


def test_unknown_metric_is_rejected_listing_valid_names() -> None:
    with pytest.raises(
        ValueError, match="hscore, nce, leep, logme, knn, linear, hscore_shrinkage, transrate, gbc"
    ):
        get_metric("h-score")


@pytest.mark.parametrize("name", ALL)
def test_returns_finite_python_float_and_is_deterministic(name: str) -> None:
    x, y = _inputs(name)
    metric = get_metric(name)
    first = metric(x, y, num_classes=NUM_CLASSES)
    second = metric(x.copy(), y.copy(), num_classes=NUM_CLASSES)
    assert type(first) is float
    assert math.isfinite(first)
    assert first == second


@pytest.mark.parametrize("name", ALL)
def test_accepts_torch_and_numpy_alike(name: str) -> None:
    x, y = _inputs(name)
    metric = get_metric(name)
    x32 = x.astype(np.float32)
    from_numpy = metric(x32, y, num_classes=NUM_CLASSES)
    from_torch = metric(torch.from_numpy(x32), torch.from_numpy(y), num_classes=NUM_CLASSES)
    assert from_numpy == from_torch
    from_f64 = metric(torch.from_numpy(x), torch.from_numpy(y), num_classes=NUM_CLASSES)
    assert from_f64 == metric(x, y, num_classes=NUM_CLASSES)


@pytest.mark.parametrize("name", ALL)
def test_absent_classes_do_not_change_the_value(name: str) -> None:
    # num_classes is taken as given, not inferred from max(label) + 1.
    x, y = _inputs(name)
    metric = get_metric(name)
    assert metric(x, y, num_classes=NUM_CLASSES + 2) == pytest.approx(
        metric(x, y, num_classes=NUM_CLASSES), rel=1e-12, abs=1e-12
    )


def _bad_labels(y: np.ndarray) -> dict[str, object]:
    out_of_range = y.copy()
    out_of_range[0] = NUM_CLASSES  # valid only if num_classes were inferred
    negative = y.copy()
    negative[0] = -1
    return {
        "out_of_range": out_of_range,
        "negative": negative,
        "float": y.astype(np.float64),
        "bool": (y > 0),
        "2d": y[:, None],
        "short": y[:-1],
        "torch_out_of_range": torch.from_numpy(out_of_range),
    }


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "case", ["out_of_range", "negative", "float", "bool", "2d", "short", "torch_out_of_range"]
)
def test_rejects_bad_labels(name: str, case: str) -> None:
    x, y = _inputs(name)
    with pytest.raises(ValueError, match="labels"):
        get_metric(name)(x, _bad_labels(y)[case], num_classes=NUM_CLASSES)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("num_classes", [0, 1, 2.5, True, None])
def test_rejects_bad_num_classes(name: str, num_classes: object) -> None:
    x, y = _inputs(name)
    with pytest.raises(ValueError, match="num_classes"):
        get_metric(name)(x, y, num_classes=num_classes)


@pytest.mark.parametrize("name", ALL)
def test_rejects_bad_input_shapes_and_values(name: str) -> None:
    x, y = _inputs(name)
    metric = get_metric(name)
    with pytest.raises(ValueError, match=r"2-D"):
        metric(x[:, 0], y, num_classes=NUM_CLASSES)
    with pytest.raises(ValueError, match=r"2-D"):
        metric(x[None], y, num_classes=NUM_CLASSES)
    with pytest.raises(ValueError, match="NaN"):
        bad = x.copy()
        bad[3, 1] = np.nan
        metric(bad, y, num_classes=NUM_CLASSES)
    with pytest.raises(ValueError, match="rows"):
        metric(x[:-2], y, num_classes=NUM_CLASSES)


@pytest.mark.parametrize("name", list_metrics("probabilities"))
def test_probability_metrics_reject_logits(name: str) -> None:
    x, y = _inputs(name)
    metric = get_metric(name)
    with pytest.raises(ValueError, match="softmax"):
        metric(np.log(x), y, num_classes=NUM_CLASSES)  # negative entries
    with pytest.raises(ValueError, match="sum"):
        metric(2.0 * x, y, num_classes=NUM_CLASSES)  # rows sum to 2
