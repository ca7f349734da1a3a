"""Registry: names, profiles, metadata, bad input and the tensor cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import survey_lib.data.registry as registry
from survey_lib.data import (
    ImageDataset,
    dataset_info,
    get_dataset,
    list_datasets,
    register_dataset,
)

PAPER = {
    "cifar10", "cifar100", "svhn", "flowers102", "oxford_pets", "dtd", "fgvc_aircraft",
    "food101", "caltech101", "sun397", "gtsrb", "stanford_cars",
}  # fmt: skip


def test_names_and_profiles() -> None:
    assert set(list_datasets("paper")) == PAPER
    assert {"fashion_mnist", "digits"} <= set(list_datasets("offline"))
    assert list_datasets() == sorted(list_datasets())
    assert PAPER | {"fashion_mnist", "digits"} <= set(list_datasets())
    with pytest.raises(ValueError, match="valid profiles: .*offline.*paper"):
        list_datasets("imagenet")


@pytest.mark.parametrize("name", sorted(PAPER | {"fashion_mnist", "digits"}))
def test_metadata_is_complete(name: str) -> None:
    info = dataset_info(name)
    assert info.name == name
    assert info.splits[0] == "train"
    assert set(info.split_sizes) == set(info.splits)
    assert all(size > 0 for size in info.split_sizes.values())
    assert info.num_classes is not None and info.num_classes >= 10
    assert info.image_shape is not None and info.image_shape[0] in (1, 3)


def test_metadata_values() -> None:
    assert dataset_info("fashion_mnist").split_sizes == {"train": 60_000, "test": 10_000}
    assert dataset_info("cifar100").num_classes == 100
    assert dataset_info("caltech101").split_sizes == {"train": 3_030, "test": 5_647}
    assert dataset_info("flowers102").image_shape == (3, 224, 224)
    assert dataset_info("cifar10").options["image_size"] == 32
    assert dataset_info("stanford_cars").options["download"] is False
    assert dataset_info("food101").options["download"] is True


def test_bad_names_splits_options() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'; valid names: .*fashion_mnist"):
        get_dataset("mnist")
    with pytest.raises(ValueError, match=r"unknown split 'val' .*valid splits: train, test"):
        get_dataset("digits", "val")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['image_sise'\].*image_size"):
        get_dataset("cifar10", image_sise=64)
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_info("nope")


def _toy(calls: list[str], source: dict[str, str]):
    def loader(split: str, *, scale: int = 1) -> ImageDataset:
        calls.append(split)
        images = torch.full((4, 1, 2, 2), scale, dtype=torch.uint8)
        return ImageDataset("toy", split, images, torch.tensor([0, 1, 0, 1]), ("a", "b"))

    def fingerprint(split: str, *, scale: int = 1) -> str | None:
        return source.get("fp")

    return loader, fingerprint


def _register_toy(calls: list[str], source: dict[str, str]):
    """Register the toy dataset (with its source fingerprint); returns (loader, info)."""
    loader, fingerprint = _toy(calls, source)
    info = register_dataset(
        "toy",
        loader,
        splits=("train",),
        profile="offline",
        description="t",
        fingerprint=fingerprint,
    )
    return loader, info


def test_cache_hits_and_invalidation(
    isolated_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    calls: list[str] = []
    source = {"fp": "v1"}
    loader, info = _register_toy(calls, source)
    assert info.options == {"scale": 1}
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("toy", loader, splits=("train",), profile="offline", description="t")

    first = get_dataset("toy")
    second = get_dataset("toy")
    assert calls == ["train"]  # second load came from the cache
    assert torch.equal(first.images, second.images) and second.class_names == ("a", "b")
    assert len(list((isolated_dirs[1] / "datasets" / "toy").glob("train-*.pt"))) == 1

    get_dataset("toy", scale=1)  # the default spelled out hits the same entry
    assert calls == ["train"]
    assert int(get_dataset("toy", scale=3).images.max()) == 3  # options are part of the key
    source["fp"] = "v2"  # changed source files invalidate the cache
    get_dataset("toy")
    get_dataset("toy", cache=False)
    assert calls == ["train"] * 4

    source["fp"] = None  # no source fingerprint: never cached
    get_dataset("toy")
    get_dataset("toy")
    assert len(calls) == 6


def test_damaged_cache_file_is_rebuilt(
    isolated_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    calls: list[str] = []
    _register_toy(calls, {"fp": "v1"})
    get_dataset("toy")
    (cached,) = (isolated_dirs[1] / "datasets" / "toy").glob("train-*.pt")
    cached.write_bytes(b"not a torch file")
    assert int(get_dataset("toy").images.max()) == 1
    assert calls == ["train", "train"]
