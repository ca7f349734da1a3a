"""The normalised export (runs.csv + slim results.csv) and its loader read_results_csv."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from survey_lib.runner import read_results_csv
from survey_lib.runner.results import write_results_csv


def _tidy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": ["12e4567890123456"] * 2 + ["0000000000000001"] * 2,  # read as text
            "lr": [0.1, 0.1, 0.01, 0.01],
            "cfg": ['{"k": 1}'] * 4,
            "seed": [0, 0, 1, 1],
            "metric": ["acc", "loss"] * 2,
            "value": [0.5, 1.5, 0.7, 1.2],
            "code_version": ["0123456"] * 4,  # a digits-only git hash stays text
        }
    )


def test_the_two_files_join_back_into_the_tidy_table(tmp_path: Path) -> None:
    df = _tidy()
    write_results_csv(tmp_path, df)
    assert list(pd.read_csv(tmp_path / "results.csv").columns) == ["run_id", "metric", "value"]
    assert len(pd.read_csv(tmp_path / "runs.csv")) == 2
    pd.testing.assert_frame_equal(read_results_csv(tmp_path), df)


def test_an_empty_grid_round_trips(tmp_path: Path) -> None:
    df = _tidy().iloc[:0]
    write_results_csv(tmp_path, df)
    back = read_results_csv(tmp_path)
    assert list(back.columns) == list(df.columns) and len(back) == 0


def test_an_earlier_wide_export_is_read_as_it_is(tmp_path: Path) -> None:
    _tidy().to_csv(tmp_path / "results.csv", index=False)
    pd.testing.assert_frame_equal(read_results_csv(tmp_path), _tidy())


def test_missing_or_mismatched_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no results.csv"):
        read_results_csv(tmp_path)
    write_results_csv(tmp_path, _tidy())
    (tmp_path / "runs.csv").unlink()
    with pytest.raises(FileNotFoundError, match="runs.csv, which is missing"):
        read_results_csv(tmp_path)
    write_results_csv(tmp_path, _tidy().iloc[2:])
    _tidy()[["run_id", "metric", "value"]].to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(ValueError, match="1 run\\(s\\) missing from"):
        read_results_csv(tmp_path)
    with pytest.raises(ValueError, match="missing column\\(s\\) \\['seed'\\]"):
        write_results_csv(tmp_path, _tidy().drop(columns="seed"))
