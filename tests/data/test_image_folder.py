"""The ``image_folder`` dataset, on folders written from real Fashion-MNIST images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from survey_lib.data import get_dataset, list_datasets
from survey_lib.data.cards import validate_card
from survey_lib.data.image_folder import ImageFolderError, data_card, load_image_folder
from survey_lib.data.protocols import k_per_class
from survey_lib.experiments.common import load_split

PER_CLASS = 6
CLASSES = (0, 1, 7)


@pytest.fixture(scope="module")
def fashion():
    ds = get_dataset("fashion_mnist", "test").select_classes(list(CLASSES))
    return ds.subset(k_per_class(ds.labels, PER_CLASS, 0, num_classes=ds.num_classes))


def write_folder(root: Path, ds, *, mode: str = "L") -> Path:
    for i, (img, label) in enumerate(zip(ds.images, ds.labels)):
        folder = root / f"c{int(label)}_{ds.class_names[int(label)].split('/')[0]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[0].numpy(), mode="L").convert(mode).save(folder / f"{i:04d}.png")
    return root


def test_registered_and_reads_the_pixels_written(tmp_path: Path, fashion) -> None:
    assert "image_folder" in list_datasets("local")
    root = write_folder(tmp_path / "fm", fashion)
    train = get_dataset("image_folder", "train", root=str(root), image_size=28, cache=False)
    test = get_dataset("image_folder", "test", root=str(root), image_size=28, cache=False)
    assert train.class_names == ("c0_T-shirt", "c1_Trouser", "c2_Sneaker")
    assert len(train) + len(test) == len(fashion) and train.images.dtype == torch.uint8
    assert train.image_shape == (1, 28, 28)
    # every loaded image is one of the written Fashion-MNIST images, with its label
    written = {(img.numpy().tobytes(), int(y)) for img, y in zip(fashion.images, fashion.labels)}
    got = {(img.numpy().tobytes(), int(y)) for img, y in zip(train.images, train.labels)}
    got |= {(img.numpy().tobytes(), int(y)) for img, y in zip(test.images, test.labels)}
    assert got == written
    # a fifth of each class held out (round half up): 6 -> 1
    assert torch.bincount(test.labels).tolist() == [1, 1, 1]


def test_split_is_deterministic_and_seeded(tmp_path: Path, fashion) -> None:
    root = str(write_folder(tmp_path / "fm", fashion))
    a = load_image_folder("test", root=root, test_fraction=0.5)
    b = load_image_folder("test", root=root, test_fraction=0.5)
    c = load_image_folder("test", root=root, test_fraction=0.5, split_seed=3)
    assert a.checksum == b.checksum and a.checksum != c.checksum


def test_size_channels_and_explicit_splits(tmp_path: Path, fashion) -> None:
    half = len(fashion) // 2
    write_folder(tmp_path / "s" / "train", fashion, mode="RGB")
    write_folder(tmp_path / "s" / "test", fashion.subset(range(half)), mode="RGB")
    test = load_image_folder("test", root=str(tmp_path / "s"), image_size=16, channels=3)
    assert test.image_shape == (3, 16, 16) and len(test) == half
    # greyscale written as RGB: the three channels agree
    assert torch.equal(test.images[:, 0], test.images[:, 2])


def test_common_load_split_and_card(tmp_path: Path, fashion) -> None:
    root = str(write_folder(tmp_path / "fm", fashion))
    ds = load_split("image_folder", "train", per_class=2, size=32, options={"root": root})
    assert len(ds) == 2 * len(CLASSES) and ds.image_shape == (1, 32, 32)
    card = data_card(root)
    assert validate_card(card) == []
    assert card["classes"] == 3 and card["train_size"] + card["test_size"] == len(fashion)
    assert card["checksums"]["train"] == load_image_folder("train", root=root).checksum


def test_empty_missing_and_one_class(tmp_path: Path, fashion) -> None:
    with pytest.raises(ImageFolderError, match="needs root"):
        load_image_folder("train")
    with pytest.raises(ImageFolderError, match="does not exist"):
        load_image_folder("train", root=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageFolderError, match="is empty"):
        load_image_folder("train", root=str(tmp_path / "empty"))
    one = write_folder(tmp_path / "one", fashion.select_classes([0]))
    with pytest.raises(ImageFolderError, match="one class"):
        load_image_folder("train", root=str(one))


def test_unreadable_files_are_named_then_skipped(tmp_path: Path, fashion) -> None:
    root = write_folder(tmp_path / "fm", fashion)
    bad = root / "c0_T-shirt" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ImageFolderError, match="broken.png"):
        load_image_folder("train", root=str(root))
    with pytest.warns(UserWarning, match="broken.png"):
        ds = load_image_folder("train", root=str(root), on_error="skip")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        test = load_image_folder("test", root=str(root), on_error="skip")
    assert len(ds) + len(test) == len(fashion)


def test_mixed_modes_error_or_convert(tmp_path: Path, fashion) -> None:
    root = write_folder(tmp_path / "fm", fashion)
    img = np.zeros((28, 28, 3), dtype=np.uint8)
    Image.fromarray(img, mode="RGB").save(root / "c1_Trouser" / "colour.png")
    with pytest.raises(ImageFolderError, match="mixes image modes.*RGB"):
        load_image_folder("train", root=str(root))
    ds = load_image_folder("train", root=str(root), mixed_modes="convert")
    assert ds.image_shape == (1, 32, 32)


def test_bad_options_are_named(tmp_path: Path, fashion) -> None:
    root = str(write_folder(tmp_path / "fm", fashion))
    with pytest.raises(ImageFolderError, match="channels must be one of"):
        load_image_folder("train", root=root, channels=2)
    with pytest.raises(ImageFolderError, match="on_error"):
        load_image_folder("train", root=root, on_error="ignore")
