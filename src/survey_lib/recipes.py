"""Fine-tuning recipes, and the survey's recommended recipe for each quadrant of its taxonomy.

Plested and Gedeon, "Deep transfer learning for image classification: a survey", 2022,
https://arxiv.org/abs/2205.09904, sections 7.1 (summary of current knowledge) and 7.2
(recommendations for best practice by target size × similarity to the source).

A :class:`Recipe` says how one pretrained network is fine-tuned, relative to a base training
mapping (a notebook's ``train``: epochs, lr, batch size, ...):

* learning rate :math:`\\eta = f_\\eta\\,\\eta_0` (``lr_factor``), momentum, schedule;
* layers: the transferred units fine-tuned or frozen (``frozen``), the top ``reinit_top``
  transferred units re-initialised, the lower half of the transferred units trained at
  ``lower_lr_mult`` times the rate (``lr_multipliers``);
* regularizer: a spec for :func:`survey_lib.regularizers.create_regularizer`
  (``{"regularizer": name, **hparams}``), with the optimiser's weight decay set by
  ``weight_decay`` (0 when the penalty carries the whole regularization).

:func:`fine_tune` applies a recipe; :data:`RECOMMENDED` holds the survey's recipe per quadrant,
each setting with the survey passage it comes from and the notebook claim that tests it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from survey_lib.data.base import ImageDataset
from survey_lib.experiments.common import fit_or_fail, train_config
from survey_lib.models.base import TransferModel
from survey_lib.models.features import normalize
from survey_lib.regularizers import create_regularizer
from survey_lib.train import TrainConfig
from survey_lib.transfer.layers import transfer_units

QUADRANTS = ("small, similar", "large, similar", "small, less similar", "large, less similar")
"""The survey's four cases (section 7.2), ``"<size>, <similarity>"``."""


