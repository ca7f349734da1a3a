"""survey_lib.stats and survey_lib.io against closed forms."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from survey_lib.io import atomic_torch_save, atomic_write_json
from survey_lib.stats import t_interval


def test_t_interval_matches_closed_form() -> None:
    values = [0.80, 0.82, 0.84]
    mean, low, high, n = t_interval(values)
    # t_{0.975, 2} = 4.302652729911275; s = 0.02
    half = 4.302652729911275 * 0.02 / math.sqrt(3)
    assert n == 3
    assert mean == pytest.approx(0.82)
    assert low == pytest.approx(0.82 - half)
    assert high == pytest.approx(0.82 + half)


def test_t_interval_single_value_is_undefined_not_zero() -> None:
    mean, low, high, n = t_interval([0.5])
    assert (mean, n) == (0.5, 1)
    assert math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")]])
def test_t_interval_rejects_bad_input(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        t_interval(bad)


def test_atomic_writes_leave_no_temporaries(tmp_path) -> None:
    atomic_write_json(tmp_path / "a" / "r.json", {"x": np.float64(1.5)})
    assert json.loads((tmp_path / "a" / "r.json").read_text()) == {"x": 1.5}
    atomic_torch_save(tmp_path / "w.pt", {"w": torch.arange(3)})
    loaded = torch.load(tmp_path / "w.pt", weights_only=True)
    assert torch.equal(loaded["w"], torch.arange(3))
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["r.json", "w.pt"]
