"""The training engine: whole data sets on the device, batch-wise augmentation, SGD.

One run minimises the (optionally label-smoothed) cross-entropy plus an optional penalty,

.. math::
    \\min_\\theta\\; \\frac1B \\sum_{i\\in\\mathcal B} \\ell\\big(h_\\theta(x_i), y_i\\big)
    + \\Omega(\\theta; \\mathcal B) + \\frac{\\lambda}{2}\\lVert\\theta_{\\mathrm{decay}}\\rVert^2,

with SGD and (Nesterov) momentum (Sutskever et al., "On the importance of initialization and
momentum in deep learning", ICML 2013, https://proceedings.mlr.press/v28/sutskever13.html).
:math:`\\Omega` is the ``penalty`` hook (e.g. L2-SP, DELTA, BSS); :math:`\\lambda` is
``weight_decay`` and by default skips biases and normalisation weights.

Design (after Keller Jordan's airbench, https://github.com/KellerJordan/cifar10-airbench):
the uint8 images are moved to the device once; each step gathers a batch by index, augments it
with tensor ops and normalises it there. Losses and accuracies are accumulated on the device,
so the hot loop does not synchronise (on CUDA the non-finite check reads the device every
``_CHECK_EVERY`` steps; on CPU reading is free and it checks every step).

Frozen units (``config.frozen_units = n``) get no gradient and are always kept in eval mode,
in every code path: batch-norm layers use their running statistics and dropout is off, so a
frozen unit is a fixed function. When nothing random happens before them (``augment="none"``)
and the model is sequential, their outputs are computed once for the whole data set
(``cache_frozen``) and training runs units ``n..`` on the cache; this is the same computation
as the slow path (see ``tests/train/test_engine.py`` for the equivalence test). A model that
keeps dropout on after frozen units places it outside them (``AlexNetSmall(frozen_dropout=True)``,
as in Yosinski et al. 2014); such a run must not use the cache.

Reproducibility: shuffling and augmentation draw from ``torch.Generator`` objects seeded from
``config.seed``; dropout draws from the global generator, which ``fit`` forks and seeds with
``config.seed`` and restores afterwards. Model *creation* is not seeded here: seed it with
:func:`survey_lib.train.seed_everything` before ``create_model``. On CPU two fits with the same
seed, config and initial weights give bitwise-identical weights and history (except the
``seconds`` column).

Per-epoch evaluation on more sets (opt-in, ``fit(..., eval_sets={"test": data})``): after
every ``eval_every``-th epoch and after the last one, each set is evaluated in eval mode with the
whole model and its loss and accuracy land in the history as ``<name>_loss`` and
``<name>_acc`` (NaN at the epochs skipped). Evaluation draws no random numbers, so the
weights a run ends with are those it ends with without ``eval_sets``; without them the history
has exactly the columns listed in :class:`FitResult`. This is what metrics over a run's epochs
need (the best epoch's test accuracy of the TLlib benchmark, the mean of the ten best
evaluations of Yosinski et al. 2014: :mod:`survey_lib.experiments.epoch_metrics`).

Precision: bf16 autocast on CUDA by default and on CPUs with native bf16 when
``config.amp_bf16`` is true (:mod:`survey_lib.train.precision`); batch norm keeps fp32
statistics and the loss is computed on fp32 logits in both cases. ``FitResult.precision``
records what was used.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from survey_lib.data.base import ImageDataset
from survey_lib.train.augment import augment_batch
from survey_lib.train.config import TrainConfig
from survey_lib.train.context import StepContext
from survey_lib.train.evaluate import autocast, eval_logits, eval_metrics, normalizer, to_input
from survey_lib.train.optim import num_units, param_groups
from survey_lib.train.precision import note_precision, resolve_precision
from survey_lib.train.schedule import lr_factor

#: steps between reads of the on-device non-finite flag on CUDA.
_CHECK_EVERY = 32

Penalty = Callable[[StepContext], torch.Tensor]
FeatureHook = Callable[[StepContext], Any]


@dataclass
class FitResult:
    """Outcome of :func:`fit`.

    Attributes:
        status: ``"ok"`` or ``"failed"`` (non-finite loss).
        history: one row per completed epoch: ``epoch, train_loss, train_penalty, train_acc,
            val_loss, val_acc, lr, seconds`` (``train_loss`` is the cross-entropy averaged over
            the epoch's augmented batches; ``lr`` the base lr at the epoch's last step;
            ``seconds`` the epoch's training time, evaluation excluded), then
            ``<name>_loss, <name>_acc`` for each of ``fit``'s ``eval_sets`` (only when given).
        final_val: ``{"loss", "accuracy"}`` on the validation set after the last epoch
            (``None`` without a validation set or when the run failed).
        train_seconds: training time including frozen-feature caching, evaluation excluded.
        images_per_second: training images processed per ``train_seconds``.
        steps: optimisation steps taken.
        failure: ``{"step", "epoch", "value"}`` of the first non-finite loss, else ``None``.
        cached_frozen: whether frozen units were computed once (the fast path).
        cache_seconds: time spent computing the frozen-unit cache.
        config: the resolved :class:`TrainConfig` as a plain dict (for run records).
        precision: ``"bf16"`` or ``"fp32"``, what training and evaluation computed in (see
            :mod:`survey_lib.train.precision`).
        batched_runs: how many runs shared the computation (1 for :func:`fit`, ``K`` for
            runs trained together by :func:`survey_lib.train.batched.fit_many`).
    """

    status: str
    history: pd.DataFrame
    final_val: dict[str, float] | None
    train_seconds: float
    images_per_second: float
    steps: int
    failure: dict[str, Any] | None = None
    cached_frozen: bool = False
    cache_seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"
    batched_runs: int = 1

    def record_info(self) -> dict[str, Any]:
        """JSON-ready speed and precision facts for a run record (``RunOutput.info``).

        ``train_seconds`` and ``images_per_second`` of a batched run are those of the whole
        batch's computation (every run of a batch reports the same wall time) divided as
        described in :func:`survey_lib.train.batched.fit_many`.
        """
        return {
            "precision": self.precision,
            "train_seconds": float(self.train_seconds),
            "images_per_second": float(self.images_per_second),
            "steps": int(self.steps),
            "cached_frozen": bool(self.cached_frozen),
            "batched_runs": int(self.batched_runs),
        }


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (use before creating a model)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _check_model(model: nn.Module, config: TrainConfig) -> int:
    for name in ("forward_features", "forward_head"):
        if not hasattr(model, name):
            raise TypeError(f"fit needs a TransferModel (with {name}), got {type(model).__name__}")
    n_units = num_units(model)
    if (config.frozen_units or config.lr_multipliers) and n_units == 0:
        raise ValueError("frozen_units / lr_multipliers need a TransferModel with units()")
    if config.frozen_units >= max(n_units, 1):
        raise ValueError(
            f"frozen_units must be < the number of units ({n_units}, the head included), "
            f"got {config.frozen_units}"
        )
    if config.lr_multipliers is not None and len(config.lr_multipliers) != n_units:
        raise ValueError(
            f"lr_multipliers needs one value per unit ({n_units}: "
            f"{list(model.unit_names)}), got {len(config.lr_multipliers)}"
        )
    return n_units


def _set_modes(model: nn.Module, frozen: int) -> None:
    model.train()
    for _, module in model.units()[:frozen] if frozen else ():
        module.eval()


@torch.no_grad()
def _cache_frozen(
    model: nn.Module, images: torch.Tensor, frozen: int, batch_size: int, prep: Callable, amp: bool
) -> torch.Tensor:
    device = images.device
    with autocast(device, amp):
        chunks = [
            model.forward_units(prep(images[i : i + batch_size]), 0, frozen)
            for i in range(0, images.shape[0], batch_size)
        ]
    return torch.cat(chunks)


def _progress_bar(total: int, progress: bool, desc: str) -> tqdm:
    # Passing disable=False explicitly would override TQDM_DISABLE, so only pass True.
    off = not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    return tqdm(total=total, desc=desc, leave=False, **({"disable": True} if off else {}))


def fit(
    model: nn.Module,
    train: ImageDataset,
    val: ImageDataset | None,
    config: TrainConfig,
    *,
    penalty: Penalty | None = None,
    feature_hook: FeatureHook | None = None,
    progress: bool = True,
    eval_sets: Mapping[str, ImageDataset] | None = None,
    eval_every: int = 1,
) -> FitResult:
    """Train ``model`` in place on ``train`` and report per-epoch metrics.

    Args:
        model: a :class:`~survey_lib.models.base.TransferModel`; moved to ``config.device``
            and left there, in eval mode, with its ``requires_grad`` flags restored.
        train: training images (uint8) and labels.
        val: optional validation set, evaluated after every epoch.
        config: the run's :class:`TrainConfig`.
        penalty: ``penalty(ctx) -> scalar tensor`` added to the loss at every step.
        feature_hook: ``feature_hook(ctx)`` called at every step after the forward pass.
        progress: show a tqdm bar (also silenced by ``TQDM_DISABLE=1``).
        eval_sets: opt-in per-epoch evaluation: ``{name: dataset}``, each evaluated after every
            ``eval_every``-th epoch and after the last (history columns ``<name>_loss``,
            ``<name>_acc``); names are identifiers other than ``train`` and ``val``.
        eval_every: epochs between evaluations of ``eval_sets`` (>= 1).

    Returns:
        A :class:`FitResult`; ``status == "failed"`` if the loss became non-finite (the model
        then holds the weights before the failing step on CPU, and up to ``_CHECK_EVERY``
        steps later on CUDA; a runner turns this into ``RunFailed(result.failure)``).
    """
    n_units = _check_model(model, config)
    device = torch.device(config.device)
    cuda = device.type == "cuda"
    precision = resolve_precision(device, config.amp_bf16)
    note_precision(precision)
    amp, chl = precision == "bf16", config.channels_last
    n = len(train)
    bs = config.batch_size
    steps_per_epoch = n // bs if config.drop_last else math.ceil(n / bs)
    if steps_per_epoch == 0:
        raise ValueError(f"no training steps: {n} examples, batch_size={bs}, drop_last=True")
    if val is not None and len(val) == 0:
        raise ValueError("val has no examples; pass val=None to skip validation")
    if val is not None and val.images.shape[1:] != train.images.shape[1:]:
        raise ValueError(f"val images {val.image_shape} differ from train {train.image_shape}")
    extra = _check_eval_sets(eval_sets, eval_every, train)
    model.to(device)
    if chl:
        model.to(memory_format=torch.channels_last)
    scale, shift = normalizer(config.mean, config.std, train.images.shape[1], device)

    def prep(raw: torch.Tensor) -> torch.Tensor:
        return to_input(raw, scale, shift, chl)

    frozen = config.frozen_units
    use_cache = (
        frozen > 0
        and config.cache_frozen
        and config.augment == "none"
        and getattr(model, "sequential", False)
    )
    last = n_units - 1
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for _, module in model.units()[:frozen] if frozen else ():
            module.requires_grad_(False)
        optimizer = torch.optim.SGD(
            param_groups(model, config),
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
        )
        fork_devices = []
        if cuda:
            fork_devices = [
                device.index if device.index is not None else torch.cuda.current_device()
            ]
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(config.seed)
            result = _train_loop(
                model, train, val, config, optimizer, device, prep, amp, use_cache,
                frozen, last, steps_per_epoch, penalty, feature_hook, progress,
                (extra, int(eval_every)),
            )  # fmt: skip
        result.precision = precision
        return result
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.eval()


def _check_eval_sets(
    eval_sets: Mapping[str, ImageDataset] | None, eval_every: int, train: ImageDataset
) -> dict[str, ImageDataset]:
    """``eval_sets`` as a dict, checked: identifier names (not ``train``/``val``), non-empty
    sets with the training images' shape, ``eval_every`` an int >= 1."""
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 1:
        raise ValueError(f"eval_every must be an int >= 1, got {eval_every!r}")
    out = dict(eval_sets or {})
    for name, data in out.items():
        if not isinstance(name, str) or not name.isidentifier() or name in ("train", "val"):
            raise ValueError(
                f"eval_sets name {name!r}: valid names are identifiers other than 'train' and "
                "'val' (history columns <name>_loss, <name>_acc)"
            )
        if len(data) == 0:
            raise ValueError(f"eval_sets[{name!r}] has no examples")
        if data.images.shape[1:] != train.images.shape[1:]:
            raise ValueError(
                f"eval_sets[{name!r}] images {data.image_shape} differ from train "
                f"{train.image_shape}"
            )
    return out


def _reads_are_free(device: torch.device) -> bool:
    """Whether reading a scalar back costs no pipeline stall (true on CPU, not on CUDA)."""
    return device.type == "cpu"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_loop(
    model, train, val, config, optimizer, device, prep, amp, use_cache,
    frozen, last, steps_per_epoch, penalty, feature_hook, progress, evals=({}, 1),
) -> FitResult:  # fmt: skip
    seeds = np.random.SeedSequence(config.seed).generate_state(2)
    g_order = torch.Generator(device=device).manual_seed(int(seeds[0]))
    g_aug = torch.Generator(device=device).manual_seed(int(seeds[1]))
    images, labels = train.images.to(device), train.labels.to(device)
    n, bs = len(train), config.batch_size
    total_steps = config.epochs * steps_per_epoch
    base_lrs = [g["lr"] for g in optimizer.param_groups]

    cache_seconds, train_h, val_h = 0.0, None, None
    if use_cache:
        t0 = time.perf_counter()
        _set_modes(model, frozen)
        train_h = _cache_frozen(model, images, frozen, config.eval_batch_size, prep, amp)
        if val is not None:
            val_h = _cache_frozen(
                model, val.images.to(device), frozen, config.eval_batch_size, prep, amp
            )
        _sync(device)
        cache_seconds = time.perf_counter() - t0
    if val is not None:
        val_source = val_h if use_cache else val.images.to(device)
        val_labels = val.labels.to(device)

        def val_forward(batch: torch.Tensor) -> torch.Tensor:
            if use_cache:
                return model.forward_head(model.forward_units(batch, frozen, last))
            return model(prep(batch))

    eval_sets, eval_every = evals
    extra = {
        name: (data.images.to(device), data.labels.to(device)) for name, data in eval_sets.items()
    }
    rows: list[dict[str, float]] = []
    failure: dict[str, Any] | None = None
    step, train_seconds, images_done = 0, cache_seconds, 0
    reads_free = _reads_are_free(device)
    bad_step = torch.full((), -1, dtype=torch.int64, device=device)
    bad_value = torch.zeros((), device=device)
    bar = _progress_bar(total_steps, progress, desc=f"fit seed={config.seed}")
    for epoch in range(config.epochs):
        _set_modes(model, frozen)
        _sync(device)
        t0 = time.perf_counter()
        order = torch.randperm(n, device=device, generator=g_order)
        loss_sum = torch.zeros((), device=device)
        pen_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        factor = 1.0
        for i in range(steps_per_epoch):
            idx = order[i * bs : (i + 1) * bs]
            factor = lr_factor(step, config, total_steps, steps_per_epoch)
            for group, base in zip(optimizer.param_groups, base_lrs):
                group["lr"] = base * factor
            yb = labels[idx]
            with autocast(device, amp):
                if use_cache:
                    inputs = None
                    feats = model.forward_units(train_h[idx], frozen, last)
                else:
                    raw = augment_batch(
                        images[idx], config.augment, padding=config.crop_padding, generator=g_aug
                    )
                    inputs = prep(raw)
                    feats = model.forward_features(inputs)
                logits = model.forward_head(feats)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=config.label_smoothing)
            total = loss
            if penalty is not None or feature_hook is not None:
                ctx = StepContext(model, inputs, feats, logits, yb, step, epoch)
                if feature_hook is not None:
                    feature_hook(ctx)
                if penalty is not None:
                    pen = penalty(ctx).float()
                    total = loss + pen
                    pen_sum += pen.detach() * yb.numel()
            if reads_free:
                value = float(total.detach())
                if not math.isfinite(value):
                    failure = {"step": step, "epoch": epoch, "value": value}
                    break
            else:
                bad = ~torch.isfinite(total.detach()) & (bad_step < 0)
                bad_step = torch.where(bad, step, bad_step)
                bad_value = torch.where(bad, total.detach(), bad_value)
                if (step + 1) % _CHECK_EVERY == 0 and int(bad_step) >= 0:
                    failure = _failure(bad_step, bad_value, steps_per_epoch)
                    break
            optimizer.zero_grad(set_to_none=True)
            total.backward()
            optimizer.step()
            loss_sum += loss.detach() * yb.numel()
            correct += (logits.detach().argmax(1) == yb).sum()
            seen += yb.numel()
            images_done += yb.numel()
            step += 1
            bar.update(1)
        if failure is None and not reads_free and int(bad_step) >= 0:
            failure = _failure(bad_step, bad_value, steps_per_epoch)
        _sync(device)
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        if failure is not None:
            break
        row = {
            "epoch": epoch,
            "train_loss": float(loss_sum) / seen,
            "train_penalty": float(pen_sum) / seen,
            "train_acc": float(correct) / seen,
            "val_loss": math.nan,
            "val_acc": math.nan,
            "lr": config.lr * factor,
            "seconds": seconds,
        }
        if val is not None:
            model.eval()
            metrics = eval_metrics(
                eval_logits(model, val_source, val_forward, config.eval_batch_size, amp),
                val_labels,
            )
            row["val_loss"], row["val_acc"] = metrics["loss"], metrics["accuracy"]
        if extra:
            due = (epoch + 1) % eval_every == 0 or epoch == config.epochs - 1
            if due:
                model.eval()
            for name, (ex_images, ex_labels) in extra.items():
                metrics = {"loss": math.nan, "accuracy": math.nan}
                if due:
                    metrics = eval_metrics(
                        eval_logits(model, ex_images, lambda b: model(prep(b)),
                                    config.eval_batch_size, amp),
                        ex_labels,
                    )  # fmt: skip
                row[f"{name}_loss"], row[f"{name}_acc"] = metrics["loss"], metrics["accuracy"]
        rows.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
    bar.close()
    columns = _HISTORY_COLUMNS + [f"{n}_{k}" for n in extra for k in ("loss", "acc")]
    history = pd.DataFrame(rows, columns=columns)
    final_val = None
    if failure is None and val is not None:
        final_val = {"loss": rows[-1]["val_loss"], "accuracy": rows[-1]["val_acc"]}
    return FitResult(
        status="failed" if failure else "ok",
        history=history,
        final_val=final_val,
        train_seconds=train_seconds,
        images_per_second=images_done / train_seconds if train_seconds > 0 else math.nan,
        steps=step,
        failure=failure,
        cached_frozen=use_cache,
        cache_seconds=cache_seconds,
        config=config.to_dict(),
    )


_HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "train_penalty",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "seconds",
]


def _failure(bad_step: torch.Tensor, bad_value: torch.Tensor, steps_per_epoch: int) -> dict:
    step = int(bad_step)
    return {"step": step, "epoch": step // steps_per_epoch, "value": float(bad_value)}
