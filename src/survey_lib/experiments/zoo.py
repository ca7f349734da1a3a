"""A zoo of source models for ranking studies: specification, cached training, features.

A zoo entry is a mapping written in a notebook's protocol. Its ``kind`` says how the model is
obtained:

* ``"trained"`` — ``model`` (a registered name, with ``model_kwargs``) trained from a seeded
  random initialisation on ``dataset`` (``options``, ``per_class`` cap, train split) for
  ``epochs`` with the protocol's shared source training settings; cached in the checkpoint
  folder with :func:`survey_lib.experiments.common.cached_model`, keyed by everything that
  defines it.
* ``"random"`` — the same architecture left at its seeded random initialisation (a control:
  a transferability measure should rank it last), with a head over the classes of ``dataset``
  so that probability-based measures (NCE, LEEP) are defined for it.
* ``"pretrained"`` — a timm backbone with given weights (``weights``: ``"pretrained"`` for the
  tag's own ImageNet weights, or a local file), used as it is; ``source_top1`` records the
  ImageNet top-1 accuracy timm publishes for the tag (the paper profile).

Every entry also has ``name`` (unique in the zoo) and may give ``channels`` (default 1).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from survey_lib.data import ImageDataset
from survey_lib.experiments.common import (
    cached_model,
    fit_or_fail,
    load_split,
    new_model,
    test_accuracy,
    train_config,
)
from survey_lib.models import TransferModel, create_model, dataset_stats
from survey_lib.models.features import normalize

KINDS = ("trained", "random", "pretrained")
Stats = tuple[tuple[float, ...], tuple[float, ...]]


def check_zoo(zoo: Sequence[Mapping[str, Any]]) -> None:
    """Raise ``ValueError`` naming the first bad entry (missing key, bad kind, duplicate)."""
    if not zoo:
        raise ValueError("the zoo must list at least two models")
    seen: set[str] = set()
    for entry in zoo:
        kind = entry.get("kind")
        if kind not in KINDS:
            raise ValueError(f"zoo entry {entry.get('name')!r}: kind must be one of {KINDS}, "
                             f"got {kind!r}")  # fmt: skip
        need = {"name", "model"} | ({"dataset", "epochs"} if kind == "trained" else set())
        need |= {"dataset"} if kind == "random" else set()
        missing = sorted(need - set(entry))
        if missing:
            raise ValueError(f"zoo entry {entry.get('name')!r} ({kind}) lacks {missing}")
        if entry["name"] in seen:
            raise ValueError(f"zoo entry name {entry['name']!r} appears twice")
        seen.add(entry["name"])
    if len(seen) < 2:
        raise ValueError("the zoo must list at least two models")


def _source_train(entry: Mapping[str, Any], size: int) -> ImageDataset:
    return load_split(
        entry["dataset"],
        "train",
        size=size,
        channels=int(entry.get("channels", 1)),
        per_class=entry.get("per_class"),
        options=dict(entry.get("options", {})),
    )


def zoo_model(
    entry: Mapping[str, Any],
    *,
    size: int,
    train: Mapping[str, Any],
    checkpoint_dir: str | Path,
    seed: int = 0,
) -> tuple[TransferModel, Stats]:
    """The zoo entry's model (trained and cached, random, or pretrained) and the input
    normalisation it expects (the statistics of its source training data; for pretrained
    weights, their config's)."""
    kind = entry["kind"]
    channels = int(entry.get("channels", 1))
    kwargs = dict(entry.get("model_kwargs", {}))
    if kind == "pretrained":
        model = create_model(
            entry["model"],
            num_classes=1000,
            in_chans=channels,
            weights=entry.get("weights", "pretrained"),
        )
        cfg = model.pretrained_cfg or {}
        if "mean" not in cfg or "std" not in cfg:
            raise ValueError(f"{entry['model']} has no mean/std in its pretrained config")
        return model, (tuple(cfg["mean"]), tuple(cfg["std"]))
    data = _source_train(entry, size)
    stats = dataset_stats(data)
    if kind == "random":
        return new_model(entry["model"], data.num_classes, channels, seed, **kwargs), stats
    config = train_config({**dict(train), "epochs": int(entry["epochs"])}, seed, stats)
    key = {
        "what": "zoo-source",
        "model": entry["model"],
        "model_kwargs": kwargs,
        "dataset": entry["dataset"],
        "options": dict(entry.get("options", {})),
        "per_class": entry.get("per_class"),
        "channels": channels,
        "epochs": int(entry["epochs"]),
        "size": int(size),
        "train": dict(train),
        "seed": int(seed),
    }
    model = cached_model(
        checkpoint_dir,
        key,
        lambda: new_model(entry["model"], data.num_classes, channels, seed, **kwargs),
        lambda m: fit_or_fail(m, data, None, config),
    )
    return model, stats


def source_accuracy(
    entry: Mapping[str, Any],
    *,
    size: int,
    train: Mapping[str, Any],
    checkpoint_dir: str | Path,
    seed: int = 0,
) -> float:
    """Held-out accuracy on the entry's own source task (test split of ``dataset``); for
    pretrained weights the published ImageNet top-1 (``source_top1``, as a fraction)."""
    if entry["kind"] == "pretrained":
        return float(entry.get("source_top1", float("nan"))) / 100.0
    model, stats = zoo_model(entry, size=size, train=train, checkpoint_dir=checkpoint_dir,
                             seed=seed)  # fmt: skip
    test = load_split(
        entry["dataset"],
        "test",
        size=size,
        channels=int(entry.get("channels", 1)),
        options=dict(entry.get("options", {})),
    )
    config = train_config({**dict(train), "epochs": 1}, 0, stats)
    return test_accuracy(model, test, config)


def feature_units(model: TransferModel) -> list[str]:
    """Names of the units whose (pooled) outputs can serve as features: all but the head."""
    return [name for name, _ in model.units()][:-1]


@torch.no_grad()
def embed(
    model: TransferModel,
    data: ImageDataset,
    *,
    stats: Stats,
    units: int | None = None,
    batch_size: int = 256,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray | None]:
    """Features of every image and, for the full network, its source-class probabilities.

    ``units=None``: the penultimate features (``forward_features``) and
    ``softmax(forward_head)``. ``units=n``: the output of the first ``n`` units (a sequential
    model's ``forward_units(x, 0, n)``), global-average-pooled over space when it is a feature
    map, and no probabilities. Eval mode; the model's mode is restored afterwards.
    """
    if units is not None and not getattr(model, "sequential", False):
        raise ValueError(f"{type(model).__name__} is not sequential: no features of unit {units}")
    was_training = model.training
    model.eval().to(device)
    feats, probs = [], []
    try:
        for start in range(0, len(data), batch_size):
            x = normalize(data.images[start : start + batch_size].to(device), *stats)
            if units is None:
                f = model.forward_features(x)
                probs.append(torch.softmax(model.forward_head(f).double(), dim=1).cpu())
            else:
                f = model.forward_units(x, 0, units)
                if f.ndim == 4:
                    f = f.mean(dim=(2, 3))
            feats.append(f.flatten(1).double().cpu())
    finally:
        model.train(was_training)
    p = torch.cat(probs).numpy() if probs else None
    return torch.cat(feats).numpy(), p


def copy_model(model: TransferModel) -> TransferModel:
    """An independent copy (fine-tuning must not change the cached zoo model)."""
    return copy.deepcopy(model)
