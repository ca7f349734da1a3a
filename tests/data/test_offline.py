"""Offline datasets: IDX parsing, Fashion-MNIST sources and checksums, digits."""

from __future__ import annotations

import gzip
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

import survey_lib.data.offline as offline
from survey_lib.data import ChecksumError, DatasetNotFoundError, get_dataset
from survey_lib.data.offline import FASHION_MD5, SYSTEM_FASHION_DIRS, read_idx

DEBIAN = SYSTEM_FASHION_DIRS[0]
HAVE_DEBIAN = all((DEBIAN / f"{stem}.gz").is_file() for stem in FASHION_MD5)


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def _write_fake_fashion(folder: Path, n: int = 6) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", n), ("t10k", n)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 10
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(labels)))


def test_read_idx_roundtrip_and_errors(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a-idx3-ubyte").write_bytes(_idx_bytes(array))
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(array)))
    assert np.array_equal(read_idx(tmp_path / "a-idx3-ubyte"), array)
    assert np.array_equal(read_idx(tmp_path / "a-idx3-ubyte.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(_idx_bytes(array)[:-5])
    with pytest.raises(ValueError, match="header promises 24 data bytes, file has 19"):
        read_idx(tmp_path / "short")


def test_fashion_corrupt_file_names_file_and_hash(isolated_dirs: tuple[Path, Path]) -> None:
    _write_fake_fashion(isolated_dirs[0] / "fashion-mnist")
    with pytest.raises(ChecksumError) as info:
        get_dataset("fashion_mnist", "train")
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert FASHION_MD5["train-images-idx3-ubyte"] in message
    assert info.value.expected == FASHION_MD5["train-images-idx3-ubyte"]


def test_fashion_truncated_gzip_is_a_checksum_error(isolated_dirs: tuple[Path, Path]) -> None:
    folder = isolated_dirs[0] / "fashion-mnist"
    _write_fake_fashion(folder)
    blob = (folder / "t10k-images-idx3-ubyte.gz").read_bytes()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ChecksumError, match=r"t10k-images-idx3-ubyte\.gz.*unreadable"):
        get_dataset("fashion_mnist", "test")


def test_fashion_missing_without_network(
    isolated_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(offline, "SYSTEM_FASHION_DIRS", ())
    import torchvision.datasets.mnist as tv_mnist

    def no_network(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", no_network)
    for download in (True, False):
        with pytest.raises(DatasetNotFoundError) as info:
            get_dataset("fashion_mnist", download=download)
        message = str(info.value)
        assert "SURVEY_DATA_DIR" in message
        assert "apt-get install dataset-fashion-mnist" in message
        assert "torchvision" in message and str(isolated_dirs[0]) in message


@pytest.mark.skipif(
    not HAVE_DEBIAN, reason=f"Debian dataset-fashion-mnist not installed ({DEBIAN})"
)
def test_real_fashion_mnist_and_cache(
    isolated_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    start = time.perf_counter()
    test = get_dataset("fashion_mnist", "test")
    cold = time.perf_counter() - start
    assert test.images.shape == (10_000, 1, 28, 28) and test.images.dtype == torch.uint8
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    assert test.labels[:5].tolist() == [9, 2, 1, 1, 6]  # Ankle boot, Pullover, Trouser, ...
    assert test.class_names[9] == "Ankle boot"
    assert int(test.images.max()) == 255 and int(test.images.min()) == 0

    def must_not_parse(path: object) -> np.ndarray:
        raise AssertionError("second load should come from the cache")

    monkeypatch.setattr(offline, "read_idx", must_not_parse)
    start = time.perf_counter()
    again = get_dataset("fashion_mnist", "test")
    warm = time.perf_counter() - start
    assert torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)
    assert warm < 1.0, f"cached load took {warm:.2f} s (cold {cold:.2f} s)"


def test_digits_values_split_and_determinism() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    train, test = get_dataset("digits", "train"), get_dataset("digits", "test")
    assert (len(train), len(test)) == (1198, 599)
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    assert torch.bincount(test.labels, minlength=10).tolist() == [
        int(np.floor(n / 3 + 0.5)) for n in np.bincount(raw.target)
    ]
    # every test image is one of sklearn's images scaled by round(v * 255 / 16)
    scaled = np.rint(raw.images * 255 / 16).astype(np.uint8)
    lookup = {(img.tobytes(), int(t)) for img, t in zip(scaled, raw.target)}
    assert all(
        (img[0].numpy().tobytes(), int(t)) in lookup for img, t in zip(test.images, test.labels)
    )
    assert torch.equal(get_dataset("digits", "test").images, test.images)
    total = torch.cat([train.images, test.images]).flatten(1)
    assert len({row.numpy().tobytes() for row in total}) == len(
        {img.tobytes() for img in scaled}
    )  # the two splits together hold every distinct image
