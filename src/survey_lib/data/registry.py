"""One registry for every dataset: ``get_dataset``, ``list_datasets``, ``register_dataset``.

Loaders register themselves when :mod:`survey_lib.data` is imported. A loader is a callable
``loader(split, **options) -> ImageDataset``; an optional ``fingerprint(split, **options)``
returns a short string identifying the source files (or ``None`` when they are absent), which
lets :func:`get_dataset` serve repeated loads from the tensor cache (:mod:`survey_lib.data.cache`).

Every load is recorded with the checksum of what it returned (:func:`tensor_checksum` of the
pixels and labels): :func:`datasets_used` lists the splits loaded since
:func:`reset_datasets_used`, and :func:`used_checksum` folds them into the one string
(``"name/split:checksum;..."``) that :func:`survey_lib.runner.run_grid` stores as each run's
``dataset_checksum``. The subset a run then draws is fixed by its parameters and seed, so the
source splits' checksums and the run record identify the data a run used. A cache kept above
:func:`get_dataset` must call :func:`record_dataset_use` when it serves a split.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from survey_lib.data.base import ImageDataset
from survey_lib.data.cache import cache_key, load_cached, save_cached

PROFILES = ("offline", "paper")
"""``offline``: real data available without network (CI, laptops). ``paper``: the survey's
targets, loaded through torchvision."""

# Options that say where the source lives or how to fetch it, not what is loaded.
_NON_SEMANTIC_OPTIONS = frozenset({"root", "download"})

Loader = Callable[..., ImageDataset]
Fingerprint = Callable[..., "str | None"]


@dataclass(frozen=True)
class DatasetInfo:
    """Registration metadata of one dataset.

    Attributes:
        name: registry name.
        splits: valid ``split`` values, the first being the training split.
        profile: ``"offline"`` or ``"paper"`` (or another registered profile).
        description: one line: what the data is and where it comes from.
        num_classes: number of classes, or ``None`` if not declared.
        split_sizes: number of examples per split with default options, where known.
        image_shape: ``(C, H, W)`` with default options, where known.
        options: default value of every option the loader accepts.
    """

    name: str
    splits: tuple[str, ...]
    profile: str
    description: str
    num_classes: int | None = None
    split_sizes: Mapping[str, int] = field(default_factory=dict)
    image_shape: tuple[int, int, int] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Entry:
    info: DatasetInfo
    loader: Loader
    fingerprint: Fingerprint | None


_REGISTRY: dict[str, _Entry] = {}
#: splits loaded since the last reset: label -> checksum (see :func:`datasets_used`)
_USED: dict[str, str] = {}
#: checksum of a cached split by its cache key (loads from the tensor cache are not re-hashed)
_CHECKSUM_MEMO: dict[str, str] = {}


def record_dataset_use(label: str, checksum: str) -> None:
    """Note that split ``label`` (``"name/split"``, options in braces) with ``checksum`` was
    used."""
    _USED[str(label)] = str(checksum)


def reset_datasets_used() -> None:
    """Forget the splits recorded so far (run_grid calls it before each run)."""
    _USED.clear()


def datasets_used() -> dict[str, str]:
    """The splits loaded since :func:`reset_datasets_used`: ``{label: checksum}``, sorted."""
    return dict(sorted(_USED.items()))


def used_checksum(used: Mapping[str, str] | None = None) -> str | None:
    """``"label:checksum;label:checksum"`` of ``used`` (default: :func:`datasets_used`), or
    ``None`` when nothing was loaded."""
    used = datasets_used() if used is None else used
    return ";".join(f"{label}:{checksum}" for label, checksum in sorted(used.items())) or None


def _label(name: str, split: str, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    changed = {k: v for k, v in sorted(options.items()) if defaults.get(k, object()) != v}
    extra = ",".join(f"{k}={v}" for k, v in changed.items()).replace(" ", "")
    return f"{name}/{split}" + (f"{{{extra}}}" if extra else "")


def register_dataset(
    name: str,
    loader: Loader,
    *,
    splits: Sequence[str],
    profile: str,
    description: str,
    num_classes: int | None = None,
    split_sizes: Mapping[str, int] | None = None,
    image_shape: tuple[int, int, int] | None = None,
    fingerprint: Fingerprint | None = None,
    replace: bool = False,
) -> DatasetInfo:
    """Add a dataset to the registry and return its :class:`DatasetInfo`.

    Args:
        name: registry name (lower case, e.g. ``"fashion_mnist"``).
        loader: ``loader(split, **options) -> ImageDataset``.
        splits: valid split names; the first is the training split.
        profile: e.g. ``"offline"`` or ``"paper"``.
        description: one line for listings.
        num_classes, split_sizes, image_shape: metadata checked by the data cards.
        fingerprint: ``fingerprint(split, **options) -> str | None`` identifying the source
            files; datasets without one are never cached.
        replace: allow re-registering an existing name.
    """
    if not replace and name in _REGISTRY:
        raise ValueError(f"dataset {name!r} is already registered; pass replace=True to override")
    if not splits:
        raise ValueError(f"dataset {name!r}: splits must not be empty")
    options = {
        p.name: p.default
        for p in list(inspect.signature(loader).parameters.values())[1:]
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    info = DatasetInfo(
        name=name,
        splits=tuple(splits),
        profile=profile,
        description=description,
        num_classes=num_classes,
        split_sizes=dict(split_sizes or {}),
        image_shape=None if image_shape is None else tuple(image_shape),
        options=options,
    )
    _REGISTRY[name] = _Entry(info, loader, fingerprint)
    return info


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_datasets(profile: str | None = None) -> list[str]:
    """Sorted registered names, optionally only those of one ``profile``."""
    if profile is None:
        return sorted(_REGISTRY)
    valid = sorted(set(PROFILES) | {e.info.profile for e in _REGISTRY.values()})
    if profile not in valid:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(valid)}")
    return sorted(n for n, e in _REGISTRY.items() if e.info.profile == profile)


def dataset_info(name: str) -> DatasetInfo:
    """Registration metadata of ``name`` (splits, profile, class count, split sizes, shape)."""
    return _entry(name).info


def _accepts_any_option(loader: Loader) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(loader).parameters.values())


def get_dataset(
    name: str, split: str = "train", *, cache: bool = True, **options: Any
) -> ImageDataset:
    """Load one split of a registered dataset as an :class:`ImageDataset`.

    Args:
        name: a name from :func:`list_datasets`.
        split: one of ``dataset_info(name).splits``.
        cache: read from / write to the tensor cache when the dataset has a fingerprint.
        **options: loader options (see ``dataset_info(name).options``), e.g. ``image_size``,
            ``root``, ``download``.

    Returns:
        ``uint8`` images ``(N, C, H, W)``, ``int64`` labels ``(N,)`` and the class names.

    Raises:
        ValueError: unknown name, split or option.
        DatasetNotFoundError: no source of the data is available.
        ChecksumError: a source file does not match its published checksum.
    """
    entry = _entry(name)
    info = entry.info
    if split not in info.splits:
        raise ValueError(
            f"unknown split {split!r} for dataset {name!r}; valid splits: {', '.join(info.splits)}"
        )
    unknown = sorted(set(options) - set(info.options))
    if unknown and not _accepts_any_option(entry.loader):
        raise ValueError(
            f"unknown option(s) {unknown} for dataset {name!r}; valid options: "
            f"{', '.join(sorted(info.options)) or '(none)'}"
        )
    # defaults filled in, so image_size=32 and the default 32 share one cache entry
    semantic = {
        k: v for k, v in {**info.options, **options}.items() if k not in _NON_SEMANTIC_OPTIONS
    }
    label = _label(name, split, semantic, info.options)
    use_cache = cache and entry.fingerprint is not None
    if use_cache:
        source = entry.fingerprint(split, **options)
        if source is not None:
            key = cache_key(name, split, semantic, source)
            cached = load_cached(name, split, key)
            if cached is not None:
                if key not in _CHECKSUM_MEMO:
                    _CHECKSUM_MEMO[key] = cached.checksum
                record_dataset_use(label, _CHECKSUM_MEMO[key])
                return cached
    dataset = entry.loader(split, **options)
    if not isinstance(dataset, ImageDataset):
        raise TypeError(f"loader of {name!r} returned {type(dataset).__name__}, not ImageDataset")
    checksum = dataset.checksum
    if use_cache:  # fingerprint again: a download may have added or replaced source files
        source = entry.fingerprint(split, **options)
        if source is not None:
            key = cache_key(name, split, semantic, source)
            save_cached(dataset, key)
            _CHECKSUM_MEMO[key] = checksum
    record_dataset_use(label, checksum)
    return dataset
