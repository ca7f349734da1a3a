"""Verdict rules against hand-computed t-intervals."""

from __future__ import annotations

import pytest

from survey_lib.experiments.verdicts import (
    INCONCLUSIVE,
    NOT_REPRODUCED,
    REPRODUCED,
    all_of,
    greater_than,
    less_than,
    verdict_table,
    within,
)


def test_greater_than_uses_the_t_interval() -> None:
    # mean 0.02, s = 0.01, n = 3: half-width 4.3027 * 0.01 / sqrt(3) = 0.0248 -> straddles 0
    assert greater_than("c", [0.01, 0.02, 0.03]).verdict == INCONCLUSIVE
    # mean 0.05 with the same spread: interval [0.025, 0.075] lies above 0
    v = greater_than("c", [0.04, 0.05, 0.06])
    assert v.verdict == REPRODUCED
    assert v.ci_low == pytest.approx(0.05 - 4.302652729911275 * 0.01 / 3**0.5)
    assert greater_than("c", [-0.04, -0.05, -0.06]).verdict == NOT_REPRODUCED


def test_less_than_mirrors_greater_than() -> None:
    v = less_than("c", [-0.04, -0.05, -0.06], 0.0)
    assert v.verdict == REPRODUCED
    assert v.mean == pytest.approx(-0.05)
    assert v.ci_low < v.mean < v.ci_high
    assert less_than("c", [0.04, 0.05, 0.06]).verdict == NOT_REPRODUCED
    assert less_than("c", [0.004, 0.005, 0.006], 0.01).verdict == REPRODUCED


def test_within_band() -> None:
    assert within("c", [0.001, -0.001, 0.0], 0.01).verdict == REPRODUCED
    assert within("c", [0.05, 0.06, 0.055], 0.01).verdict == NOT_REPRODUCED
    assert within("c", [0.0, 0.02, -0.02], 0.01).verdict == INCONCLUSIVE
    with pytest.raises(ValueError):
        within("c", [0.0, 0.0], 0.0)


def test_single_seed_is_inconclusive() -> None:
    assert greater_than("c", [0.5]).verdict == INCONCLUSIVE


def test_all_of_combines_parts() -> None:
    yes = greater_than("", [0.04, 0.05, 0.06])
    no = greater_than("", [-0.04, -0.05, -0.06])
    maybe = greater_than("", [0.01, 0.02, 0.03])
    assert all_of("c", [yes, yes]).verdict == REPRODUCED
    assert all_of("c", [yes, no]).verdict == NOT_REPRODUCED
    assert all_of("c", [yes, maybe]).verdict == INCONCLUSIVE
    table = verdict_table([all_of("c", [yes, maybe])])
    assert list(table.columns) == ["claim", "rule", "mean", "ci_low", "ci_high", "n", "verdict"]
