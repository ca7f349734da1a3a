"""Transferability metrics (survey section 5.2.5) and the negative transfer gap (section 3.4).

Pure functions of already-extracted inputs: features ``(N, D)`` or source-model probabilities
``(N, Z)``, target labels ``(N,)`` and an explicit ``num_classes``. No model or data loader is
used here; features come from ``survey_lib.models.features.extract_features``, re-exported
lazily as ``extract_features``.
"""

from __future__ import annotations

from typing import Any

from survey_lib.transferability.gbc import gbc
from survey_lib.transferability.hscore import h_score, shrinkage_h_score
from survey_lib.transferability.knn import knn_accuracy
from survey_lib.transferability.leep import leep
from survey_lib.transferability.linear import linear_probe_accuracy
from survey_lib.transferability.logme import logme
from survey_lib.transferability.nce import nce, nce_from_probabilities
from survey_lib.transferability.ntg import is_negative_transfer, negative_transfer_gap
from survey_lib.transferability.registry import MetricSpec, get_metric, list_metrics
from survey_lib.transferability.transrate import transrate

__all__ = [
    "MetricSpec",
    "gbc",
    "get_metric",
    "h_score",
    "is_negative_transfer",
    "knn_accuracy",
    "leep",
    "linear_probe_accuracy",
    "list_metrics",
    "logme",
    "nce",
    "nce_from_probabilities",
    "negative_transfer_gap",
    "shrinkage_h_score",
    "transrate",
]


def __getattr__(name: str) -> Any:
    # Imported on first use so the metrics do not depend on the models package.
    if name == "extract_features":
        from survey_lib.models.features import extract_features

        return extract_features
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
