"""Pieces every reproduction uses: data preparation, training one model, cached checkpoints.

Checkpoints of source models live in a git-ignored ``checkpoints/`` folder beside the results.
Training is bitwise reproducible on a CPU, so a checkpoint missing on a fresh clone is simply
re-trained to the same weights; on a GPU it is re-trained to equivalent ones (bitwise equal
only on the same GPU model and software, see :mod:`survey_lib.gpu`), so every run records the
SHA-256 of the checkpoints it used (:func:`checkpoint_info`).

Devices. :func:`cached_model` always returns its model on the CPU in the contiguous memory
format (where a loaded checkpoint lands), whether it was loaded or just trained;
:func:`fit_or_fail` leaves the model on ``config.device`` (as :func:`survey_lib.train.fit`
does). Code that feeds a model builds its tensors on :func:`model_device` of that model.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from survey_lib import gpu
from survey_lib.data import ImageDataset, get_dataset
from survey_lib.data.protocols import k_per_class
from survey_lib.io import atomic_write_bytes
from survey_lib.models import TransferModel, create_model, dataset_stats
from survey_lib.runner import RunFailed
from survey_lib.train import FitResult, TrainConfig, evaluate, fit


def default_device() -> str:
    """``"cuda"`` when PyTorch sees a CUDA device, else ``"cpu"``: the device runs train on."""
    return "cuda" if torch.cuda.is_available() else "cpu"


model_device = gpu.model_device


def load_split(
    name: str,
    split: str,
    *,
    classes: list[int] | None = None,
    per_class: int | None = None,
    seed: int = 0,
    size: int | None = 32,
    channels: int = 1,
    options: Mapping[str, Any] | None = None,
) -> ImageDataset:
    """One dataset split, restricted to ``classes`` (relabelled 0..), capped at ``per_class``
    examples per class, resized to ``size`` with ``channels`` (``size=None``: native size and
    channels, for callers that subset further first).

    The cap keeps the split balanced: every class gets the same
    ``k = min(per_class, size of the smallest class)`` examples (a nested, seeded subset,
    :func:`~survey_lib.data.protocols.k_per_class`), so one small class lowers every class's
    count. That is what the offline protocols want (equal classes, a chance rate of 1/C);
    a split whose classes are meant to stay unequal, such as Caltech-101's test set in the
    paper profile, is read uncapped (``per_class=None``) or with the Kornblith cell's
    ``k_rule: at_most``."""
    ds = get_dataset(name, split, **dict(options or {}))
    if classes is not None:
        ds = ds.select_classes(classes)
    if per_class is not None:
        counts = torch.bincount(ds.labels, minlength=ds.num_classes)
        k = min(int(per_class), int(counts.min()))
        ds = ds.subset(k_per_class(ds.labels, k, seed, num_classes=ds.num_classes))
    return ds if size is None else ds.resized(size, channels)


def train_config(train: Mapping[str, Any], seed: int, stats: tuple[tuple, tuple]) -> TrainConfig:
    """A :class:`TrainConfig` from a notebook's ``train`` mapping, with seed, device and the
    normalisation of the data the model first saw."""
    mean, std = stats
    return TrainConfig.from_dict(
        {"device": default_device(), **dict(train), "seed": int(seed), "mean": mean, "std": std}
    )


def fit_or_fail(
    model: TransferModel,
    train: ImageDataset,
    val: ImageDataset | None,
    config: TrainConfig,
    **hooks: Any,
) -> FitResult:
    """:func:`survey_lib.train.fit`, raising :class:`RunFailed` when the loss went non-finite
    (so the runner records a failure, never a result). On CUDA it first switches on the
    deterministic settings of :func:`survey_lib.gpu.configure_determinism`. The model is left
    on ``config.device``."""
    gpu.configure_determinism(config.device)
    result = fit(model, train, val, config, progress=False, **hooks)
    if result.status != "ok":
        raise RunFailed(result.failure)
    return result


def test_accuracy(model: TransferModel, test: ImageDataset, config: TrainConfig) -> float:
    """Top-1 accuracy of ``model`` on ``test`` (:func:`test_metrics` ``["test_acc"]``)."""
    return test_metrics(model, test, config)["test_acc"]


def test_metrics(model: TransferModel, test: ImageDataset, config: TrainConfig) -> dict[str, float]:
    """``test_acc`` (top-1) and ``test_acc_mean_per_class`` (Kornblith et al. 2019's mean
    per-class accuracy, :func:`survey_lib.train.evaluate.mean_per_class_accuracy`) of ``model``
    on ``test``, evaluated with the run's normalisation, batch size, device and precision
    (``config.amp_bf16``: a bf16 run is evaluated in bf16, as the engine's own evaluation)."""
    out = evaluate(
        model,
        test,
        mean=config.mean,
        std=config.std,
        batch_size=config.eval_batch_size,
        device=config.device,
        amp_bf16=config.amp_bf16,
    )
    return {"test_acc": float(out["accuracy"]),
            "test_acc_mean_per_class": float(out["mean_per_class_accuracy"])}


def params_key(params: Mapping[str, Any]) -> str:
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


CHECKPOINT_ATTR = "checkpoint_sha256"
"""Attribute :func:`cached_model` sets on the model it returns: ``{file name: SHA-256}``."""


class CorruptCheckpointWarning(UserWarning):
    """A checkpoint could not be read and was moved aside to be retrained."""


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_checkpoint(path: Path, model: TransferModel) -> str | None:
    """Load ``path`` into ``model``; its SHA-256, or ``None`` when it is unreadable (truncated,
    corrupt, or holding another model's weights), after moving it into ``corrupt/`` beside it
    and warning with its name."""
    data = path.read_bytes()
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:  # any unreadable checkpoint is retrained, never trusted
        aside = path.parent / "corrupt" / f"{path.stem}.{time.strftime('%Y%m%dT%H%M%S')}.pt"
        aside.parent.mkdir(parents=True, exist_ok=True)
        path.replace(aside)
        warnings.warn(
            f"checkpoint {path} is unreadable ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else 'no message'}); "
            f"moved it to {aside} and retraining it",
            CorruptCheckpointWarning,
            stacklevel=3,
        )
        return None
    return file_sha256(data)


def cached_model(
    checkpoint_dir: str | Path,
    key: Mapping[str, Any],
    build: Callable[[], TransferModel],
    train: Callable[[TransferModel], None],
) -> TransferModel:
    """Return the model for ``key``: loaded from ``checkpoint_dir`` when present (with
    ``weights_only=True``), otherwise built, trained by ``train`` and saved atomically.

    The model comes back on the CPU, contiguous, in eval mode, whichever way it was made
    (``train`` may leave it on a GPU or channels-last), with the SHA-256 of its checkpoint
    file in ``model.checkpoint_sha256`` (``{file name: digest}``, see :func:`checkpoint_info`).
    A checkpoint that cannot be loaded is moved to ``checkpoint_dir/corrupt/``, a
    :class:`CorruptCheckpointWarning` names it, and the model is retrained.
    """
    path = Path(checkpoint_dir) / f"{params_key(key)}.pt"
    model = build()
    tried = path.exists()
    digest = _load_checkpoint(path, model) if tried else None
    if digest is None:
        if tried:  # a failed load_state_dict may have copied some tensors already
            model = build()
        train(model)
        model.to("cpu").to(memory_format=torch.contiguous_format)
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
        data = buffer.getvalue()
        atomic_write_bytes(path, data)
        digest = file_sha256(data)
    model.eval()
    setattr(model, CHECKPOINT_ATTR, {path.name: digest})
    return model


def checkpoint_info(*models: Any) -> dict[str, Any]:
    """``{"checkpoints": {file name: SHA-256}}`` of the cached models a run used (models
    without a checkpoint, e.g. given timm weights, add nothing): kept in the run record
    (``RunOutput.info``) so a resumed run shows which base network it was paired with."""
    found: dict[str, str] = {}
    for model in models:
        found.update(getattr(model, CHECKPOINT_ATTR, None) or {})
    return {"checkpoints": dict(sorted(found.items()))}


def new_model(
    name: str, num_classes: int, in_chans: int, seed: int, **kwargs: Any
) -> TransferModel:
    """``create_model`` with its random initialisation fixed by ``seed``."""
    torch.manual_seed(int(seed))
    return create_model(name, num_classes=num_classes, in_chans=in_chans, **kwargs)


def source_model(
    source: Mapping[str, Any], checkpoint_dir: str | Path, epochs: int | None = None
) -> tuple[TransferModel, tuple[tuple[float, ...], tuple[float, ...]]]:
    """The pretrained source model of an experiment and the normalisation it expects.

    ``source`` is a notebook's ``source`` mapping. With ``epochs`` (default ``source["epochs"]``)
    > 0 the model ``source["model"]`` is trained on ``source["dataset"]`` (train split) and
    cached; with ``epochs == 0`` the model is a timm backbone whose ``source["weights"]``
    (default ``"pretrained"``: the weight tag's own ImageNet weights, or a local file) are used
    as they are, with the preprocessing of the weights' config (the paper profile).
    """
    epochs = int(source["epochs"] if epochs is None else epochs)
    channels = int(source.get("channels", 1))
    if epochs == 0:
        model = create_model(
            source["model"],
            num_classes=1000,
            in_chans=channels,
            weights=source.get("weights", "pretrained"),
        )
        cfg = model.pretrained_cfg or {}
        if "mean" not in cfg or "std" not in cfg:
            raise ValueError(f"{source['model']} has no mean/std in its pretrained config")
        return model, (tuple(cfg["mean"]), tuple(cfg["std"]))
    opts = dict(source.get("options", {}))
    train = load_split(
        source["dataset"],
        "train",
        size=source["size"],
        channels=channels,
        per_class=source.get("per_class"),
        options=opts,
    )
    stats = dataset_stats(train)
    config = train_config({**source["train"], "epochs": epochs}, source["seed"], stats)
    key = {"what": "source", **dict(source), "epochs": epochs}
    model = cached_model(
        checkpoint_dir,
        key,
        lambda: new_model(source["model"], train.num_classes, channels, source["seed"]),
        lambda m: fit_or_fail(m, train, None, config),
    )
    return model, stats


def source_test_accuracy(
    source: Mapping[str, Any], checkpoint_dir: str | Path, epochs: int | None = None
) -> float:
    """Held-out accuracy of a trained source model on its own task (NaN for given weights,
    whose source task is not available offline)."""
    epochs = int(source["epochs"] if epochs is None else epochs)
    if epochs == 0:
        return float("nan")
    model, stats = source_model(source, checkpoint_dir, epochs)
    test = load_split(
        source["dataset"],
        "test",
        size=source["size"],
        channels=int(source.get("channels", 1)),
        options=dict(source.get("options", {})),
    )
    config = train_config({**source["train"], "epochs": 1}, 0, stats)
    return test_accuracy(model, test, config)