@dataclass(frozen=True)
class Recipe:
    """How to fine-tune, relative to a base ``train`` mapping (module docstring).

    Attributes:
        lr_factor: the learning rate is ``lr_factor * train["lr"]``.
        momentum: SGD momentum (``None``: the base's).
        schedule: ``"cosine"``, ``"step"`` or ``"constant"`` (``None``: the base's).
        step_milestones: for ``"step"``: fractions of the run where the lr drops by ``gamma``.
        gamma: decay factor of the step schedule.
        frozen: freeze every transferred unit (only the new head trains).
        reinit_top: re-initialise this many of the top transferred units.
        lower_lr_mult: learning-rate multiplier of the lower half of the transferred units
            (``None``: all units at the base rate).
        regularizer: a :func:`~survey_lib.regularizers.create_regularizer` spec, or ``None``.
        weight_decay: the optimiser's weight decay (``None``: the base's).
    """

    lr_factor: float = 1.0
    momentum: float | None = None
    schedule: str | None = None
    step_milestones: tuple[float, ...] | None = None
    gamma: float | None = None
    frozen: bool = False
    reinit_top: int = 0
    lower_lr_mult: float | None = None
    regularizer: Mapping[str, Any] | None = field(default=None)
    weight_decay: float | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> Recipe:
        """A recipe from a mapping (unknown keys raise, naming the valid ones)."""
        values = dict(values or {})
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ValueError(f"unknown recipe keys {unknown}; valid keys: {names}")
        if values.get("step_milestones") is not None:
            values["step_milestones"] = tuple(float(m) for m in values["step_milestones"])
        if values.get("regularizer") is not None and "regularizer" not in values["regularizer"]:
            raise ValueError(
                f"a recipe's regularizer must be {{'regularizer': name, **hparams}}, got "
                f"{values['regularizer']!r}"
            )
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values, only those that differ from the plain default."""
        base = asdict(Recipe())
        out = {k: v for k, v in asdict(self).items() if v != base[k]}
        if out.get("step_milestones") is not None:
            out["step_milestones"] = list(out["step_milestones"])
        if out.get("regularizer") is not None:
            out["regularizer"] = dict(out["regularizer"])
        return out

    def config(
        self, train: Mapping[str, Any], seed: int, stats: tuple, n_units: int
    ) -> TrainConfig:
        """The :class:`TrainConfig` of this recipe on top of ``train``, for a model with
        ``n_units`` units (the last one the head)."""
        values = dict(train)
        values["lr"] = float(train["lr"]) * float(self.lr_factor)
        for key in ("momentum", "schedule", "gamma", "weight_decay"):
            if getattr(self, key) is not None:
                values[key] = getattr(self, key)
        if self.step_milestones is not None:
            values["step_milestones"] = self.step_milestones
        if self.frozen:
            values["frozen_units"] = n_units - 1
        if self.lower_lr_mult is not None:
            lower = (n_units - 1) // 2
            values["lr_multipliers"] = [float(self.lower_lr_mult)] * lower + [1.0] * (
                n_units - lower
            )
        return train_config(values, seed, stats)


def fine_tune(
    pretrained: TransferModel,
    stats: tuple,
    train: ImageDataset,
    base_train: Mapping[str, Any],
    recipe: Recipe,
    seed: int,
) -> tuple[TransferModel, TrainConfig]:
    """Fine-tune a copy of ``pretrained`` on ``train`` by ``recipe`` (the new head and any
    re-initialised units drawn from ``seed``); returns the model and its config.

    Raises:
        RunFailed: the loss went non-finite.
        ValueError: ``reinit_top`` is not below the number of transferred units.
    """
    model = copy.deepcopy(pretrained)
    torch.manual_seed(int(seed))
    model.reset_classifier(train.num_classes)
    n_units = len(model.unit_names)
    if recipe.reinit_top:
        if not 0 < recipe.reinit_top < n_units - 1:
            raise ValueError(
                f"reinit_top must be in 1..{n_units - 2} for units {list(model.unit_names)}, "
                f"got {recipe.reinit_top}"
            )
        transfer_units(pretrained, model, n_units - 1 - recipe.reinit_top, seed=int(seed))
    config = recipe.config(base_train, seed, stats, n_units)
    penalty = None
    if recipe.regularizer is not None:
        spec = dict(recipe.regularizer)
        name = spec.pop("regularizer")
        if "delta" in name.split("+"):
            x = normalize(train.images[:256], stats[0], stats[1])
            spec[("delta__" if "+" in name else "") + "attention_data"] = (x, train.labels[:256])
        torch.manual_seed(int(seed))
        penalty = create_regularizer(name, source_model=pretrained, target_model=model, **spec).penalty
    fit_or_fail(model, train, None, config, penalty=penalty)
    return model, config


@dataclass(frozen=True)
class Setting:
    """One recommended setting: what it is, the survey passage it comes from, and the claim of
    ``notebooks/best_practice_quadrants.md`` that tests it (``None``: not tested)."""

    what: str
    value: str
    passage: str
    section: str
    claim: int | None = None


@dataclass(frozen=True)
class Recommendation:
    """The survey's recipe for one quadrant, with every setting's source."""

    quadrant: str
    recipe: Recipe
    settings: tuple[Setting, ...]


_LOW_LR = (
    "A lower learning rate and momentum are better for fine-tuning when the source and target "
    "datasets are similar."
)
_FT_ALL = "All weights should be fine-tuned not frozen."
_REGS_SMALL_NEAR = (
    "Recent regularization techniques like L2-SP, DELTA, BSS, stochastic normalization, etc. "
    "are likely to improve performance significantly in this case."
)
_DECAY_SMALL = (
    "the learning rate should be decayed more quickly with smaller target datasets where the "
    "empirical risk estimate is likely to be less reliable and overfitting more of a problem"
)

RECOMMENDED: dict[str, Recommendation] = {
    "large, similar": Recommendation(
        "large, similar",
        Recipe(lr_factor=0.3, momentum=0.8),
        (
            Setting("layers", "transfer and fine-tune every layer", _FT_ALL, "7.2", 1),
            Setting("lr, momentum", "lower: 0.3 × the default lr, momentum 0.8", _LOW_LR,
                    "7.2", 2),
            Setting("schedule", "the default cosine decay (no faster decay for a large target)",
                    _DECAY_SMALL, "7.1 (3)", 3),
            Setting("regularizer", "none beyond weight decay ('less regularization will be "
                    "needed with a very large target dataset')",
                    "Generally, less regularization will be needed with a very large target "
                    "dataset.", "7.2", None),
        ),
    ),
    "small, similar": Recommendation(
        "small, similar",
        Recipe(lr_factor=0.3, momentum=0.8, schedule="step", step_milestones=(0.25, 0.5),
               gamma=0.1, regularizer={"regularizer": "l2_sp", "alpha": 0.1, "beta": 0.01},
               weight_decay=0.0),
        (
            Setting("layers", "transfer and fine-tune every layer (freezing may tie for a very "
                    "similar target)",
                    "Freezing lower layers may work better in limited cases where the target "
                    "domain is small and the tasks are extremely similar", "7.1 (1)", 1),
            Setting("lr, momentum", "lower: 0.3 × the default lr, momentum 0.8",
                    "The optimal learning rate and momentum will likely be low as the weights "
                    "will not need to be moved far from their pretrained values.", "7.2", 2),
            Setting("schedule", "fast decay: step ×0.1 at 25 % and 50 % of the run",
                    _DECAY_SMALL, "7.1 (3)", 3),
            Setting("regularizer", "L2-SP (alpha 0.1, beta 0.01) instead of weight decay",
                    _REGS_SMALL_NEAR, "7.2", 4),
        ),
    ),
    "large, less similar": Recommendation(
        "large, less similar",
        Recipe(lr_factor=3.0, momentum=0.95, schedule="step", step_milestones=(0.6, 0.85),
               gamma=0.1, reinit_top=1),
        (
            Setting("layers", "transfer all, re-initialise the top transferred layer",
                    "Reinitializing more layers of weights could also be attempted in order to "
                    "take advantage of the more general lower layers", "7.2", 5),
            Setting("lr, momentum", "higher: 3 × the default lr, momentum 0.95",
                    "When fine-tuning a higher learning rate, momentum and training for longer "
                    "before decaying the learning rate should be used.", "7.2", 2),
            Setting("schedule", "late decay: step ×0.1 at 60 % and 85 % of the run",
                    "training for longer before decaying the learning rate", "7.2", 3),
            Setting("regularizer", "none (no L2-SP, DELTA or BSS)",
                    "Recent regularization techniques like L2-SP, DELTA, BSS, stochastic "
                    "normalization, etc. should not be used in this case", "7.2", 4),
        ),
    ),
    "small, less similar": Recommendation(
        "small, less similar",
        Recipe(lr_factor=3.0, momentum=0.95, schedule="step", step_milestones=(0.25, 0.5),
               gamma=0.1, lower_lr_mult=0.3,
               regularizer={"regularizer": "l2_sp_lower", "num_sp_units": 2, "alpha": 0.1,
                            "alpha_upper": 0.01, "beta": 0.01},
               weight_decay=0.0),
        (
            Setting("layers", "transfer all; the lower half of the layers at 0.3 × the lr",
                    "When the source and target datasets are less similar it may be optimal to "
                    "fine-tune higher layers at a higher learning rate than lower layers",
                    "7.1 (3)", None),
            Setting("lr, momentum", "high initially: 3 × the default lr, momentum 0.95",
                    "a high initial learning rate and momentum should be used, but the learning "
                    "rate should be decayed quickly", "7.2", 2),
            Setting("schedule", "fast decay: step ×0.1 at 25 % and 50 % of the run",
                    "the learning rate should be decayed quickly", "7.2", 3),
            Setting("regularizer", "L2-SP on the lower two units, plain L2 above (l2_sp_lower)",
                    "should not be used on all layers, but in some cases may be beneficial on "
                    "lower layers", "7.2", 6),
            Setting("data", "if possible, an intermediate, more related data set first",
                    "Using a moderately sized closely related dataset ... as an intermediary "
                    "fine-tuning step", "7.2", 7),
        ),
    ),
}
"""The survey's recommendation per quadrant. The numbers (0.3 ×, 3 ×, momentum 0.8 / 0.95,
milestones) are this project's concrete reading of the survey's words "lower", "higher",
"decay quickly", "longer before decaying"; the survey gives no values."""

PLAIN_DEFAULT = Recipe()
"""The plain default the advice is checked against: fine-tune everything at the default lr
and schedule, no transfer regularizer (the base's weight decay only)."""
