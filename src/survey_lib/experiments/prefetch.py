"""Load every dataset a notebook needs once, before any grid worker starts.

``run_grid(..., workers=N)`` spawns processes that each load their data through
:func:`survey_lib.data.get_dataset`. On a fresh machine the first load of a dataset downloads or
renders it (torchvision archives, the glyph renders) and writes the tensor cache; N workers
starting together would all do so into the same folders at once. :func:`prefetch` does every
such load in the notebook's own process first, so each worker finds the raw files and the
tensor cache in place and only reads them.

What a notebook needs is read from its parameters: every mapping (at any depth, inside lists
too) that has a string ``"dataset"`` names one, with its ``"options"`` (default none) and the
splits ``"train_split"``/``"test_split"`` when given, else those of ``("train", "test")`` the
dataset has. A mapping with ``"epochs": 0`` and a ``"model"`` is a source with given weights
(the paper profile's timm weights), which loads no data, and is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from survey_lib.data import dataset_info, get_dataset

#: Splits assumed when a dataset mapping names none (the experiments' train and test splits).
DEFAULT_SPLITS = ("train", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """One split of one dataset with its loader options."""

    name: str
    split: str
    options: Mapping[str, Any]


def _is_given_weights(item: Mapping[str, Any]) -> bool:
    return "model" in item and "epochs" in item and int(item["epochs"]) == 0


def _freeze(value: Any) -> Any:
    """Options as a hashable value (lists become tuples) for de-duplication."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _walk(item: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(item, Mapping):
        if isinstance(item.get("dataset"), str) and not _is_given_weights(item):
            yield item
        for value in item.values():
            yield from _walk(value)
    elif isinstance(item, list | tuple):
        for value in item:
            yield from _walk(value)


def dataset_specs(*items: Any) -> list[DatasetSpec]:
    """Every distinct (dataset, split, options) named in ``items`` (parameters, grids), in order.

    Raises:
        ValueError: an unknown dataset name, or a named split the dataset does not have.
    """
    seen: dict[tuple[str, str, str], DatasetSpec] = {}
    for mapping in _walk(list(items)):
        name = mapping["dataset"]
        info = dataset_info(name)  # unknown names raise here, listing the valid ones
        named = [mapping[k] for k in ("train_split", "test_split") if k in mapping]
        splits = named or [s for s in DEFAULT_SPLITS if s in info.splits]
        bad = [s for s in named if s not in info.splits]
        if bad:
            raise ValueError(
                f"dataset {name!r} has no split {bad[0]!r}; valid splits: {', '.join(info.splits)}"
            )
        raw_options = mapping.get("options") or {}
        if not isinstance(raw_options, Mapping):
            raise ValueError(f"options of dataset {name!r} must be a mapping, got {raw_options!r}")
        frozen = json.dumps(_freeze(raw_options), default=str)
        for split in splits:
            seen.setdefault((name, split, frozen), DatasetSpec(name, split, dict(raw_options)))
    return list(seen.values())


def prefetch(*items: Any) -> list[DatasetSpec]:
    """Load (download, render, cache) every dataset split named in ``items`` once, here.

    Call it with a notebook's parameters before its ``run_grid`` calls, e.g.
    ``prefetch(source, targets)``; falsy items (an unused ``many_class = {}``) are ignored.
    Returns the specs that were loaded. Errors of the loaders (data not found, a checksum
    mismatch) surface here, before any worker starts.
    """
    specs = dataset_specs(*(item for item in items if item))
    for spec in specs:
        get_dataset(spec.name, spec.split, **dict(spec.options))
    return specs
