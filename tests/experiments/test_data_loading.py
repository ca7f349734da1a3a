"""Data loading of the experiments: same tensors and results as before, loaded less often.

The references below are the previous implementations (resize the whole split, then select;
load each half's data once per use and evaluate the base model in a transfer run).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from survey_lib.data.protocols import at_most_k_per_class, k_per_class
from survey_lib.experiments import kornblith, l2sp_bss, yosinski
from survey_lib.experiments.common import load_split


def test_at_most_k_per_class_caps_each_class_without_the_minimum() -> None:
    labels = np.array([0] * 1 + [1] * 5 + [2] * 8)
    idx = at_most_k_per_class(labels, 3, 0, num_classes=4)  # class 3 is empty
    assert np.bincount(labels[idx], minlength=4).tolist() == [1, 3, 3, 0]
    # every class large enough: exactly k_per_class (the old rule gave the same there)
    assert np.array_equal(
        at_most_k_per_class(labels, 1, 5, num_classes=3), k_per_class(labels, 1, 5, num_classes=3)
    )
    with pytest.raises(ValueError, match="k must be >= 1"):
        at_most_k_per_class(labels, 0, 0, num_classes=3)


def _old_kornblith_target_data(target, k, seed, size):
    opts, channels = dict(target.get("options", {})), int(target.get("channels", 1))
    full = load_split(target["dataset"], target["train_split"], size=size, channels=channels,
                      options=opts)  # fmt: skip
    idx = k_per_class(full.labels, int(k), seed, num_classes=full.num_classes)
    test = load_split(target["dataset"], target["test_split"], size=size, channels=channels,
                      options=opts)  # fmt: skip
    counts = torch.bincount(test.labels, minlength=test.num_classes)
    cap = min(int(target["test_per_class"]), int(counts.min()))
    return full.subset(idx), test.subset(k_per_class(test.labels, cap, 0, num_classes=10))


def test_kornblith_caps_before_resizing_with_the_same_tensors() -> None:
    target = {"dataset": "digits", "options": {}, "channels": 3, "train_split": "train",
              "test_split": "test", "test_per_class": 7}  # fmt: skip
    new = kornblith.target_data(target, 5, seed=1, size=20)
    old = _old_kornblith_target_data(target, 5, 1, 20)
    for a, b in zip(new, old, strict=True):
        assert a.images.shape[1:] == (3, 20, 20)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_l2sp_target_data_and_stratified_attention_sample() -> None:
    target = {"dataset": "digits", "options": {}, "pool_per_class": 40, "test_per_class": 9}
    train, test = l2sp_bss.target_data(target, 0.5, seed=0, size=16)
    assert train.images.shape[1:] == (1, 16, 16)
    assert np.bincount(test.labels.numpy()).tolist() == [9] * 10
    sample = l2sp_bss.attention_sample(train, seed=3, size=50)
    counts = np.bincount(train.labels[sample].numpy(), minlength=10)
    assert 45 <= len(sample) <= 55 and counts.min() >= 1  # every class, about 50 in all
    assert len(set(sample.tolist())) == len(sample)
    assert torch.equal(sample, l2sp_bss.attention_sample(train, seed=3, size=50))
    assert not torch.equal(sample.sort().values, torch.arange(len(sample)))  # not a prefix
    assert torch.equal(l2sp_bss.attention_sample(train, 0, size=10_000), torch.arange(len(train)))


def test_l2sp_test_per_class_null_keeps_every_test_image() -> None:
    # the cpu protocol's glyph target says `test_per_class: null` (every unseen-typeface image)
    target = {"dataset": "digits", "options": {}, "pool_per_class": 10, "test_per_class": None}
    _, test = l2sp_bss.target_data(target, 1.0, seed=0, size=8)
    assert len(test) == len(load_split("digits", "test", size=None, options={}))


def _params(tmp_path) -> dict:
    return {
        "dataset": "digits", "options": {}, "model": "alexnet_small", "size": 16,
        "channels": 1, "train_per_class": 12, "test_per_class": 6, "split": "random",
        "train": {"epochs": 1, "batch_size": 32, "lr": 0.02, "weight_decay": 0.0005,
                  "schedule": "cosine", "augment": "none", "device": "cpu"},
        "checkpoint_dir": str(tmp_path / "ckpt"),
        "kind": "transfer", "source": "A", "n": 2, "freeze": True,
    }  # fmt: skip


def _old_yosinski_transfer(params, seed):
    from survey_lib.experiments.common import new_model, test_accuracy, train_config
    from survey_lib.models import dataset_stats
    from survey_lib.transfer import transfer_units

    train, test = yosinski._data(params, "B", seed)
    source_train, _ = yosinski._data(params, params["source"], seed)
    config = train_config(params["train"], seed, dataset_stats(source_train))
    target = new_model(params["model"], train.num_classes, params["channels"], seed + 10_000)
    source, _ = yosinski.base_model(params, params["source"], seed)
    transfer_units(source, target, params["n"], freeze=True, seed=seed + 10_000)
    config = train_config({**params["train"], "frozen_units": params["n"]}, seed,
                          (config.mean, config.std))  # fmt: skip
    yosinski.fit_or_fail(target, train, None, config)
    return test_accuracy(target, test, config)


def test_yosinski_transfer_loads_each_half_once_and_gives_the_same_accuracy(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = _params(tmp_path)
    old = _old_yosinski_transfer(params, seed=0)  # also trains and caches baseA
    loads, evaluations = [], []
    real_data, real_acc = yosinski._data, yosinski.test_accuracy
    monkeypatch.setattr(
        yosinski, "_data", lambda p, half, s: loads.append(half) or real_data(p, half, s)
    )
    monkeypatch.setattr(yosinski, "test_accuracy", lambda *a: evaluations.append(1) or real_acc(*a))
    new = yosinski.run_cell(params, 0).metrics["test_acc"]
    assert new == old
    assert sorted(loads) == ["A", "B"] and len(evaluations) == 1  # the target's test only
    loads.clear()
    yosinski.run_cell({**params, "source": "B"}, 0)
    assert loads == ["B"]


def test_load_split_cap_is_balanced_at_the_smallest_class() -> None:
    """digits' train classes are unequal; a cap above the smallest gives every class that size."""
    counts = torch.bincount(load_split("digits", "train", size=None).labels).tolist()
    assert len(set(counts)) > 1  # the fixture this test needs: unequal classes
    capped = load_split("digits", "train", per_class=max(counts), size=None)
    assert torch.bincount(capped.labels).tolist() == [min(counts)] * len(counts)
    small = load_split("digits", "train", per_class=3, seed=1, size=None)
    again = load_split("digits", "train", per_class=3, seed=1, size=None)
    assert torch.bincount(small.labels).tolist() == [3] * len(counts)
    assert torch.equal(small.images, again.images)  # seeded
