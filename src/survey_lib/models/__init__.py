"""Backbones with the same transfer hooks: ordered units, features, a resettable head.

``create_model(name, num_classes, in_chans=1, weights=None)`` builds a registered model
(:func:`list_models`) or wraps a timm model given as ``arch`` or ``arch.tag``
(:mod:`survey_lib.models.timm_backbone`, imported on demand).
"""

from survey_lib.models.alexnet_small import AlexNetSmall
from survey_lib.models.base import TransferModel
from survey_lib.models.features import dataset_stats, extract_features, normalize
from survey_lib.models.registry import create_model, list_models, register_model
from survey_lib.models.resnet_small import ResNetSmall

__all__ = [
    "AlexNetSmall",
    "ResNetSmall",
    "TransferModel",
    "create_model",
    "dataset_stats",
    "extract_features",
    "list_models",
    "normalize",
    "register_model",
]
