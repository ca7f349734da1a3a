"""Paper-profile loaders on small fixtures written in each dataset's real on-disk format."""

from __future__ import annotations

import hashlib
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from survey_lib.data import ChecksumError, DatasetNotFoundError, get_dataset
from survey_lib.data.torchvision_sets import _pil_to_uint8

CIFAR_BATCHES = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _write_cifar10(root: Path, per_batch: int = 3) -> dict[str, str]:
    """Tiny CIFAR-10 in the python pickle format; returns {file: md5} for the fixture."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for b, name in enumerate([*CIFAR_BATCHES, "test_batch"]):
        n = per_batch
        data = np.stack([np.full(3072, 10 * b + i, dtype=np.uint8) for i in range(n)])
        entry = {"batch_label": name, "labels": [(b + i) % 10 for i in range(n)], "data": data}
        (folder / name).write_bytes(pickle.dumps(entry))
    names = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return {p.name: _md5(p) for p in folder.iterdir()}


def test_cifar10_reads_pickle_batches(isolated_dirs: tuple[Path, Path]) -> None:
    sums = _write_cifar10(isolated_dirs[0])
    train = get_dataset("cifar10", "train", checksums=sums, download=False)
    assert train.images.shape == (15, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.images[:, 0, 0, 0].tolist() == [10 * b + i for b in range(5) for i in range(3)]
    assert train.labels.tolist() == [(b + i) % 10 for b in range(5) for i in range(3)]
    assert train.class_names[1] == "automobile" and train.num_classes == 10
    test = get_dataset("cifar10", "test", checksums=sums, download=False, image_size=8)
    assert test.images.shape == (3, 3, 8, 8)
    assert test.images[:, 0].flatten(1).unique(dim=1).flatten().tolist() == [50, 51, 52]
    assert list((isolated_dirs[1] / "datasets" / "cifar10").glob("train-*.pt"))  # cached


def test_cifar10_checks_torchvision_md5_by_default(isolated_dirs: tuple[Path, Path]) -> None:
    _write_cifar10(isolated_dirs[0])
    with pytest.raises(ChecksumError) as info:
        get_dataset("cifar10", "train", download=False)
    assert "data_batch_1" in str(info.value)
    assert "c99cafc152244af753f735de768cd75f" in str(info.value)  # torchvision's table


def test_cifar10_corrupt_batch(isolated_dirs: tuple[Path, Path]) -> None:
    sums = _write_cifar10(isolated_dirs[0])
    batch = isolated_dirs[0] / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:-10])  # truncated
    with pytest.raises(ChecksumError) as info:
        get_dataset("cifar10", "train", checksums=sums, download=False)
    assert str(batch) in str(info.value) and sums["data_batch_3"] in str(info.value)
    with pytest.raises(ValueError, match="unknown CIFAR-10 files"):
        get_dataset("cifar10", checksums={"data_batch_9": "0" * 32}, download=False)


def test_missing_data_without_network(
    isolated_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torchvision.datasets.cifar as tv_cifar
    import torchvision.datasets.dtd as tv_dtd

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", no_network)
    monkeypatch.setattr(tv_dtd, "download_and_extract_archive", no_network)
    with pytest.raises(
        DatasetNotFoundError, match=r"CIFAR-10 not found .*download failed.*no network"
    ):
        get_dataset("cifar10")
    with pytest.raises(DatasetNotFoundError, match=r"CIFAR-10 not found .*pass download=True"):
        get_dataset("cifar10", download=False)
    with pytest.raises(DatasetNotFoundError, match=r"Describable Textures.*download failed"):
        get_dataset("dtd")
    with pytest.raises(DatasetNotFoundError, match=str(isolated_dirs[0] / "dtd")):
        get_dataset("dtd", download=False)


def test_stanford_cars_explains_manual_download(isolated_dirs: tuple[Path, Path]) -> None:
    with pytest.raises(
        DatasetNotFoundError,
        match=r"cannot download Stanford Cars.*cars_test_annos_withlabels\.mat",
    ):
        get_dataset("stanford_cars")
    with pytest.raises(ValueError, match="download=True is not possible"):
        get_dataset("stanford_cars", download=True)


def test_checked_files_raise_checksum_error(isolated_dirs: tuple[Path, Path]) -> None:
    (isolated_dirs[0] / "svhn").mkdir()
    (isolated_dirs[0] / "svhn" / "train_32x32.mat").write_bytes(b"garbage")
    with pytest.raises(ChecksumError, match=r"train_32x32\.mat.*e26dedcc434d2e4c54c9b2d4a06d8373"):
        get_dataset("svhn", download=False)
    (isolated_dirs[0] / "flowers-102").mkdir()
    (isolated_dirs[0] / "flowers-102" / "setid.mat").write_bytes(b"garbage")
    with pytest.raises(ChecksumError, match=r"setid\.mat.*a5357ecc9cb78c4bef273ce3793fc85c"):
        get_dataset("flowers102", download=False)


COLORS = {"banded": (200, 30, 30), "dotted": (30, 200, 30), "zigzagged": (30, 30, 200)}


def _write_dtd(root: Path) -> None:
    data = root / "dtd" / "dtd"
    (data / "labels").mkdir(parents=True)
    lines = {"train": [], "val": [], "test": []}
    for cls, color in COLORS.items():
        (data / "images" / cls).mkdir(parents=True)
        for i in range(3):
            name = f"{cls}_{i:04d}.jpg"
            Image.new("RGB", (30 + 7 * i, 20), color).save(data / "images" / cls / name, quality=95)
            lines[("train", "val", "test")[i]].append(f"{cls}/{name}")
    for split, rows in lines.items():
        (data / "labels" / f"{split}1.txt").write_text("\n".join(rows) + "\n")


def test_dtd_folder_dataset(isolated_dirs: tuple[Path, Path]) -> None:
    _write_dtd(isolated_dirs[0])
    train = get_dataset("dtd", "train", image_size=16, download=False)
    assert train.images.shape == (3, 3, 16, 16) and train.images.dtype == torch.uint8
    assert train.class_names == tuple(sorted(COLORS))
    assert train.labels.tolist() == [0, 1, 2]
    for image, label in zip(train.images, train.labels):
        expected = torch.tensor(COLORS[train.class_names[int(label)]]).view(3, 1, 1)
        assert (image.int() - expected).abs().max() <= 4  # JPEG of a flat colour
    assert len(get_dataset("dtd", "test", image_size=16, download=False)) == 3


def test_dtd_trainval_is_train_then_val(isolated_dirs: tuple[Path, Path]) -> None:
    _write_dtd(isolated_dirs[0])
    parts = [get_dataset("dtd", s, image_size=16, download=False) for s in ("train", "val")]
    trainval = get_dataset("dtd", "trainval", image_size=16, download=False)
    assert trainval.split == "trainval" and trainval.class_names == parts[0].class_names
    assert trainval.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert torch.equal(trainval.images, torch.cat([p.images for p in parts]))


def _write_flowers(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Flowers-102 in its release layout (jpg/image_%05d.jpg, imagelabels.mat, setid.mat) with
    three classes; torchvision's MD5 table is pointed at the fixture's .mat files."""
    from scipy.io import savemat
    from torchvision.datasets import Flowers102

    folder = root / "flowers-102"
    (folder / "jpg").mkdir(parents=True)
    labels = [1, 2, 3, 1, 2, 3, 1, 2, 3, 3]  # 1-based, image ids 1..10
    for image_id, label in enumerate(labels, 1):
        Image.new("RGB", (20, 14), (60 * label, 7 * image_id, 0)).save(
            folder / "jpg" / f"image_{image_id:05d}.jpg", quality=95
        )
    ids = {"trnid": [1, 2, 3], "valid": [6, 4, 5], "tstid": [7, 8, 9, 10]}
    savemat(folder / "imagelabels.mat", {"labels": np.asarray(labels)})
    savemat(folder / "setid.mat", {k: np.asarray(v) for k, v in ids.items()})
    table = dict(Flowers102._file_dict)
    table["label"] = ("imagelabels.mat", _md5(folder / "imagelabels.mat"))
    table["setid"] = ("setid.mat", _md5(folder / "setid.mat"))
    monkeypatch.setattr(Flowers102, "_file_dict", table)
    return ids


