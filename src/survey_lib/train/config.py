"""Every knob of one training run, validated up front.

The defaults follow the usual CIFAR-style fine-tuning recipe: SGD with Nesterov momentum 0.9,
weight decay :math:`5\\times10^{-4}` not applied to normalisation weights and biases, a
per-step cosine schedule and random-crop (padding 4) plus horizontal-flip augmentation.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SCHEDULES = ("cosine", "step", "constant")
AUGMENTS = ("crop_flip", "crop", "flip", "none", "rrc_flip")


@dataclass(frozen=True)
class TrainConfig:
    """Configuration of :func:`survey_lib.train.fit`.

    Attributes:
        epochs: passes over the training set (> 0).
        lr: base learning rate (> 0); unit ``i`` trains at ``lr * lr_multipliers[i]``.
        batch_size: training mini-batch size.
        momentum: SGD momentum in [0, 1).
        nesterov: Nesterov momentum (needs ``momentum > 0``).
        weight_decay: coupled L2 coefficient of SGD (>= 0).
        wd_skip_norm_bias: no weight decay on 0/1-dimensional parameters (biases, norm scales).
        schedule: ``"cosine"``, ``"step"`` or ``"constant"``, applied per optimisation step.
        step_milestones: for ``"step"``: where the lr is multiplied by ``gamma``; values in
            (0, 1) are fractions of the run, values >= 1 are epochs (do not mix the two).
        gamma: decay factor of the step schedule, in (0, 1].
        warmup_epochs: linear warm-up length in epochs (may be fractional), before the schedule.
        augment: ``"crop_flip"``, ``"crop"``, ``"flip"``, ``"none"`` or ``"rrc_flip"``
            (random-resized crop + flip, Szegedy et al. 2015; batch-wise, on device, see
            :mod:`survey_lib.train.augment`).
        crop_padding: zero padding (pixels) of the random crop (not used by ``"rrc_flip"``).
        mean: per-channel mean of images scaled to [0, 1] (one value broadcasts).
        std: per-channel standard deviation, same convention.
        seed: seeds shuffling, augmentation and dropout (not model creation: see
            :func:`survey_lib.train.seed_everything`).
        device: torch device string, e.g. ``"cpu"`` or ``"cuda:0"``.
        amp_bf16: bfloat16 autocast: ``None`` (default) bf16 on CUDA and fp32 on the CPU;
            ``True`` bf16 on CUDA and on CPUs with native bf16 (AVX-512 BF16 / AMX), fp32 on
            other CPUs; ``False`` fp32 everywhere. Batch-norm statistics, parameters,
            optimiser state and the loss stay fp32. ``FitResult.precision`` records what was
            used (see :mod:`survey_lib.train.precision`).
        channels_last: channels-last (NHWC) memory format for the model and its inputs, on
            CUDA and on the CPU, where oneDNN's NHWC convolutions run our small convnets
            1.3x (training) to 2.5x (inference) faster than NCHW on this 2-core machine.
        frozen_units: the first ``n`` units of the model are frozen (no gradient, eval mode).
        lr_multipliers: one learning-rate multiplier per unit (``None``: all 1).
        eval_batch_size: batch size of evaluation and of frozen-feature caching.
        label_smoothing: cross-entropy label smoothing in [0, 1).
        drop_last: drop the last incomplete training batch of each epoch.
        cache_frozen: compute frozen units once for the whole data set when that is exact
            (sequential model, ``augment == "none"``).
    """

    epochs: int
    lr: float
    batch_size: int = 128
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    wd_skip_norm_bias: bool = True
    schedule: str = "cosine"
    step_milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    augment: str = "crop_flip"
    crop_padding: int = 4
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    seed: int = 0
    device: str = "cpu"
    amp_bf16: bool | None = None
    channels_last: bool = True
    frozen_units: int = 0
    lr_multipliers: tuple[float, ...] | None = field(default=None)
    eval_batch_size: int = 512
    label_smoothing: float = 0.0
    drop_last: bool = False
    cache_frozen: bool = True

    def __post_init__(self) -> None:
        for name in ("step_milestones", "mean", "std", "lr_multipliers"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                if isinstance(value, str) or not hasattr(value, "__iter__"):
                    raise ValueError(f"{name} must be a sequence of numbers, got {value!r}")
                object.__setattr__(self, name, tuple(float(v) for v in value))
        _validate(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a mapping (e.g. a notebook's YAML parameters).

        Raises:
            ValueError: on keys that are not fields (the message lists the valid ones) or on
                missing required fields.
        """
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}; valid keys are {names}")
        missing = [n for n in ("epochs", "lr") if n not in values]
        if missing:
            raise ValueError(f"TrainConfig needs {missing}; got keys {sorted(values)}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-ready values (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _validate(c: TrainConfig) -> None:
    _check(_is_int(c.epochs) and c.epochs > 0, f"epochs must be a positive int, got {c.epochs!r}")
    _check(
        isinstance(c.lr, (int, float)) and math.isfinite(c.lr) and c.lr > 0,
        f"lr must be a finite number > 0, got {c.lr!r}",
    )
    for name in ("batch_size", "eval_batch_size"):
        v = getattr(c, name)
        _check(_is_int(v) and v > 0, f"{name} must be a positive int, got {v!r}")
    _check(0.0 <= c.momentum < 1.0, f"momentum must be in [0, 1), got {c.momentum!r}")
    _check(
        not c.nesterov or c.momentum > 0,
        f"nesterov=True needs momentum > 0, got momentum={c.momentum!r}",
    )
    _check(c.weight_decay >= 0, f"weight_decay must be >= 0, got {c.weight_decay!r}")
    _check(c.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {c.schedule!r}")
    _check(0.0 < c.gamma <= 1.0, f"gamma must be in (0, 1], got {c.gamma!r}")
    ms = c.step_milestones
    _check(
        all(m > 0 for m in ms) and list(ms) == sorted(ms),
        f"step_milestones must be positive and increasing, got {ms!r}",
    )
    _check(
        all(m < 1 for m in ms) or all(m >= 1 for m in ms),
        f"step_milestones must be all fractions in (0, 1) or all epochs >= 1, got {ms!r}",
    )
    _check(
        0.0 <= c.warmup_epochs <= c.epochs,
        f"warmup_epochs must be in [0, epochs={c.epochs}], got {c.warmup_epochs!r}",
    )
    _check(c.augment in AUGMENTS, f"augment must be one of {AUGMENTS}, got {c.augment!r}")
    _check(
        _is_int(c.crop_padding) and c.crop_padding >= 0,
        f"crop_padding must be an int >= 0, got {c.crop_padding!r}",
    )
    _check(
        len(c.mean) >= 1 and len(c.mean) == len(c.std),
        f"mean and std need equal lengths >= 1, got {c.mean!r} and {c.std!r}",
    )
    _check(all(s > 0 for s in c.std), f"std values must be > 0, got {c.std!r}")
    _check(_is_int(c.seed) and c.seed >= 0, f"seed must be an int >= 0, got {c.seed!r}")
    _check(
        isinstance(c.device, str) and c.device != "",
        f"device must be a string such as 'cpu' or 'cuda:0', got {c.device!r}",
    )
    _check(
        c.amp_bf16 is None or isinstance(c.amp_bf16, bool),
        f"amp_bf16 must be null/None, true or false, got {c.amp_bf16!r}",
    )
    _check(
        _is_int(c.frozen_units) and c.frozen_units >= 0,
        f"frozen_units must be an int >= 0, got {c.frozen_units!r}",
    )
    if c.lr_multipliers is not None:
        _check(
            len(c.lr_multipliers) > 0 and all(m >= 0 for m in c.lr_multipliers),
            f"lr_multipliers must be non-negative, one per unit, got {c.lr_multipliers!r}",
        )
    _check(
        0.0 <= c.label_smoothing < 1.0,
        f"label_smoothing must be in [0, 1), got {c.label_smoothing!r}",
    )
