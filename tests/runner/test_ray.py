"""run_grid's Ray executor on a local Ray instance (2 CPUs, one per test session): the same
tables as the local executor, a killed worker recorded as failed and retried, resume across
executors, batches as single tasks."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from survey_lib.runner import run_grid

from . import fns

ROOT = Path(__file__).resolve().parents[2]


def _records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("*.json"))]


def test_a_smoke_grid_on_ray_gives_the_local_table(
    ray_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from survey_lib.experiments import yosinski

    smoke = yaml.safe_load((ROOT / "notebooks/params/yosinski_layer_transfer/smoke.yaml").read_text())  # fmt: skip
    keys = ("dataset", "model", "size", "channels", "train_per_class", "test_per_class", "train")
    cell = {k: smoke[k] for k in keys} | {"options": {}, "checkpoint_dir": "checkpoints"}
    grid = [{**cell, "kind": "base", "split": "random", "half": "A"}]
    tables = {}
    for executor in ("local", "ray"):  # own folders, so no base network is shared
        (tmp_path / executor).mkdir()
        monkeypatch.chdir(tmp_path / executor)  # the Ray tasks follow the driver's folder
        tables[executor] = run_grid(
            "base", yosinski.run_cell, grid, [0, 1], "results", executor=executor, progress=False
        )
        assert len(list(Path("checkpoints").glob("*.pt"))) == 2
    pd.testing.assert_frame_equal(tables["local"], tables["ray"])
    assert len(tables["ray"]) == 2 and tables["ray"].attrs["failed"] == []
    ray_dir = tmp_path / "ray" / "results" / "base"
    assert {r["provenance"]["executor"] for r in _records(ray_dir)} == {"ray"}
    assert len({r["provenance"]["pid"] for r in _records(ray_dir)} | {os.getpid()}) > 1
    top = json.loads((ray_dir / "provenance.json").read_text())
    assert top["executor"] == "ray" and top["cluster"]["nodes"] == 1
    assert top["cluster"]["cpus"] == 2.0 and top["cluster"]["slots"] == 2


def test_a_killed_ray_worker_fails_its_run_which_the_next_call_retries(
    ray_cluster: Any, tmp_path: Path
) -> None:
    flags = tmp_path / "flags"
    flags.mkdir()

    def kill_the_victim() -> None:
        deadline = time.monotonic() + 120
        while not (flags / "victim.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        (flags / "killed").touch()
        os.kill(int((flags / "victim.pid").read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_the_victim, daemon=True)
    killer.start()
    grid = [{"i": i, "flags": str(flags)} for i in range(4)]
    kw = {"executor": "ray", "progress": False, "code_version": "k"}
    with pytest.warns(UserWarning, match="1 run\\(s\\) failed"):
        first = run_grid("killed", fns.victim, grid, [0], tmp_path / "res", **kw)
    killer.join(5)
    (failed,) = first.attrs["failed"]
    assert failed["params"]["i"] == 1 and "Worker" in failed["failure"]["kind"]
    folder = tmp_path / "res" / "killed"
    assert sorted(first.value) == [0.0, 2.0, 3.0]
    record = json.loads((folder / "failed" / f"{failed['run_id']}.json").read_text())
    assert record["failure"] == failed["failure"] and record["provenance"]["executor"] == "ray"
    second = run_grid("killed", fns.victim, grid, [0], tmp_path / "res", **kw)
    assert sorted(second.value) == [0.0, 1.0, 2.0, 3.0] and second.attrs["failed"] == []
    assert list((folder / "failed").glob("*.json")) == []
    assert len(list((folder / "runs").glob("*.json"))) == 4
    calls = (flags / "calls.log").read_text().split()
    assert sorted(calls) == ["0", "1", "1", "2", "3"]  # every finished run ran once


def test_half_a_grid_local_the_rest_on_ray_gives_the_same_table(
    ray_cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grid = [{"x": x} for x in (1, 2, 3, 4)]
    kw = {"progress": False, "code_version": "v"}
    whole = run_grid("g", fns.square, grid, [0, 1], tmp_path / "local", **kw)
    run_grid("g", fns.square, grid[:2], [0, 1], tmp_path / "mixed", **kw)
    monkeypatch.setenv("SURVEY_EXECUTOR", "ray")  # what `reproduce --executor ray` sets
    mixed = run_grid("g", fns.square, grid, [0, 1], tmp_path / "mixed", **kw)
    pd.testing.assert_frame_equal(whole, mixed)
    records = _records(tmp_path / "mixed" / "g")
    by_executor = sorted((r["params"]["x"], r["provenance"]["executor"]) for r in records)
    assert by_executor == [(1, "local")] * 2 + [(2, "local")] * 2 + [(3, "ray")] * 2 + [(4, "ray")] * 2  # fmt: skip
    top = json.loads((tmp_path / "mixed" / "g" / "provenance.json").read_text())
    assert top["runs_executed"] == 4 and top["executor"] == "ray"


def test_a_batch_is_one_ray_task_and_its_runs_fail_alone(ray_cluster: Any, tmp_path: Path) -> None:
    grid = [{"x": -1}, {"x": 2}]
    kw = {"progress": False, "code_version": "v", "batch_runs": 2, "many": fns.many_square}
    with pytest.warns(UserWarning, match="2 run\\(s\\) failed"):
        local = run_grid("b", fns.square, grid, [0, 1], tmp_path / "local", **kw)
    with pytest.warns(UserWarning, match="2 run\\(s\\) failed"):
        on_ray = run_grid("b", fns.square, grid, [0, 1], tmp_path / "ray", executor="ray", **kw)
    pd.testing.assert_frame_equal(local, on_ray)
    assert sorted(on_ray.value) == [4.0, 5.0]
    assert {f["failure"]["message"] for f in on_ray.attrs["failed"]} == {"negative x=-1"}
    records = _records(tmp_path / "ray" / "b")
    assert len({r["info"]["pid"] for r in records}) == 1 and records[0]["info"]["threads"] == 1
    assert {r["provenance"]["batch"]["size"] for r in records} == {2}
