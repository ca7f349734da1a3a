"""The survey's target datasets ("paper" profile), loaded through torchvision.

These are the twelve classification targets of Kornblith, Shlens and Le, "Do Better ImageNet
Models Transfer Better?", CVPR 2019, https://arxiv.org/abs/1805.08974, which the survey's
Tables 2-4 summarise (Birdsnap and VOC 2007 are left out: torchvision has no loader for them).

Every loader returns ``uint8`` RGB images ``(N, 3, S, S)`` with ``S = image_size``:

* CIFAR-10/100 and SVHN default to their native 32×32 (other sizes: bilinear, antialiased);
* GTSRB (crops of 15-250 px around one sign) is resized directly to 32×32;
* all other sets default to 224: resize the shorter side to ``S``, then centre-crop ``S × S``.

Raw files live under ``root`` (default ``$SURVEY_DATA_DIR``, else ``~/.cache/survey_lib/data``)
in torchvision's layout; ``download=True`` (the default wherever torchvision can still download)
fetches missing files, and torchvision checks each archive against its published MD5. Files
with an MD5 in torchvision's tables are checked again here before use, so a corrupt file raises
:class:`ChecksumError` naming the file and the expected hash.

Splits without an official definition are fixed here and seeded (seed 0, see
:mod:`survey_lib.data.protocols`): Caltech-101 takes 30 training images per class and tests on
the rest (Kornblith et al.); SUN397 takes 50 train and 50 test images per class, the sizes of
the official partitions, though not the same images. Oxford-IIIT Pets ``train`` is the
official ``trainval`` list. FGVC-Aircraft has an official ``trainval`` list; the ``trainval``
split of Flowers-102 and DTD (partition 1), which have none, is their ``train`` list followed by
their ``val`` list (20 and 80 images per class: the training sets of Kornblith et al.).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from survey_lib.data.base import ImageDataset
from survey_lib.data.cache import data_root, fingerprint_tree, verify_md5
from survey_lib.data.errors import DatasetNotFoundError
from survey_lib.data.protocols import k_per_class
from survey_lib.data.registry import register_dataset

SPLIT_SEED = 0
_RESIZE_CHUNK = 1024


def _root(root: str | Path | None) -> Path:
    return Path(root).expanduser() if root is not None else data_root()


def _resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bilinear resize of ``uint8`` images, in chunks to bound float memory."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, images.shape[0], _RESIZE_CHUNK):
        chunk = images[start : start + _RESIZE_CHUNK].float()
        chunk = F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True)
        out[start : start + _RESIZE_CHUNK] = chunk.round().clamp(0, 255).to(torch.uint8)
    return out


def _pil_to_uint8(image: Image.Image, size: int, mode: str) -> torch.Tensor:
    """One PIL image as a ``uint8`` (3, size, size) tensor (``mode``: squash or shorter_crop)."""
    image = image.convert("RGB")
    if mode == "squash":
        image = image.resize((size, size), Image.BILINEAR)
    else:
        width, height = image.size
        scale = size / min(width, height)
        new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
        image = image.resize((new_w, new_h), Image.BILINEAR)
        left, top = (new_w - size) // 2, (new_h - size) // 2
        image = image.crop((left, top, left + size, top + size))
    array = np.asarray(image, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def _decode(dataset: Any, indices: np.ndarray, size: int, mode: str) -> torch.Tensor:
    """Decode ``dataset[i]`` for ``i`` in ``indices`` into one preallocated uint8 tensor."""
    out = torch.empty((len(indices), 3, size, size), dtype=torch.uint8)
    for row, index in enumerate(indices):
        image, _ = dataset[int(index)]
        out[row] = _pil_to_uint8(image, size, mode)
    return out


def _targets(dataset: Any) -> np.ndarray:
    """Integer labels of a torchvision dataset without decoding any image."""
    for attr in ("_labels", "targets", "labels", "y"):
        if hasattr(dataset, attr):
            return np.asarray(getattr(dataset, attr), dtype=np.int64)
    return np.asarray([target for _, target in dataset._samples], dtype=np.int64)


@dataclass(frozen=True)
class _Spec:
    name: str
    title: str
    folder: str
    splits: Mapping[str, str]
    num_classes: int
    split_sizes: Mapping[str, int]
    image_size: int
    resize: str
    downloadable: bool
    build: Callable[[Path, str, bool], Any]
    class_names: Callable[[Any], tuple[str, ...]] = lambda ds: tuple(ds.classes)
    select: Callable[[np.ndarray, str, int], np.ndarray] | None = None
    checked_files: Callable[[str], list[tuple[str, str]]] = lambda split: []
    manual: str = ""


def _not_found(
    title: str, where: Path, download: bool, exc: BaseException, manual: str = ""
) -> DatasetNotFoundError:
    if manual:
        how = manual.format(where=where)
    elif download:
        how = (
            f"the torchvision download failed ({exc}); check internet access, or place the "
            f"extracted files under {where} in torchvision's layout"
        )
    else:
        how = (
            f"pass download=True (needs internet; torchvision checks the archive's MD5) or place "
            f"the extracted files under {where} in torchvision's layout ({exc})"
        )
    return DatasetNotFoundError(
        f"{title} not found under {where}: {how}. Set SURVEY_DATA_DIR or root= to use another folder."
    )


def _load(
    spec: _Spec, split: str, image_size: int, root: str | None, download: bool
) -> ImageDataset:
    if image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size}")
    base = _root(root)
    if download and not spec.downloadable:
        raise ValueError(
            f"download=True is not possible: {spec.manual.format(where=base / spec.folder)}"
        )
    for rel, md5 in spec.checked_files(split):
        if (base / rel).is_file():
            verify_md5(base / rel, md5, hint=f"({spec.title}, MD5 from torchvision)")
    try:
        dataset = spec.build(base, spec.splits[split], download)
    except (RuntimeError, OSError, ValueError) as exc:
        raise _not_found(spec.title, base / spec.folder, download, exc, spec.manual) from exc
    labels = _targets(dataset)
    indices = (
        np.arange(len(labels))
        if spec.select is None
        else spec.select(labels, split, len(spec.class_names(dataset)))
    )
    if hasattr(dataset, "data") and isinstance(dataset.data, np.ndarray):  # SVHN: (N, 3, 32, 32)
        images = _resize_uint8(
            torch.from_numpy(np.ascontiguousarray(dataset.data[indices])), image_size
        )
    else:
        images = _decode(dataset, indices, image_size, spec.resize)
    labels_t = torch.from_numpy(labels[indices])
    return ImageDataset(spec.name, split, images, labels_t, spec.class_names(dataset))


def _make_loader(spec: _Spec) -> Callable[..., ImageDataset]:
    def loader(
        split: str,
        *,
        image_size: int = spec.image_size,
        root: str | None = None,
        download: bool = spec.downloadable,
    ) -> ImageDataset:
        return _load(spec, split, image_size, root, download)

    loader.__doc__ = (
        f"Load one split of {spec.title} (see :mod:`survey_lib.data.torchvision_sets`)."
    )
    return loader


def _make_fingerprint(folder: str) -> Callable[..., str | None]:
    def fingerprint(split: str, *, root: str | None = None, **_: Any) -> str | None:
        path = _root(root) / folder
        return fingerprint_tree(path) if path.is_dir() and any(path.iterdir()) else None

    return fingerprint


# --- CIFAR: read the python pickle batches directly, each checked against its MD5 -----------


def _cifar_class(name: str) -> Any:
    from torchvision.datasets import CIFAR10, CIFAR100

    return CIFAR10 if name == "cifar10" else CIFAR100


def _make_cifar_loader(name: str) -> Callable[..., ImageDataset]:
    title = "CIFAR-10" if name == "cifar10" else "CIFAR-100"
    label_key = "labels" if name == "cifar10" else "fine_labels"

    def loader(
        split: str,
        *,
        image_size: int = 32,
        root: str | None = None,
        download: bool = True,
        checksums: Mapping[str, str] | None = None,
    ) -> ImageDataset:
        """Load one split of CIFAR from ``root/<base_folder>`` (torchvision's layout).

        ``checksums`` replaces entries of torchvision's MD5 table ``{file name: md5}``; it exists
        so tests can exercise this reader on small fixture batches in the real format.
        """
        if image_size < 1:
            raise ValueError(f"image_size must be a positive integer, got {image_size}")
        tv = _cifar_class(name)
        base = _root(root)
        folder = base / tv.base_folder
        table = {f: md5 for f, md5 in tv.train_list + tv.test_list}
        table[tv.meta["filename"]] = tv.meta["md5"]
        unknown = sorted(set(checksums or {}) - set(table))
        if unknown:
            raise ValueError(
                f"checksums for unknown {title} files {unknown}; valid: {sorted(table)}"
            )
        table.update(checksums or {})
        batches = [f for f, _ in (tv.train_list if split == "train" else tv.test_list)]
        needed = [*batches, tv.meta["filename"]]
        if any(not (folder / f).is_file() for f in needed):
            if not download:
                missing = FileNotFoundError(f"missing some of {needed}")
                raise _not_found(title, folder, False, missing)
            try:
                tv(str(base), train=split == "train", download=True)
            except (RuntimeError, OSError) as exc:
                raise _not_found(title, folder, True, exc) from exc
        for f in needed:
            verify_md5(folder / f, table[f], hint=f"({title}, MD5 from torchvision)")
        data, labels = [], []
        for f in batches:
            with open(folder / f, "rb") as handle:
                entry = pickle.load(handle, encoding="latin1")  # verified by MD5 just above
            data.append(np.asarray(entry["data"], dtype=np.uint8))
            labels.extend(entry[label_key])
        with open(folder / tv.meta["filename"], "rb") as handle:
            class_names = tuple(pickle.load(handle, encoding="latin1")[tv.meta["key"]])
        images = torch.from_numpy(np.concatenate(data).reshape(-1, 3, 32, 32))
        images = _resize_uint8(images, image_size)
        return ImageDataset(
            name, split, images, torch.tensor(labels, dtype=torch.int64), class_names
        )

    return loader


# --- split rules for datasets without an official split ---------------------------------------


def _caltech_select(labels: np.ndarray, split: str, num_classes: int) -> np.ndarray:
    train = k_per_class(labels, 30, SPLIT_SEED, num_classes=num_classes)
    return train if split == "train" else np.setdiff1d(np.arange(len(labels)), train)


def _sun_select(labels: np.ndarray, split: str, num_classes: int) -> np.ndarray:
    train = k_per_class(labels, 50, SPLIT_SEED, num_classes=num_classes)
    if split == "train":
        return train
    return np.setdiff1d(k_per_class(labels, 100, SPLIT_SEED, num_classes=num_classes), train)


# --- torchvision constructors --------------------------------------------------------------------


class _Joined:
    """Official splits read one after the other as one dataset (``"train+val"``: the train
    list, then the val list), with the labels and class names the loader reads."""

    def __init__(self, parts: list[Any]) -> None:
        names = [tuple(p.classes) for p in parts]
        if any(n != names[0] for n in names):
            raise ValueError("the joined splits name different classes; cannot concatenate")
        self.parts = parts
        self.classes = list(names[0])
        self._labels = [int(y) for p in parts for y in _targets(p)]
        self._starts = np.cumsum([0, *(len(p) for p in parts)])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> Any:
        part = int(np.searchsorted(self._starts, index, side="right")) - 1
        return self.parts[part][index - int(self._starts[part])]


def _tv(cls_name: str, **fixed: Any) -> Callable[[Path, str, bool], Any]:
    def build(base: Path, tv_split: str, download: bool) -> Any:
        import torchvision.datasets as tvd

        if "+" in tv_split:  # e.g. "train+val": official splits concatenated
            return _Joined([build(base, part, download) for part in tv_split.split("+")])
        kwargs = dict(fixed)
        if "split" not in fixed and cls_name not in ("Caltech101", "SUN397"):
            kwargs["split"] = tv_split
        return getattr(tvd, cls_name)(str(base), download=download, **kwargs)

    return build


def _svhn_build(base: Path, tv_split: str, download: bool) -> Any:
    from torchvision.datasets import SVHN

    return SVHN(str(base / "svhn"), split=tv_split, download=download)


def _svhn_files(split: str) -> list[tuple[str, str]]:
    from torchvision.datasets import SVHN

    _, filename, md5 = SVHN.split_list[split]
    return [(f"svhn/{filename}", md5)]


def _flowers_files(split: str) -> list[tuple[str, str]]:
    from torchvision.datasets import Flowers102

    return [
        (f"flowers-102/{f}", md5)
        for key, (f, md5) in Flowers102._file_dict.items()
        if key != "image"
    ]


_CARS_MANUAL = (
    "torchvision cannot download Stanford Cars any more (the original site "
    "ai.stanford.edu/~jkrause/cars is offline). Obtain car_devkit.tgz, cars_train.tgz, "
    "cars_test.tgz and cars_test_annos_withlabels.mat from a mirror and arrange them in "
    "torchvision's StanfordCars layout: {where}/devkit/cars_meta.mat, "
    "{where}/devkit/cars_train_annos.mat, {where}/cars_train/*.jpg, {where}/cars_test/*.jpg and "
    "{where}/cars_test_annos_withlabels.mat"
)
_TT = {"train": "train", "test": "test"}
# Flowers-102 and DTD have no official trainval file: it is their train list, then their val list
_TVTT = {"train": "train", "val": "val", "trainval": "train+val", "test": "test"}

SPECS: tuple[_Spec, ...] = (
    _Spec("svhn", "SVHN (Netzer et al. 2011)", "svhn", _TT, 10, {"train": 73_257, "test": 26_032},
          32, "squash", True, _svhn_build, lambda ds: tuple(str(i) for i in range(10)),
          checked_files=_svhn_files),
    _Spec("flowers102", "Oxford Flowers-102 (Nilsback & Zisserman 2008)", "flowers-102", _TVTT,
          102, {"train": 1_020, "val": 1_020, "trainval": 2_040, "test": 6_149}, 224,
          "shorter_crop", True,
          _tv("Flowers102"), checked_files=_flowers_files),
    _Spec("oxford_pets", "Oxford-IIIT Pets (Parkhi et al. 2012)", "oxford-iiit-pet",
          {"train": "trainval", "test": "test"}, 37, {"train": 3_680, "test": 3_669}, 224,
          "shorter_crop", True, _tv("OxfordIIITPet", target_types="category")),
    _Spec("dtd", "Describable Textures (Cimpoi et al. 2014), partition 1", "dtd", _TVTT, 47,
          {"train": 1_880, "val": 1_880, "trainval": 3_760, "test": 1_880}, 224, "shorter_crop",
          True,
          _tv("DTD", partition=1)),
    _Spec("fgvc_aircraft", "FGVC-Aircraft variants (Maji et al. 2013)", "fgvc-aircraft-2013b",
          {"train": "train", "val": "val", "trainval": "trainval", "test": "test"}, 100,
          {"train": 3_334, "val": 3_333, "trainval": 6_667, "test": 3_333}, 224, "shorter_crop",
          True, _tv("FGVCAircraft", annotation_level="variant")),
    _Spec("food101", "Food-101 (Bossard et al. 2014)", "food-101", _TT, 101,
          {"train": 75_750, "test": 25_250}, 224, "shorter_crop", True, _tv("Food101")),
    _Spec("caltech101", "Caltech-101 (Fei-Fei et al. 2004), 30 train images per class",
          "caltech101", _TT, 101, {"train": 3_030, "test": 5_647}, 224, "shorter_crop", True,
          _tv("Caltech101", target_type="category"), lambda ds: tuple(ds.categories),
          select=_caltech_select),
    _Spec("sun397", "SUN397 (Xiao et al. 2010), 50 train / 50 test images per class", "SUN397",
          _TT, 397, {"train": 19_850, "test": 19_850}, 224, "shorter_crop", True, _tv("SUN397"),
          select=_sun_select),
    _Spec("gtsrb", "GTSRB traffic signs (Stallkamp et al. 2012)", "gtsrb", _TT, 43,
          {"train": 26_640, "test": 12_630}, 32, "squash", True, _tv("GTSRB"),
          lambda ds: tuple(f"{i:05d}" for i in range(43))),
    _Spec("stanford_cars", "Stanford Cars (Krause et al. 2013)", "stanford_cars", _TT, 196,
          {"train": 8_144, "test": 8_041}, 224, "shorter_crop", False, _tv("StanfordCars"),
          manual=_CARS_MANUAL),
)  # fmt: skip

for _name, _title, _folder in (
    ("cifar10", "CIFAR-10 (Krizhevsky 2009)", "cifar-10-batches-py"),
    ("cifar100", "CIFAR-100 (Krizhevsky 2009)", "cifar-100-python"),
):
    register_dataset(
        _name,
        _make_cifar_loader(_name),
        splits=("train", "test"),
        profile="paper",
        description=f"{_title}: 32x32 RGB, python pickle batches via torchvision",
        num_classes=10 if _name == "cifar10" else 100,
        split_sizes={"train": 50_000, "test": 10_000},
        image_shape=(3, 32, 32),
        fingerprint=_make_fingerprint(_folder),
    )
for _spec in SPECS:
    register_dataset(
        _spec.name,
        _make_loader(_spec),
        splits=tuple(_spec.splits),
        profile="paper",
        description=_spec.title,
        num_classes=_spec.num_classes,
        split_sizes=_spec.split_sizes,
        image_shape=(3, _spec.image_size, _spec.image_size),
        fingerprint=_make_fingerprint(_spec.folder),
    )
