"""Registry of transferability metrics: one name per metric, with the input it expects.

Every registered metric is called as ``spec(inputs, labels, num_classes=C, **options)`` and
returns a float, higher meaning more transferable. ``spec.input`` says what ``inputs`` is:
``"features"`` (penultimate-layer features ``(N, D)``) or ``"probabilities"`` (source-model
softmax outputs ``(N, Z)``, rows summing to 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from survey_lib.transferability.gbc import gbc
from survey_lib.transferability.hscore import h_score, shrinkage_h_score
from survey_lib.transferability.knn import knn_accuracy
from survey_lib.transferability.leep import leep
from survey_lib.transferability.linear import linear_probe_accuracy
from survey_lib.transferability.logme import logme
from survey_lib.transferability.nce import nce_from_probabilities
from survey_lib.transferability.transrate import transrate

MetricInput = Literal["features", "probabilities"]


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric.

    Attributes:
        name: registry name.
        fn: the metric, ``fn(inputs, labels, *, num_classes, **options) -> float``.
        input: ``"features"`` or ``"probabilities"``.
        paper: short citation of the method.
    """

    name: str
    fn: Callable[..., float]
    input: MetricInput
    paper: str

    def __call__(self, inputs: Any, labels: Any, *, num_classes: int, **options: Any) -> float:
        return self.fn(inputs, labels, num_classes=num_classes, **options)


_REGISTRY: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("hscore", h_score, "features", "Bao et al., ICIP 2019"),
        MetricSpec("nce", nce_from_probabilities, "probabilities", "Tran et al., ICCV 2019"),
        MetricSpec("leep", leep, "probabilities", "Nguyen et al., ICML 2020"),
        MetricSpec("logme", logme, "features", "You et al., ICML 2021"),
        MetricSpec("knn", knn_accuracy, "features", "Cover & Hart 1967; Puigcerver et al. 2021"),
        MetricSpec("linear", linear_probe_accuracy, "features", "Kornblith et al., CVPR 2019"),
        MetricSpec(
            "hscore_shrinkage", shrinkage_h_score, "features", "Ibrahim et al., ECML-PKDD 2022"
        ),
        MetricSpec("transrate", transrate, "features", "Huang et al., ICML 2022"),
        MetricSpec("gbc", gbc, "features", "Pándy et al., CVPR 2022"),
    )
}


def list_metrics(input: MetricInput | None = None) -> list[str]:
    """Names of the registered metrics, optionally only those taking ``input``."""
    if input is not None and input not in ("features", "probabilities"):
        raise ValueError(f"input must be 'features', 'probabilities' or None, got {input!r}")
    return [name for name, spec in _REGISTRY.items() if input is None or spec.input == input]


def get_metric(name: str) -> MetricSpec:
    """The registered metric called ``name``; unknown names raise ``ValueError`` listing all."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown transferability metric {name!r}; valid names: {', '.join(_REGISTRY)}"
        ) from None
