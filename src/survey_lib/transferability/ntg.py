r"""Negative transfer gap (survey Definition 5, section 3.4).

Wang, Dai, Póczos and Carbonell, "Characterizing and Avoiding Negative Transfer", CVPR 2019.
https://arxiv.org/abs/1811.09751, as quoted by Plested and Gedeon, "Deep transfer learning for
image classification: a survey", Definition 5.

With :math:`\epsilon_\tau` the test error on the target task :math:`\tau`, :math:`\theta` a
transfer algorithm, :math:`S` the source data and :math:`\emptyset` meaning no source data,

.. math::

    \mathrm{NTG} = \epsilon_\tau(\theta(S, \tau)) - \epsilon_\tau(\theta(\emptyset, \tau)),

and negative transfer happens when :math:`\mathrm{NTG} > 0`: the error with the source is larger
than the error without it.
"""

from __future__ import annotations

import math
import numbers


def _check_error(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number (a test error), got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite, non-negative test error, got {value}")
    return value


def negative_transfer_gap(error_with_source: float, error_without_source: float) -> float:
    r"""Negative transfer gap :math:`\epsilon_\tau(\theta(S,\tau)) - \epsilon_\tau(\theta(\emptyset,\tau))`.

    Pass test *errors* (e.g. ``1 - accuracy``), both in the same units; positive means the
    source hurt.

    Args:
        error_with_source: target test error of the model trained with the source
            (e.g. fine-tuned from pre-trained weights).
        error_without_source: target test error of the same learner without the source
            (e.g. trained from random initialisation).

    Returns:
        NTG; ``> 0`` is negative transfer, ``< 0`` is positive transfer.
    """
    with_s = _check_error(error_with_source, "error_with_source")
    without_s = _check_error(error_without_source, "error_without_source")
    return with_s - without_s


def is_negative_transfer(
    error_with_source: float, error_without_source: float, *, tolerance: float = 0.0
) -> bool:
    r"""Whether :math:`\mathrm{NTG} > \text{tolerance}` (strict; equal errors are not negative).

    Args:
        error_with_source: target test error with the source.
        error_without_source: target test error without the source.
        tolerance: margin (>= 0) the gap must exceed, e.g. the width of a confidence interval.

    Returns:
        ``True`` when the source made the target error larger by more than ``tolerance``.
    """
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance}")
    return negative_transfer_gap(error_with_source, error_without_source) > tolerance
