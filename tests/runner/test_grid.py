"""run_grid: ids, records, resume, failures, worker processes, and a real kill mid-grid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch

from survey_lib.runner import (
    RunFailed,
    RunOutput,
    expand_grid,
    load_results,
    read_results_csv,
    run_grid,
    run_id,
)

from . import fns


def test_expand_grid_is_the_cartesian_product() -> None:
    grid = expand_grid(lr=[0.1, 0.01], method=["l2", "l2_sp", "bss"])
    assert len(grid) == 6 and grid[0] == {"lr": 0.1, "method": "l2"}
    assert grid[-1] == {"lr": 0.01, "method": "bss"}
    with pytest.raises(ValueError, match="axis 'lr' must be a list"):
        expand_grid(lr=0.1)


def test_run_id_depends_on_params_seed_and_code_only() -> None:
    a = run_id({"lr": 0.1, "m": "x"}, 0, "abc")
    assert a == run_id({"m": "x", "lr": 0.1}, 0, "abc") and len(a) == 16
    assert len({a, run_id({"lr": 0.2, "m": "x"}, 0, "abc"), run_id({"lr": 0.1, "m": "x"}, 1, "abc"), run_id({"lr": 0.1, "m": "x"}, 0, "abd")}) == 4  # fmt: skip
    with pytest.raises(ValueError, match="reserved"):
        run_id({"seed": 1}, 0, "abc")
    with pytest.raises(TypeError, match="not a JSON value"):
        run_id({"f": object()}, 0, "abc")


def _fn(calls: list) -> Callable[[dict, int], dict]:
    def fn(params: dict, seed: int) -> dict:
        calls.append((params["a"], seed))
        return {"acc": params["a"] * 10 + seed, "loss": -params["a"]}

    return fn


def test_results_records_and_provenance(tmp_path: Path) -> None:
    calls: list = []
    grid = expand_grid(a=[1, 2], tag=["x"])
    df = run_grid(
        "exp", _fn(calls), grid, [0, 1, 2], tmp_path, progress=False, dataset_checksum="d5"
    )
    assert len(calls) == 6 and len(df) == 12
    assert list(df.columns) == ["run_id", "a", "tag", "seed", "metric", "value", "code_version"]
    acc = df[df.metric == "acc"].set_index(["a", "seed"])["value"]
    assert acc[(2, 1)] == 21.0 and acc[(1, 2)] == 12.0
    folder = tmp_path / "exp"
    assert len(list((folder / "runs").glob("*.json"))) == 6
    pd.testing.assert_frame_equal(read_results_csv(folder), df, check_dtype=False)
    slim = pd.read_csv(folder / "results.csv")
    assert list(slim.columns) == ["run_id", "metric", "value"] and len(slim) == 12
    runs = pd.read_csv(folder / "runs.csv")
    assert list(runs.columns) == ["run_id", "a", "tag", "seed", "code_version"]
    assert len(runs) == 6 and runs.run_id.is_unique and set(runs.run_id) == set(df.run_id)

    def by_key(t: pd.DataFrame) -> pd.DataFrame:
        return t.sort_values(["run_id", "metric"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(by_key(load_results(folder)), by_key(df))
    rid = df.run_id.iloc[0]
    record = json.loads((folder / "runs" / f"{rid}.json").read_text())
    prov = record["provenance"]
    assert record["metrics"].keys() == {"acc", "loss"} and record["seed"] == prov["seed"]
    assert torch.__version__.startswith(prov["packages"]["torch"])
    for key in ("git", "device", "hostname", "started", "finished", "wall_seconds", "code_version"):
        assert key in prov, key
    assert prov["dataset_checksum"] == "d5" and prov["peak_memory"]["max_rss_mib"] > 10
    assert {"commit", "dirty"} <= prov["git"].keys() and prov["device"]["cpu"]
    top = json.loads((folder / "provenance.json").read_text())
    assert top["runs_total"] == 6 and top["runs_failed"] == [] and top["seeds"] == [0, 1, 2]


def test_finished_runs_are_skipped_and_code_version_reruns(tmp_path: Path) -> None:
    calls: list = []
    grid = expand_grid(a=[1, 2])
    first = run_grid("exp", _fn(calls), grid, [0, 1], tmp_path, progress=False, code_version="v1")
    second = run_grid(
        "exp", _fn(calls), grid + [{"a": 3}], [0, 1], tmp_path, progress=False, code_version="v1"
    )
    assert calls == [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0), (3, 1)]
    assert len(second) == len(first) + 4
    auto = "auto" if torch.cuda.device_count() <= 1 else 1  # "auto": 1 process without GPUs
    run_grid("exp", _fn(calls), grid, [0], tmp_path, progress=False, code_version="v2", workers=auto)  # fmt: skip
    assert calls[-2:] == [(1, 0), (2, 0)]
    # runs/ now holds the v2 grid only; the six v1 records were moved aside into stale/
    assert len(load_results(tmp_path / "exp")) == 2 * 2
    assert set(load_results(tmp_path / "exp").code_version) == {"v2"}
    assert set(load_results(tmp_path / "exp" / "stale").code_version) == {"v1"}
    assert len(load_results(tmp_path / "exp" / "stale")) == 2 * 6


def test_failed_runs_are_recorded_apart_and_retried(tmp_path: Path) -> None:
    state = {"broken": True, "calls": 0}

    def fn(params: dict, seed: int) -> dict:
        state["calls"] += 1
        if params["a"] == 2 and state["broken"]:
            raise RunFailed({"step": 3, "epoch": 0, "value": float("inf")})
        if params["a"] == 3 and state["broken"]:
            raise RuntimeError("boom")
        return {"acc": float(params["a"])}

    grid = expand_grid(a=[1, 2, 3])
    with pytest.warns(UserWarning, match="2 run\\(s\\) failed"):
        df = run_grid("exp", fn, grid, [0], tmp_path, progress=False)
    assert sorted(df.a) == [1]
    failed = {f["params"]["a"]: f for f in df.attrs["failed"]}
    assert failed[2]["failure"] == {
        "kind": "RunFailed",
        "step": 3,
        "epoch": 0,
        "value": float("inf"),
    }
    assert (
        failed[3]["failure"]["kind"] == "RuntimeError"
        and "boom" in failed[3]["failure"]["traceback"]
    )
    folder = tmp_path / "exp"
    assert len(list((folder / "failed").glob("*.json"))) == 2
    assert json.loads((folder / "provenance.json").read_text())["runs_failed"] == [
        failed[2]["run_id"],
        failed[3]["run_id"],
    ]
    state["broken"] = False
    df = run_grid("exp", fn, grid, [0], tmp_path, progress=False)
    assert state["calls"] == 5 and sorted(df.a) == [1, 2, 3] and df.attrs["failed"] == []
    assert list((folder / "failed").glob("*.json")) == []


def test_run_output_keeps_info_and_checksum(tmp_path: Path) -> None:
    def fn(params: dict, seed: int) -> RunOutput:
        return RunOutput({"acc": 0.5}, info={"history": [1.0, 0.5]}, dataset_checksum="abc123")

    df = run_grid("exp", fn, [{}], [7], tmp_path, progress=False, dataset_checksum="ignored")
    record = json.loads(next((tmp_path / "exp" / "runs").glob("*.json")).read_text())
    assert record["info"] == {"history": [1.0, 0.5]}
    assert record["provenance"]["dataset_checksum"] == "abc123"
    assert df.value.tolist() == [0.5] and df.seed.tolist() == [7]


def test_two_worker_processes(tmp_path: Path) -> None:
    sync = tmp_path / "sync"
    sync.mkdir()
    grid = expand_grid(x=[1, 2], sync_dir=[str(sync)])
    df = run_grid("par", fns.rendezvous, grid, [0, 10], tmp_path / "res", workers=2, progress=False)
    got = df.set_index(["x", "seed"])["value"].sort_index()
    assert got.tolist() == [1.0, 11.0, 4.0, 14.0]
    pids = {
        json.loads(p.read_text())["info"]["pid"]
        for p in (tmp_path / "res" / "par" / "runs").glob("*.json")
    }
    assert len(pids) == 2 and os.getpid() not in pids
    with pytest.raises(ValueError, match="needs a picklable fn"):
        run_grid("par", lambda p, s: {"x": 1.0}, [{"x": 3}], [0, 1], tmp_path, workers=2, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="workers must be an int >= 1 or 'auto'"):
        run_grid("par", fns.rendezvous, grid, [0], tmp_path / "res", workers=0, progress=False)


KILL_SCRIPT = """
import sys, time
from collections.abc import Callable
from pathlib import Path
from survey_lib.runner import run_grid

