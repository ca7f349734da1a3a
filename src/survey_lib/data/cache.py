"""Where data lives, how source files are checked, and the compact tensor cache.

Loaded datasets are stored once as ``uint8`` image and ``int64`` label tensors with
:func:`survey_lib.io.atomic_torch_save` under ``$SURVEY_CACHE_DIR`` (default
``~/.cache/survey_lib``) and read back with ``torch.load(weights_only=True)``. The cache key
is a SHA-256 of the dataset name, split, options, a fingerprint of the source files and
:data:`CACHE_VERSION`, so a changed source file or option never returns stale tensors.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from survey_lib.data.base import ImageDataset
from survey_lib.data.errors import ChecksumError
from survey_lib.io import atomic_torch_save

CACHE_VERSION = 1
"""Bump when the stored layout or a loader's output changes, to invalidate old cache files."""

_CHUNK = 1 << 20


def data_root() -> Path:
    """Folder for raw dataset files: ``$SURVEY_DATA_DIR`` or ``~/.cache/survey_lib/data``."""
    env = os.environ.get("SURVEY_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "survey_lib" / "data"


def cache_root() -> Path:
    """Folder for cached tensors: ``$SURVEY_CACHE_DIR`` or ``~/.cache/survey_lib``."""
    env = os.environ.get("SURVEY_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "survey_lib"


def file_md5(path: str | Path, *, decompress: bool = False) -> str:
    """MD5 of a file's bytes, or of its gunzipped content when ``decompress`` is true."""
    digest = hashlib.md5(usedforsecurity=False)
    opener = gzip.open if decompress else open
    with opener(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(
    path: str | Path, expected: str, *, decompress: bool = False, hint: str = ""
) -> None:
    """Raise :class:`ChecksumError` (naming ``path`` and ``expected``) unless the MD5 matches.

    A truncated gzip stream is reported the same way as a wrong hash.
    """
    try:
        actual = file_md5(path, decompress=decompress)
    except (EOFError, OSError, gzip.BadGzipFile) as exc:
        actual = f"<unreadable: {exc}>"
    if actual != expected:
        raise ChecksumError(path, expected, actual, hint)


#: In-process memo of file MD5s keyed by (path, size, mtime): an unchanged file is hashed once
#: per process, so repeated loads (one per run of a grid) stay cheap.
_MD5_MEMO: dict[tuple[str, int, int], str] = {}


def _memo_md5(path: str | Path) -> str:
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _MD5_MEMO:
        _MD5_MEMO[key] = file_md5(path)
    return _MD5_MEMO[key]


def fingerprint_files(paths: Iterable[str | Path]) -> str:
    """Content fingerprint (MD5 of each file, in order) of a short list of files."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).name.encode())
        digest.update(_memo_md5(path).encode())
    return digest.hexdigest()[:16]


def fingerprint_tree(folder: str | Path) -> str:
    """Cheap fingerprint of a folder tree: relative path, size and mtime of every file.

    Used for image-folder datasets with up to ~10^5 files, where hashing every byte on each load
    would cost more than decoding from the cache saves.
    """
    folder = Path(folder)
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            stat = path.stat()
            rel = path.relative_to(folder).as_posix()
            digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def cache_key(name: str, split: str, options: Mapping[str, Any], fingerprint: str) -> str:
    """Hex key identifying one (dataset, split, options, source) combination."""
    payload = json.dumps(
        {
            "v": CACHE_VERSION,
            "name": name,
            "split": split,
            "options": dict(options),
            "source": fingerprint,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def cache_path(name: str, split: str, key: str) -> Path:
    """File holding the cached tensors of ``name``/``split`` for ``key``."""
    safe_split = "".join(c if c.isalnum() or c in "-_" else "_" for c in split)
    return cache_root() / "datasets" / name / f"{safe_split}-{key}.pt"


def load_cached(name: str, split: str, key: str) -> ImageDataset | None:
    """The cached dataset for ``key``, or ``None`` when absent or unreadable."""
    path = cache_path(name, split, key)
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        return ImageDataset(
            blob["name"], blob["split"], blob["images"], blob["labels"], tuple(blob["class_names"])
        )
    except Exception:  # a damaged cache file is rebuilt from the source, never trusted
        return None


def save_cached(dataset: ImageDataset, key: str) -> Path:
    """Store ``dataset`` under ``key`` atomically and return the file."""
    blob = {
        "name": dataset.name,
        "split": dataset.split,
        "images": dataset.images.contiguous(),
        "labels": dataset.labels.contiguous(),
        "class_names": list(dataset.class_names),
    }
    return atomic_torch_save(cache_path(dataset.name, dataset.split, key), blob)
