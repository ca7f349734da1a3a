"""Negative transfer gap: the sign convention of the survey's Definition 5 (section 3.4)."""

from __future__ import annotations

import math

import pytest

from survey_lib.transferability import is_negative_transfer, negative_transfer_gap


def test_ntg_is_error_with_source_minus_error_without() -> None:
    # Pre-training raised the target error from 0.20 to 0.30: negative transfer, NTG = +0.10.
    assert negative_transfer_gap(0.30, 0.20) == pytest.approx(0.10)
    assert is_negative_transfer(0.30, 0.20)
    # Pre-training lowered the error from 0.20 to 0.05: positive transfer, NTG = -0.15.
    assert negative_transfer_gap(0.05, 0.20) == pytest.approx(-0.15)
    assert not is_negative_transfer(0.05, 0.20)


def test_equal_errors_are_not_negative_transfer_and_tolerance_is_a_margin() -> None:
    assert negative_transfer_gap(0.2, 0.2) == 0.0
    assert not is_negative_transfer(0.2, 0.2)
    assert not is_negative_transfer(0.21, 0.20, tolerance=0.05)
    assert is_negative_transfer(0.30, 0.20, tolerance=0.05)
    assert type(negative_transfer_gap(1, 0)) is float


@pytest.mark.parametrize("bad", [math.nan, math.inf, -0.1, "0.2", None, True])
def test_ntg_rejects_values_that_are_not_errors(bad: object) -> None:
    with pytest.raises(ValueError, match="error_with_source"):
        negative_transfer_gap(bad, 0.2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="error_without_source"):
        negative_transfer_gap(0.2, bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tolerance"):
        is_negative_transfer(0.3, 0.2, tolerance=-1.0)
