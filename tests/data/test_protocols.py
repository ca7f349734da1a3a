"""Protocol helpers: determinism, nesting, stratification, disjointness and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from survey_lib.data.protocols import (
    NAMED_SPLITS,
    k_per_class,
    named_split,
    sampling_rate_subset,
    split_classes,
    train_val_split,
)

NUM_CLASSES = 5


@pytest.fixture
def labels() -> np.ndarray:
    """Imbalanced labels: class c has 60 + 10 c examples, shuffled."""
    raw = np.concatenate([np.full(60 + 10 * c, c) for c in range(NUM_CLASSES)])
    return np.random.default_rng(123).permutation(raw)


def test_split_classes_partitions_and_is_deterministic() -> None:
    a, b = split_classes(10, seed=3)
    assert len(a) == 5 and len(b) == 5
    assert sorted(a + b) == list(range(10))
    assert (a, b) == split_classes(10, seed=3)
    assert list(a) == sorted(a) and list(b) == sorted(b)
    assert {split_classes(10, seed=s)[0] for s in range(8)} != {a}  # seeds change the split
    odd_a, odd_b = split_classes(7, seed=0)
    assert (len(odd_a), len(odd_b)) == (3, 4)
    with pytest.raises(ValueError, match="num_classes"):
        split_classes(1, seed=0)


def test_named_splits() -> None:
    assert named_split("fashion_mnist", "clothing_vs_footwear_bags") == (
        (0, 1, 2, 3, 4, 6),
        (5, 7, 8, 9),
    )
    assert named_split("digits", "low_vs_high") == ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9))
    a, b = named_split("cifar100", "random")
    assert (a, b) == split_classes(100, seed=0) and len(a) == 50
    for splits in NAMED_SPLITS.values():
        for a, b in splits.values():
            assert not set(a) & set(b)
    with pytest.raises(ValueError, match="clothing_vs_footwear_bags"):
        named_split("fashion_mnist", "nope")
    with pytest.raises(ValueError, match="fashion_mnist"):
        named_split("imagenet", "random")


def test_k_per_class_exact_counts_nested_and_deterministic(labels: np.ndarray) -> None:
    small = k_per_class(labels, 10, seed=0, num_classes=NUM_CLASSES)
    large = k_per_class(labels, 50, seed=0, num_classes=NUM_CLASSES)
    assert small.dtype == np.int64 and np.all(np.diff(small) > 0)
    assert np.bincount(labels[small], minlength=NUM_CLASSES).tolist() == [10] * NUM_CLASSES
    assert np.bincount(labels[large], minlength=NUM_CLASSES).tolist() == [50] * NUM_CLASSES
    assert set(small) <= set(large)
    assert np.array_equal(small, k_per_class(labels, 10, seed=0, num_classes=NUM_CLASSES))
    assert not np.array_equal(small, k_per_class(labels, 10, seed=1, num_classes=NUM_CLASSES))
    as_tensor = k_per_class(torch.from_numpy(labels), 10, seed=0, num_classes=NUM_CLASSES)
    assert np.array_equal(small, as_tensor)


def test_k_per_class_errors(labels: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"class 0 has 60 examples, fewer than k=61"):
        k_per_class(labels, 61, seed=0, num_classes=NUM_CLASSES)
    with pytest.raises(ValueError, match=r"class 5 has 0 examples"):
        k_per_class(labels, 1, seed=0, num_classes=NUM_CLASSES + 1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        k_per_class(labels, 1, seed=0, num_classes=4)
    with pytest.raises(ValueError, match="k must be"):
        k_per_class(labels, 0, seed=0, num_classes=NUM_CLASSES)


def test_sampling_rate_subset_stratified_and_nested(labels: np.ndarray) -> None:
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    previous: set[int] = set()
    for rate in (0.15, 0.3, 0.5, 1.0):
        idx = sampling_rate_subset(labels, rate, seed=4, num_classes=NUM_CLASSES)
        kept = np.bincount(labels[idx], minlength=NUM_CLASSES)
        assert kept.tolist() == [int(np.floor(rate * n + 0.5)) for n in counts]
        assert previous <= set(idx.tolist())
        previous = set(idx.tolist())
    assert np.array_equal(
        sampling_rate_subset(labels, 1.0, seed=4, num_classes=NUM_CLASSES), np.arange(len(labels))
    )
    # 0.15 * 60 = 9 examples of class 0; at least one example per class at tiny rates
    assert (
        np.bincount(
            labels[sampling_rate_subset(labels, 0.001, seed=0, num_classes=NUM_CLASSES)]
        ).tolist()
        == [1] * NUM_CLASSES
    )
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"rate must lie in \(0, 1\]"):
            sampling_rate_subset(labels, bad, seed=0, num_classes=NUM_CLASSES)


def test_train_val_split_disjoint_complete_stratified(labels: np.ndarray) -> None:
    train, val = train_val_split(labels, 0.2, seed=9, num_classes=NUM_CLASSES)
    assert not set(train) & set(val)
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    assert np.bincount(labels[val], minlength=NUM_CLASSES).tolist() == [
        int(np.floor(0.2 * n + 0.5)) for n in counts
    ]
    again = train_val_split(labels, 0.2, seed=9, num_classes=NUM_CLASSES)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])
    assert not np.array_equal(
        val, train_val_split(labels, 0.2, seed=10, num_classes=NUM_CLASSES)[1]
    )
    tiny_train, tiny_val = train_val_split([0, 0, 1], 0.9, seed=0, num_classes=2)
    assert tiny_val.tolist() in ([0], [1]) and 2 in tiny_train  # one-example class stays in train
    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match="val_fraction"):
            train_val_split(labels, bad, seed=0, num_classes=NUM_CLASSES)
