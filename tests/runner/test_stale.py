"""Stale records: runs no longer in the grid are moved into ``stale/`` (never deleted) and
moved back, not re-run, when the grid returns to them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from survey_lib.runner import RunFailed, load_results, read_results_csv, run_grid, run_id


def _counting(calls: list, fail: set[int] | None = None):
    def fn(params: dict, seed: int) -> dict:
        calls.append((params["a"], seed))
        if fail and params["a"] in fail:
            raise RunFailed("diverged")
        return {"acc": float(params["a"] * 10 + seed), "loss": -float(params["a"])}

    return fn


def _ids(grid: list[dict], seeds: list[int], code: str) -> set[str]:
    return {run_id(p, s, code) for p in grid for s in seeds}


def _prov(folder: Path) -> dict:
    return json.loads((folder / "provenance.json").read_text())


def test_old_records_move_to_stale_and_come_back_without_rerunning(tmp_path: Path) -> None:
    calls: list = []
    kw = {"progress": False, "code_version": "v"}
    old, new = [{"a": 1}, {"a": 2}], [{"a": 2}, {"a": 3}]
    folder = tmp_path / "exp"
    run_grid("exp", _counting(calls), old, [0, 1], tmp_path, **kw)
    assert len(calls) == 4

    df = run_grid("exp", _counting(calls), new, [0, 1], tmp_path, **kw)
    assert sorted(calls[4:]) == [(3, 0), (3, 1)]  # a=2 reused, a=3 run
    gone = _ids([{"a": 1}], [0, 1], "v")
    assert {p.stem for p in (folder / "stale" / "runs").glob("*.json")} == gone
    assert {p.stem for p in (folder / "runs").glob("*.json")} == _ids(new, [0, 1], "v")
    assert set(df.a) == {2, 3} and set(load_results(folder).a) == {2, 3}
    assert set(read_results_csv(folder).a) == {2, 3}
    assert len(pd.read_csv(folder / "runs.csv")) == 4
    moved = _prov(folder)["records_moved_to_stale"]
    assert moved["count"] == 2 and set(moved["run_ids"]) == gone

    n = len(calls)
    back = run_grid("exp", _counting(calls), old, [0, 1], tmp_path, **kw)
    assert len(calls) == n  # a=1 restored from stale/, a=2 still in runs/: nothing re-run
    assert set(back.a) == {1, 2} and len(back) == 2 * 4
    prov = _prov(folder)
    assert set(prov["records_restored_from_stale"]["run_ids"]) == gone
    assert prov["runs_executed"] == 0 and prov["runs_finished"] == 4
    assert set(prov["records_moved_to_stale"]["run_ids"]) == _ids([{"a": 3}], [0, 1], "v")
    assert {p.stem for p in (folder / "stale" / "runs").glob("*.json")} == _ids([{"a": 3}], [0, 1], "v")  # fmt: skip
    assert {p.stem for p in (folder / "runs").glob("*.json")} == _ids(old, [0, 1], "v")


def test_a_new_code_version_moves_every_old_record_aside(tmp_path: Path) -> None:
    calls: list = []
    grid = [{"a": 1}]
    run_grid("exp", _counting(calls), grid, [0], tmp_path, progress=False, code_version="v1")
    run_grid("exp", _counting(calls), grid, [0], tmp_path, progress=False, code_version="v2")
    assert len(calls) == 2
    folder = tmp_path / "exp"
    assert set(load_results(folder).code_version) == {"v2"}
    assert set(load_results(folder / "stale").code_version) == {"v1"}
    assert _prov(folder)["records_moved_to_stale"]["run_ids"] == [run_id({"a": 1}, 0, "v1")]


def test_a_corrupt_stale_record_is_not_restored_and_its_run_reruns(tmp_path: Path) -> None:
    calls: list = []
    kw = {"progress": False, "code_version": "v"}
    folder = tmp_path / "exp"
    run_grid("exp", _counting(calls), [{"a": 1}], [0], tmp_path, **kw)
    run_grid("exp", _counting(calls), [{"a": 2}], [0], tmp_path, **kw)
    stale = folder / "stale" / "runs" / f"{run_id({'a': 1}, 0, 'v')}.json"
    text = stale.read_text()
    stale.write_text(text[: len(text) // 2])
    with pytest.warns(UserWarning, match="is corrupt.*not restored"):
        df = run_grid("exp", _counting(calls), [{"a": 1}], [0], tmp_path, **kw)
    assert calls == [(1, 0), (2, 0), (1, 0)]  # re-run, not restored
    assert df.query("metric == 'acc'").value.tolist() == [10.0]
    assert _prov(folder)["records_restored_from_stale"]["count"] == 0


def test_stale_failure_records_move_aside_and_are_not_restored(tmp_path: Path) -> None:
    calls: list = []
    kw = {"progress": False, "code_version": "v"}
    folder = tmp_path / "exp"
    with pytest.warns(UserWarning, match="1 run\\(s\\) failed"):
        run_grid("exp", _counting(calls, fail={2}), [{"a": 1}, {"a": 2}], [0], tmp_path, **kw)
    bad = run_id({"a": 2}, 0, "v")
    run_grid("exp", _counting(calls), [{"a": 1}], [0], tmp_path, **kw)
    assert list((folder / "failed").glob("*.json")) == []
    assert (folder / "stale" / "failed" / f"{bad}.json").exists()
    assert _prov(folder)["records_moved_to_stale"]["failed_run_ids"] == [bad]
    n = len(calls)
    run_grid("exp", _counting(calls), [{"a": 1}, {"a": 2}], [0], tmp_path, **kw)
    assert calls[n:] == [(2, 0)]  # a failed run is retried, never restored as a failure
    assert (folder / "runs" / f"{bad}.json").exists()