log = Path(sys.argv[1])
sleep_on = int(sys.argv[2])

def fn(params, seed):
    with log.open("a") as f:
        f.write(f"{params['i']}\\n")
    if params["i"] == sleep_on:
        time.sleep(120)
    return {"i": float(params["i"])}

run_grid("killed", fn, [{"i": i} for i in range(1, 6)], [0], sys.argv[3], progress=False, code_version="k")
"""


def test_a_killed_grid_leaves_no_partial_record_and_resumes(tmp_path: Path) -> None:
    script, log, results = tmp_path / "grid.py", tmp_path / "calls.log", tmp_path / "results"
    script.write_text(textwrap.dedent(KILL_SCRIPT))
    proc = subprocess.Popen([sys.executable, str(script), str(log), "3", str(results)])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (
        not log.exists() or log.read_text().split() != ["1", "2", "3"]
    ):
        assert proc.poll() is None, "grid process ended early"
        time.sleep(0.05)
    assert log.read_text().split() == ["1", "2", "3"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    runs = results / "killed" / "runs"
    assert len(list(runs.glob("*.json"))) == 2
    assert (
        sorted(
            p.name
            for p in (results / "killed").rglob("*")
            if p.is_file() and not p.name.endswith(".json")
        )
        == []
    )
    assert not (results / "killed" / "results.csv").exists()
    assert not (results / "killed" / "runs.csv").exists()
    calls: list[int] = []

    def fn(params: dict, seed: int) -> dict:  # the script's runs, resumed in this process
        calls.append(params["i"])
        return {"i": float(params["i"])}

    run_grid(
        "killed",
        fn,
        [{"i": i} for i in range(1, 6)],
        [0],
        results,
        progress=False,
        code_version="k",
    )
    assert calls == [3, 4, 5]
    df = load_results(results / "killed")
    assert sorted(df.value) == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_load_results_without_folder_says_where(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="written by run_grid"):
        load_results(tmp_path / "nothing")
