"""Noise budget of a reproduction: how much of the seed-to-seed spread of a key difference the
finite test set explains, and how much is left for training.

An accuracy :math:`\\hat p` measured on :math:`m` test images has binomial sampling variance
:math:`p(1-p)/m`. A key difference is a weighted sum of accuracies,
:math:`D = \\sum_i w_i \\hat p_i` (e.g. ``BnB − baseB`` averaged over depths: weights
:math:`1/K` and :math:`-1`); treating the test-set errors of different networks as independent,
its test-sampling variance is

.. math:: V_\\text{test} = \\sum_i w_i^2\\, p_i (1 - p_i) / m_i ,

with :math:`p_i` the mean accuracy over seeds. The observed seed-to-seed variance
:math:`V_\\text{obs}` (sample variance, ``ddof = 1``) is split into :math:`V_\\text{test}` and
the rest, :math:`V_\\text{train} = \\max(V_\\text{obs} - V_\\text{test}, 0)` (initialisation,
data order, class split, subset). All variances here are in points² (1 point = 0.01 accuracy).
Independence is an approximation: networks scored on the *same* test images make correlated
errors, which lowers the true test-sampling variance of a difference, so
:math:`V_\\text{test}` is an upper bound for paired differences on a shared test set.

:func:`predicted_sd` gives the spread expected at another test size (the training part kept,
the test part scaled), as used to plan seeds (``scripts/seeds_needed.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

Term = tuple[float, float, int]
"""``(weight, mean accuracy in [0, 1], test images)`` of one accuracy in a difference."""


def binomial_variance(accuracy: float, n_test: int) -> float:
    """Test-sampling variance of an accuracy in points²: :math:`10^4\\, p(1-p)/m`."""
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy!r}")
    if int(n_test) < 1:
        raise ValueError(f"n_test must be a positive number of test images, got {n_test!r}")
    return 1e4 * accuracy * (1.0 - accuracy) / int(n_test)


def sampling_variance(terms: Iterable[Term]) -> float:
    """:math:`V_\\text{test} = \\sum_i w_i^2\\, 10^4 p_i(1-p_i)/m_i` in points²."""
    return float(sum(w * w * binomial_variance(p, m) for w, p, m in terms))


@dataclass(frozen=True)
class NoiseBudget:
    """The split of one key difference's seed-to-seed variance (standard deviations in points)."""

    quantity: str
    n_seeds: int
    observed_sd: float
    test_sd: float
    training_sd: float
    test_share: float
    """:math:`V_\\text{test}/V_\\text{obs}`, capped at 1 (NaN when nothing varies)."""

    def as_dict(self) -> dict:
        return asdict(self)


def noise_budget(quantity: str, values: Sequence[float], terms: Iterable[Term]) -> NoiseBudget:
    """The noise budget of ``quantity`` from its per-seed ``values`` (points) and the accuracies
    it is made of (``terms``)."""
    vals = np.asarray([float(v) for v in values], dtype=float)
    if np.isnan(vals).any():
        raise ValueError(f"{quantity}: values contain NaN")
    v_test = sampling_variance(terms)
    if vals.size < 2:
        return NoiseBudget(quantity, int(vals.size), math.nan, math.sqrt(v_test), math.nan,
                           math.nan)
    v_obs = float(vals.var(ddof=1))
    v_train = max(v_obs - v_test, 0.0)
    share = min(v_test / v_obs, 1.0) if v_obs > 0 else math.nan
    return NoiseBudget(quantity, int(vals.size), math.sqrt(v_obs), math.sqrt(v_test),
                       math.sqrt(v_train), share)


def predicted_sd(budget: NoiseBudget, new_terms: Iterable[Term]) -> float:
    """The per-seed sd (points) expected with the test sizes of ``new_terms``: the training
    part kept, the test part :math:`s V_{obs}` (share :math:`s`, capped at 1, so never
    more than what was observed) scaled by :math:`V_{test}' / V_{test}`."""
    v_obs, v_test = budget.observed_sd**2, budget.test_sd**2
    if not math.isfinite(v_obs) or v_test <= 0:
        return budget.observed_sd
    share = budget.test_share if math.isfinite(budget.test_share) else 0.0
    return math.sqrt(v_obs * (1.0 - share) + v_obs * share * sampling_variance(new_terms) / v_test)


def mean_difference_terms(
    plus: Sequence[float], minus: Sequence[float], n_test: int | Sequence[int]
) -> list[Term]:
    """Terms of ``mean(plus) − mean(minus)`` (mean accuracies), each scored on ``n_test``
    images (one size, or one per term: plus first, then minus)."""
    sizes = ([int(n_test)] * (len(plus) + len(minus)) if isinstance(n_test, int | np.integer)
             else [int(m) for m in n_test])
    if len(sizes) != len(plus) + len(minus):
        raise ValueError(f"n_test has {len(sizes)} sizes for {len(plus) + len(minus)} terms")
    terms = [(1.0 / len(plus), float(p), m) for p, m in zip(plus, sizes)]
    terms += [(-1.0 / len(minus), float(p), m) for p, m in zip(minus, sizes[len(plus):])]
    return terms


def budget_table(budgets: Iterable[NoiseBudget]) -> pd.DataFrame:
    """One row per key difference."""
    return pd.DataFrame([b.as_dict() for b in budgets],
                        columns=["quantity", "n_seeds", "observed_sd", "test_sd",
                                 "training_sd", "test_share"])
