"""Noise budget and failed-run rule on constructed inputs whose answers are known in closed form."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from survey_lib.experiments.failures import failure_counts, flag_failed
from survey_lib.experiments.noise import (
    binomial_variance,
    budget_table,
    mean_difference_terms,
    noise_budget,
    predicted_sd,
    sampling_variance,
)


def test_binomial_variance_in_points() -> None:
    # p = 0.8 on 1,000 images: 0.8 * 0.2 / 1000 = 1.6e-4 accuracy² = 1.6 points²
    assert binomial_variance(0.8, 1000) == pytest.approx(1.6)
    with pytest.raises(ValueError, match="accuracy"):
        binomial_variance(1.2, 10)
    with pytest.raises(ValueError, match="n_test"):
        binomial_variance(0.5, 0)


def test_budget_splits_the_variance() -> None:
    # difference of two accuracies at p = 0.5 on 100 images each: V_test = 2 * 25 = 50 points²
    terms = mean_difference_terms([0.5], [0.5], 100)
    assert sampling_variance(terms) == pytest.approx(50.0)
    # per-seed values with sample variance 200: test share 1/4, training sd sqrt(150)
    values = [-10.0, 10.0, 10.0, -10.0, 0.0]  # mean 0, var = 400/4 = 100 ... scale below
    values = [v * math.sqrt(2.0) for v in values]  # var = 200
    b = noise_budget("d", values, terms)
    assert b.observed_sd == pytest.approx(math.sqrt(200.0))
    assert b.test_share == pytest.approx(0.25)
    assert b.training_sd == pytest.approx(math.sqrt(150.0))
    # at 4x the test images the test part falls to 12.5: sd sqrt(150 + 12.5)
    assert predicted_sd(b, mean_difference_terms([0.5], [0.5], 400)) == pytest.approx(
        math.sqrt(162.5))
    # all of a small spread explained by the test set: share capped at 1, training 0
    small = noise_budget("d", [0.0, 1.0], terms)
    assert small.test_share == 1.0 and small.training_sd == 0.0
    # its whole observed variance (0.5) is test noise: 4x the images quarter it
    assert predicted_sd(small, mean_difference_terms([0.5], [0.5], 400)) == pytest.approx(
        math.sqrt(0.5 / 4))
    assert list(budget_table([b, small]).quantity) == ["d", "d"]


def test_mean_difference_weights() -> None:
    terms = mean_difference_terms([0.9, 0.7], [0.8], 1000)
    assert [w for w, _, _ in terms] == [0.5, 0.5, -1.0]
    # 0.25 * (0.9 * 0.1 + 0.7 * 0.3) / 1000 + 0.16 / 1000, in points²
    assert sampling_variance(terms) == pytest.approx(1e4 * (0.25 * 0.30 + 0.16) / 1000)
    with pytest.raises(ValueError, match="sizes"):
        mean_difference_terms([0.9], [0.8], [10, 20, 30])


def test_failed_runs_rule() -> None:
    runs = pd.DataFrame({"cell": ["a"] * 5 + ["b"] * 3,
                         "acc": [0.85, 0.80, 0.30, 0.82, 0.88, 0.5, 0.52, 0.56]})
    # cell a: median 0.82, chance 0.2 -> threshold 0.2 + 0.5 * 0.62 = 0.51: only 0.30 fails
    failed = flag_failed(runs, by=["cell"], chance=0.2)
    assert list(failed) == [False, False, True, False, False, False, False, False]
    counts = failure_counts(runs, failed, by=["cell"])
    assert counts.set_index("cell").failed.to_dict() == {"a": 1, "b": 0}
    with pytest.raises(ValueError, match="columns"):
        flag_failed(runs, by=["condition"], chance=0.2)
