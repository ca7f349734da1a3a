"""Training engine: :func:`fit`, :func:`evaluate`, :class:`TrainConfig`, :class:`FitResult`.

The caller seeds model creation (``seed_everything(seed)`` then ``create_model(...)``); ``fit``
seeds everything random inside a run from ``config.seed``.
"""

from survey_lib.train.augment import augment_batch, crop_flip
from survey_lib.train.config import AUGMENTS, SCHEDULES, TrainConfig
from survey_lib.train.context import StepContext
from survey_lib.train.engine import FitResult, fit, seed_everything
from survey_lib.train.evaluate import evaluate, normalizer, predict_logits
from survey_lib.train.optim import param_groups
from survey_lib.train.schedule import lr_factor, milestone_steps

__all__ = [
    "AUGMENTS",
    "SCHEDULES",
    "FitResult",
    "StepContext",
    "TrainConfig",
    "augment_batch",
    "crop_flip",
    "evaluate",
    "fit",
    "lr_factor",
    "milestone_steps",
    "normalizer",
    "param_groups",
    "predict_logits",
    "seed_everything",
]
