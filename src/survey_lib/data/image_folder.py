"""Your own images: a torchvision ``ImageFolder`` layout as a registered dataset.

Layout (the one ``torchvision.datasets.ImageFolder`` reads: one folder per class, the class
names sorted to give the label ids)::

    root/<class>/<image>            one pool; a deterministic stratified test split is drawn
    root/train/<class>/<image>      or explicit splits (then ``test/`` must hold the same
    root/test/<class>/<image>       classes)

Images are decoded with Pillow (common formats: PNG, JPEG, BMP, GIF, TIFF, WebP, PPM/PGM),
converted to ``L`` (``channels=1``) or ``RGB`` (``channels=3``), resized to
``image_size``×``image_size`` with Pillow's bilinear filter (antialiased when shrinking) and
stacked into the library's ``uint8`` ``(N, C, H, W)`` tensors. Without explicit splits, the test
split is :func:`~survey_lib.data.protocols.train_val_split` of the whole folder with
``test_fraction`` and ``split_seed`` (per class :math:`\\lfloor f\\,n_c + \\tfrac12\\rfloor`
images, at least one left for training), so it is the same on every machine.

Errors say what was wrong and what is valid: a missing or empty folder, a folder with one
class, unreadable files (all of them named; ``on_error="skip"`` leaves them out with a warning
instead), and folders mixing image modes (e.g. ``L`` and ``RGB``: pass ``mixed_modes="convert"``
to convert them all to ``channels``).

Usage::

    from survey_lib.data import get_dataset
    train = get_dataset("image_folder", "train", root="my_images", image_size=32, channels=3)
    print(train.checksum, data_card("my_images"))
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from survey_lib.data.base import ImageDataset
from survey_lib.data.cache import fingerprint_tree
from survey_lib.data.protocols import train_val_split
from survey_lib.data.registry import register_dataset

NAME = "image_folder"
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
"""File suffixes read as images (case-insensitive); other files are ignored."""
ON_ERROR = ("stop", "skip")
MIXED_MODES = ("error", "convert")
CHANNELS = (1, 3)
SPLITS = ("train", "test")


class ImageFolderError(ValueError):
    """The folder cannot be read as a classification data set (the message says why)."""


def _check_options(
    root: str | Path | None,
    image_size: int,
    channels: int,
    test_fraction: float,
    on_error: str,
    mixed_modes: str,
) -> Path:
    if root is None:
        raise ImageFolderError(
            "image_folder needs root=<folder with one sub-folder per class>, e.g. "
            "get_dataset('image_folder', root='my_images')"
        )
    if not (isinstance(image_size, int) and image_size > 0):
        raise ImageFolderError(f"image_size must be a positive int, got {image_size!r}")
    if channels not in CHANNELS:
        raise ImageFolderError(f"channels must be one of {CHANNELS}, got {channels!r}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise ImageFolderError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    if on_error not in ON_ERROR:
        raise ImageFolderError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if mixed_modes not in MIXED_MODES:
        raise ImageFolderError(f"mixed_modes must be one of {MIXED_MODES}, got {mixed_modes!r}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise ImageFolderError(f"image folder {path} does not exist or is not a directory")
    return path


def _has_explicit_splits(root: Path) -> bool:
    return all((root / s).is_dir() for s in SPLITS)


def scan(folder: str | Path) -> tuple[tuple[str, ...], list[tuple[Path, int]]]:
    """Class names (sorted folder names) and ``(file, label)`` of every image file below.

    Raises:
        ImageFolderError: no class folders, no image files, or a single class.
    """
    folder = Path(folder)
    classes = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not classes:
        raise ImageFolderError(
            f"image folder {folder} is empty: it needs one sub-folder per class, each holding "
            f"images ({', '.join(EXTENSIONS)})"
        )
    files = [
        (path, label)
        for label, name in enumerate(classes)
        for path in sorted((folder / name).rglob("*"))
        if path.is_file() and path.suffix.lower() in EXTENSIONS
    ]
    counts = Counter(label for _, label in files)
    empty = [classes[i] for i in range(len(classes)) if counts[i] == 0]
    if not files:
        raise ImageFolderError(
            f"image folder {folder} holds no image files (looked for {', '.join(EXTENSIONS)} "
            f"in {len(classes)} class folders)"
        )
    if empty:
        raise ImageFolderError(f"class folders without images in {folder}: {empty}")
    if len(classes) < 2:
        raise ImageFolderError(
            f"image folder {folder} has one class ({classes[0]!r}); classification needs at "
            "least two class folders"
        )
    return classes, files


def _decode(
    files: Sequence[tuple[Path, int]],
    *,
    image_size: int,
    channels: int,
    on_error: str,
    mixed_modes: str,
) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    mode = "L" if channels == 1 else "RGB"
    arrays, labels, bad = [], [], []
    modes: dict[str, Path] = {}
    for path, label in files:
        try:
            with Image.open(path) as img:
                img.load()
                # palette and alpha variants are one image kind for the mixed-modes check
                kind = {"P": "RGB", "RGBA": "RGB", "LA": "L", "1": "L", "I;16": "L"}.get(
                    img.mode, img.mode
                )
                modes.setdefault(kind, path)
                img = img.convert(mode).resize(
                    (image_size, image_size), Image.Resampling.BILINEAR, reducing_gap=None
                )
                arrays.append(np.asarray(img, dtype=np.uint8))
                labels.append(label)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            bad.append(f"{path} ({type(exc).__name__}: {exc})")
    if bad and on_error == "stop":
        listed = "\n  ".join(bad)
        raise ImageFolderError(
            f"{len(bad)} unreadable image file(s):\n  {listed}\n"
            "Fix or remove them, or pass on_error='skip' to leave them out."
        )
    if bad:
        warnings.warn(
            f"image_folder skipped {len(bad)} unreadable file(s): " + "; ".join(bad),
            stacklevel=4,
        )
    if len(modes) > 1 and mixed_modes == "error":
        examples = ", ".join(f"{m} (e.g. {p})" for m, p in sorted(modes.items()))
        raise ImageFolderError(
            f"the folder mixes image modes: {examples}. Pass mixed_modes='convert' to convert "
            f"every image to {mode} (channels={channels})."
        )
    if not arrays:
        raise ImageFolderError("no readable images left after skipping unreadable files")
    stacked = np.stack(arrays)
    stacked = stacked[:, None] if channels == 1 else stacked.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(stacked), np.asarray(labels, dtype=np.int64)


def load_image_folder(
    split: str,
    *,
    root: str | None = None,
    image_size: int = 32,
    channels: int = 1,
    test_fraction: float = 0.2,
    split_seed: int = 0,
    on_error: str = "stop",
    mixed_modes: str = "error",
) -> ImageDataset:
    """One split of an ``ImageFolder`` layout as ``uint8`` tensors (module docstring).

    Args:
        split: ``"train"`` or ``"test"``.
        root: the folder (one sub-folder per class, or ``train/`` and ``test/`` holding them).
        image_size: side of the square images returned.
        channels: 1 (greyscale ``L``) or 3 (``RGB``).
        test_fraction: share of each class held out as ``test`` when there are no explicit
            splits.
        split_seed: seed of that held-out draw.
        on_error: ``"stop"`` (raise, naming every unreadable file) or ``"skip"`` (warn).
        mixed_modes: ``"error"`` (raise when greyscale and colour images are mixed) or
            ``"convert"``.
    """
    path = _check_options(root, image_size, channels, test_fraction, on_error, mixed_modes)
    if split not in SPLITS:
        raise ImageFolderError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    opts: dict[str, Any] = {
        "image_size": image_size, "channels": channels, "on_error": on_error,
        "mixed_modes": mixed_modes,
    }  # fmt: skip
    if _has_explicit_splits(path):
        classes, files = scan(path / split)
        other, _ = scan(path / ("test" if split == "train" else "train"))
        if other != classes:
            raise ImageFolderError(
                f"{path}/train and {path}/test hold different classes: {sorted(set(classes) ^ set(other))}"
            )
        images, labels = _decode(files, **opts)
    else:
        classes, files = scan(path)
        images, labels = _decode(files, **opts)
        train_idx, test_idx = train_val_split(
            labels, float(test_fraction), int(split_seed), num_classes=len(classes)
        )
        idx = train_idx if split == "train" else test_idx
        images, labels = images[idx], labels[idx]
    return ImageDataset(NAME, split, torch.from_numpy(images), torch.from_numpy(labels), classes)


def _fingerprint(split: str, *, root: str | None = None, **_: Any) -> str | None:
    if root is None or not Path(root).expanduser().is_dir():
        return None
    return fingerprint_tree(Path(root).expanduser())


def data_card(root: str | Path, **options: Any) -> dict[str, Any]:
    """A data card for the folder, in the schema of ``data_cards/README.md`` (it passes
    :func:`survey_lib.data.cards.validate_card`): classes, split sizes, image size, the tensor
    checksums of both splits and a note of how the split was made."""
    train = load_image_folder("train", root=str(root), **options)
    test = load_image_folder("test", root=str(root), **options)
    explicit = _has_explicit_splits(Path(root).expanduser())
    size = train.image_shape
    counts = torch.bincount(train.labels, minlength=train.num_classes)
    slug = "".join(c if c.isalnum() else "_" for c in Path(root).name.lower()).strip("_")
    if not slug or not slug[0].isalpha():
        slug = f"folder_{slug}"
    fraction = options.get("test_fraction", 0.2)
    seed = options.get("split_seed", 0)
    return {
        "name": f"Image folder {Path(root).name}",
        "slug": slug,
        "role": "target",
        "category": "other",
        "classes": train.num_classes,
        "train_size": len(train),
        "test_size": len(test),
        "image_size": f"{size[2]}x{size[1]}, {'greyscale' if size[0] == 1 else 'RGB'} "
        "(resized by the loader)",
        "licence": "unverified (your own images)",
        "homepage": None,
        "citation_key": None,
        "survey_section": None,
        "loader": NAME,
        "checksums": {"train": train.checksum, "test": test.checksum},
        "split_note": (
            "explicit train/ and test/ folders"
            if explicit
            else f"no split in the folder: a stratified {fraction:g} of each class held out "
            f"as test with seed {seed} (survey_lib.data.protocols.train_val_split)"
        ),
        "notes": (
            f"Generated by survey_lib.data.image_folder.data_card from {Path(root).resolve()}: "
            f"{train.num_classes} classes ({', '.join(train.class_names[:10])}"
            f"{', ...' if train.num_classes > 10 else ''}), {int(counts.min())} to "
            f"{int(counts.max())} training images per class."
        ),
    }


register_dataset(
    NAME,
    load_image_folder,
    splits=SPLITS,
    profile="local",
    description="your own images: a torchvision ImageFolder layout (root=<folder>)",
    fingerprint=_fingerprint,
)
