"""prefetch: every dataset a notebook's parameters name is loaded once, before workers start."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import survey_lib.data.registry as registry
from survey_lib.data import ImageDataset, get_dataset, register_dataset
from survey_lib.experiments.prefetch import dataset_specs, prefetch


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """A registered, fingerprinted toy dataset in an empty cache; returns its loader's calls."""
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    calls: list[tuple[str, int]] = []

    def loader(split: str, *, scale: int = 1) -> ImageDataset:
        calls.append((split, scale))
        images = torch.full((4, 1, 2, 2), scale, dtype=torch.uint8)
        return ImageDataset("toy", split, images, torch.tensor([0, 1, 0, 1]), ("a", "b"))

    register_dataset(
        "toy", loader, splits=("train", "test", "extra"), profile="offline", description="t",
        fingerprint=lambda split, **_: "v1",
    )  # fmt: skip
    return calls


def _grid() -> list[dict]:
    source = {"dataset": "toy", "options": {}, "model": "alexnet_small", "epochs": 2}
    given = {"dataset": "not_a_dataset", "model": "resnet50.tv_in1k", "epochs": 0}
    targets = [
        {"name": "t", "dataset": "toy", "options": {"scale": 3}, "train_split": "extra",
         "test_split": "extra"},
    ]  # fmt: skip
    return [
        {"source": source, "target": t, "k": k, "given": given} for t in targets for k in (1, 2)
    ]


def test_specs_are_distinct_and_follow_the_named_splits(toy: list) -> None:
    specs = dataset_specs(_grid())
    assert [(s.name, s.split, dict(s.options)) for s in specs] == [
        ("toy", "train", {}),
        ("toy", "test", {}),
        ("toy", "extra", {"scale": 3}),
    ]  # the source with given weights (epochs 0) loads no data and is skipped


def test_prefetch_warms_the_cache_for_every_load_a_worker_makes(toy: list) -> None:
    prefetch(_grid(), {})
    assert sorted(toy) == [("extra", 3), ("test", 1), ("train", 1)]  # each split exactly once
    # what a worker does afterwards: every load is served by the tensor cache, no loader call
    for spec in dataset_specs(_grid()):
        get_dataset(spec.name, spec.split, **spec.options)
    get_dataset("toy", "train", scale=1)
    assert len(toy) == 3


def test_bad_names_and_splits_fail_before_any_worker(toy: list) -> None:
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        prefetch({"dataset": "nope"})
    with pytest.raises(ValueError, match="no split 'val'; valid splits: train, test, extra"):
        prefetch({"dataset": "toy", "train_split": "val"})
    assert toy == []