def test_flowers_trainval_is_train_then_val(
    isolated_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_flowers(isolated_dirs[0], monkeypatch)
    load = lambda split: get_dataset("flowers102", split, image_size=8, download=False)  # noqa: E731
    train, val, trainval, test = (load(s) for s in ("train", "val", "trainval", "test"))
    assert (len(train), len(val), len(trainval), len(test)) == (3, 3, 6, 4)
    assert trainval.labels.tolist() == train.labels.tolist() + val.labels.tolist()
    assert val.labels.tolist() == [2, 0, 1]  # image ids 6, 4, 5 in setid.mat order
    assert torch.equal(trainval.images, torch.cat([train.images, val.images]))
    assert trainval.num_classes == 102  # torchvision's class names, all 102
    with pytest.raises(ValueError, match="trainval"):
        get_dataset("flowers102", "train+val", download=False)


def test_resize_shorter_side_then_centre_crop() -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 255, 0), (10, 0, 30, 20))  # green middle square, red margins
    tensor = _pil_to_uint8(image, 10, "shorter_crop")
    assert tensor.shape == (3, 10, 10)
    # only the green centre survives; antialiasing lets a little red into the edge columns
    assert tensor[1, :, 1:-1].min() >= 250 and tensor[0, :, 1:-1].max() <= 5
    assert (tensor[1, :, [0, -1]] > tensor[0, :, [0, -1]]).all()
    squashed = _pil_to_uint8(image, 10, "squash")
    assert squashed[0, :, 0].min() >= 250  # squash keeps the red margin


def test_caltech101_seeded_30_per_class_split(isolated_dirs: tuple[Path, Path]) -> None:
    folder = isolated_dirs[0] / "caltech101" / "101_ObjectCategories"
    sizes = {"accordion": 32, "airplanes": 33, "BACKGROUND_Google": 2}
    for cls, n in sizes.items():
        (folder / cls).mkdir(parents=True)
        for i in range(1, n + 1):
            Image.new("L", (12, 9), 7 * i).save(folder / cls / f"image_{i:04d}.jpg")
    train = get_dataset("caltech101", "train", image_size=8, download=False)
    test = get_dataset("caltech101", "test", image_size=8, download=False)
    assert train.class_names == ("accordion", "airplanes")  # BACKGROUND_Google is not a class
    assert torch.bincount(train.labels).tolist() == [30, 30]
    assert torch.bincount(test.labels).tolist() == [2, 3]
    assert train.images.shape == (60, 3, 8, 8)
    again = get_dataset("caltech101", "train", image_size=8, download=False, cache=False)
    assert torch.equal(again.images, train.images)
    train_pixels = {
        img.numpy().tobytes() + bytes([int(t)]) for img, t in zip(train.images, train.labels)
    }
    test_pixels = {
        img.numpy().tobytes() + bytes([int(t)]) for img, t in zip(test.images, test.labels)
    }
    assert not train_pixels & test_pixels  # each image (distinct grey level) in one split only
