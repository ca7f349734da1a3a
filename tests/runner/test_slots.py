"""Local workers per GPU (issue 12, item 8): assignment, thread limits and their configuration,
tested without a GPU by faking the device count."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from survey_lib.runner import grid as grid_mod
from survey_lib.runner import run_grid
from survey_lib.runner.grid import resolve_workers_per_gpu, worker_slots

from . import fns


def test_worker_slots_share_gpus_round_robin_and_split_the_cpus() -> None:
    assert worker_slots(4, 2, 16) == ([0, 1, 0, 1], 4)
    assert worker_slots(6, 3, 8) == ([0, 1, 2, 0, 1, 2], 1)
    assert worker_slots(3, 0, 2) == (None, 1)
    assert worker_slots(2, 0, 16) == (None, 8)


def test_auto_workers_are_workers_per_gpu_times_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grid_mod, "_gpu_count", lambda: 2)
    assert grid_mod._resolve_workers("auto", 100, 3) == (6, 2)
    assert grid_mod._resolve_workers("auto", 4, 3) == (4, 2)  # never more than the tasks
    assert grid_mod._resolve_workers(5, 100, 3) == (5, 2)
    monkeypatch.setattr(grid_mod, "_gpu_count", lambda: 0)
    assert grid_mod._resolve_workers("auto", 100, 3) == (1, 0)


def test_workers_per_gpu_from_argument_environment_or_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SURVEY_WORKERS_PER_GPU", raising=False)
    assert resolve_workers_per_gpu() == grid_mod.DEFAULT_WORKERS_PER_GPU == 1
    monkeypatch.setenv("SURVEY_WORKERS_PER_GPU", "4")
    assert resolve_workers_per_gpu() == 4 and resolve_workers_per_gpu(2) == 2
    monkeypatch.setenv("SURVEY_WORKERS_PER_GPU", "two")
    with pytest.raises(ValueError, match="SURVEY_WORKERS_PER_GPU must be an int >= 1, got 'two'"):
        resolve_workers_per_gpu()
    with pytest.raises(ValueError, match="workers_per_gpu must be an int >= 1, got 0"):
        resolve_workers_per_gpu(0)


def test_two_workers_on_one_fake_gpu_with_limited_threads_and_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grid_mod, "_gpu_count", lambda: 1)
    grid = [{"x": 1}, {"x": 2}]
    df = run_grid("g", fns.square, grid, [0, 1], tmp_path, workers="auto", workers_per_gpu=2,
                  batch_runs=2, many=fns.many_square, progress=False)  # fmt: skip
    assert sorted(df.value) == [1.0, 2.0, 4.0, 5.0]
    records = [json.loads(p.read_text()) for p in (tmp_path / "g" / "runs").glob("*.json")]
    assert {r["info"]["cuda_visible"] for r in records} == {"0"}  # both workers on GPU 0
    assert {r["info"]["threads"] for r in records} == {max(1, (os.cpu_count() or 1) // 2)}
    for x in (1, 2):  # a batch runs in one process
        assert len({r["info"]["pid"] for r in records if r["params"]["x"] == x}) == 1
    top = json.loads((tmp_path / "g" / "provenance.json").read_text())
    assert top["workers"] == 2 and top["workers_per_gpu"] == 2 and top["executor"] == "local"
    assert top["cluster"] == {"nodes": 1, "cpus": os.cpu_count(), "gpus": 1}
