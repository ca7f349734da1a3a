"""Real datasets that work without network: Fashion-MNIST (local files) and scikit-learn digits.

Fashion-MNIST: Xiao, Rasul and Vollgraf, "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms", arXiv 2017, https://arxiv.org/abs/1708.07747.
Digits: the UCI "Optical Recognition of Handwritten Digits" test set bundled with scikit-learn
(Alpaydin and Kaynak, 1998), https://archive.ics.uci.edu/dataset/80.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from survey_lib.data.base import ImageDataset
from survey_lib.data.cache import data_root, fingerprint_files, verify_md5
from survey_lib.data.errors import DatasetNotFoundError
from survey_lib.data.protocols import train_val_split
from survey_lib.data.registry import register_dataset

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip

# MD5 of the *uncompressed* idx files, as in torchvision's ``FashionMNIST`` tables. Checking the
# content rather than the .gz bytes accepts both the official archives (whose .gz MD5s
# torchvision checks when downloading) and Debian's recompressed copies.
FASHION_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SYSTEM_FASHION_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets/fashion-mnist"),)
"""Folders installed by Debian's ``dataset-fashion-mnist`` package."""

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (LeCun's MNIST format), gzipped or not, into a NumPy array.

    Header: two zero bytes, a type code, the number of dimensions, then one big-endian
    ``uint32`` per dimension; the data follow in C order.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ValueError(
            f"{path}: header promises {expected} data bytes, file has {len(raw) - offset}"
        )
    return np.frombuffer(raw, dtype, offset=offset).reshape(shape)


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _fashion_dirs(root: str | Path | None) -> list[Path]:
    base = Path(root).expanduser() if root is not None else data_root()
    user = [base / "fashion-mnist", base / "FashionMNIST" / "raw", base]
    return user + list(SYSTEM_FASHION_DIRS)


def _fashion_source(split: str, root: str | Path | None) -> tuple[Path, Path] | None:
    for folder in _fashion_dirs(root):
        found = [_find(folder, stem) for stem in _FASHION_FILES[split]]
        if all(found):
            return found[0], found[1]  # type: ignore[return-value]
    return None


def _fashion_fingerprint(
    split: str, *, root: str | None = None, download: bool = True
) -> str | None:
    source = _fashion_source(split, root)
    return None if source is None else fingerprint_files(source)


def _download_fashion(root: str | Path | None) -> None:
    from torchvision.datasets import FashionMNIST

    target = Path(root).expanduser() if root is not None else data_root()
    FashionMNIST(str(target), train=True, download=True)  # checks each .gz against its MD5


def load_fashion_mnist(
    split: str, *, root: str | None = None, download: bool = True
) -> ImageDataset:
    """Fashion-MNIST, 28×28 grayscale, 10 classes; train 60 000 / test 10 000.

    Sources, in order: ``root`` (default ``$SURVEY_DATA_DIR``, else ``~/.cache/survey_lib/data``)
    as ``fashion-mnist/``, ``FashionMNIST/raw/`` or the folder itself; Debian's
    ``/usr/share/datasets/fashion-mnist``; finally a torchvision download into ``root``. Every file
    is checked against the published MD5 of its content.
    """
    source = _fashion_source(split, root)
    if source is None and download:
        try:
            _download_fashion(root)
        except Exception as exc:  # network errors surface as RuntimeError/URLError/OSError
            raise _fashion_not_found(root, f"the torchvision download failed: {exc}") from exc
        source = _fashion_source(split, root)
    if source is None:
        raise _fashion_not_found(
            root, "download=False" if not download else "download gave no files"
        )
    hint = "Fashion-MNIST files must be the official release (torchvision FashionMNIST MD5s)."
    for path, stem in zip(source, _FASHION_FILES[split]):
        verify_md5(path, FASHION_MD5[stem], decompress=path.suffix == ".gz", hint=hint)
    images = torch.from_numpy(read_idx(source[0]).copy()).unsqueeze(1)
    labels = torch.from_numpy(read_idx(source[1]).astype(np.int64))
    return ImageDataset("fashion_mnist", split, images, labels, FASHION_CLASSES)


def _fashion_not_found(root: str | Path | None, why: str) -> DatasetNotFoundError:
    searched = "\n  ".join(str(p) for p in _fashion_dirs(root))
    return DatasetNotFoundError(
        f"Fashion-MNIST not found ({why}). Searched:\n  {searched}\n"
        "Provide it in one of three ways:\n"
        "  1. set SURVEY_DATA_DIR and put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz in $SURVEY_DATA_DIR/fashion-mnist/;\n"
        "  2. sudo apt-get install dataset-fashion-mnist (installs /usr/share/datasets/fashion-mnist);\n"
        "  3. allow internet access so torchvision.datasets.FashionMNIST(download=True) can fetch it."
    )


DIGITS_TEST_FRACTION = 1 / 3
DIGITS_SPLIT_SEED = 0


def load_digits(split: str) -> ImageDataset:
    r"""scikit-learn's 8×8 digits (1 797 images, 10 classes) as ``uint8``.

    Pixel values :math:`v \in \{0,\dots,16\}` become :math:`\mathrm{round}(255 v / 16)`. The
    split is fixed: ``test`` is :func:`~survey_lib.data.protocols.train_val_split` with
    ``val_fraction=1/3`` and ``seed=0`` (per class, a third rounded half-up), ``train`` the rest:
    1 198 train / 599 test images.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    values = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_val_split(
        labels, DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED, num_classes=10
    )
    idx = train_idx if split == "train" else test_idx
    images = torch.from_numpy(values[idx]).unsqueeze(1)
    class_names = tuple(str(int(c)) for c in bunch.target_names)
    return ImageDataset("digits", split, images, torch.from_numpy(labels[idx]), class_names)


register_dataset(
    "fashion_mnist",
    load_fashion_mnist,
    splits=("train", "test"),
    profile="offline",
    description="Fashion-MNIST (Xiao et al. 2017): 28x28 grayscale clothing, 10 classes",
    num_classes=10,
    split_sizes={"train": 60_000, "test": 10_000},
    image_shape=(1, 28, 28),
    fingerprint=_fashion_fingerprint,
)
register_dataset(
    "digits",
    load_digits,
    splits=("train", "test"),
    profile="offline",
    description="scikit-learn 8x8 handwritten digits (UCI), fixed stratified 2/3-1/3 split",
    num_classes=10,
    split_sizes={"train": 1_198, "test": 599},
    image_shape=(1, 8, 8),
)
