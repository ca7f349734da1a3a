"""Datasets as in-memory ``uint8`` tensors, one registry, and the experimental protocols.

Importing this package registers every loader: :mod:`~survey_lib.data.offline` (Fashion-MNIST,
digits), :mod:`~survey_lib.data.torchvision_sets` (the survey's targets),
:mod:`~survey_lib.data.image_folder` (your own images) and, when present,
:mod:`~survey_lib.data.glyphs`.
"""

from __future__ import annotations

import importlib

from survey_lib.data import image_folder, offline, torchvision_sets
from survey_lib.data.base import ImageDataset, tensor_checksum
from survey_lib.data.errors import ChecksumError, DatasetNotFoundError
from survey_lib.data.registry import (
    PROFILES,
    DatasetInfo,
    dataset_info,
    get_dataset,
    list_datasets,
    register_dataset,
)


def _import_optional(module: str) -> None:
    """Import a loader module that may not exist yet; errors inside it still surface."""
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise


_import_optional("survey_lib.data.glyphs")

__all__ = [
    "PROFILES",
    "ChecksumError",
    "DatasetInfo",
    "DatasetNotFoundError",
    "ImageDataset",
    "dataset_info",
    "get_dataset",
    "list_datasets",
    "image_folder",
    "offline",
    "register_dataset",
    "tensor_checksum",
    "torchvision_sets",
]
