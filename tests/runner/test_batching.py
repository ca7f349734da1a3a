"""run_grid's batched runs: compatible (cell, seed) runs grouped into one call of ``many``,
one record per run as without batching, resume and failures per run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from survey_lib.runner import RunFailed, expand_grid, run_grid, run_id

from . import fns


def _value(params: dict, seed: int) -> dict:
    return {"acc": params["a"] * 10 + seed, "loss": -params["a"]}


def _recording_many(calls: list):
    def many(runs: list[tuple[dict, int]]) -> list:
        calls.append([(p["a"], s) for p, s in runs])
        return [_value(p, s) for p, s in runs]

    return many


def _without_ids(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns="run_id").sort_values(["a", "seed", "metric"]).reset_index(drop=True)


def test_batches_hold_seeds_of_one_cell_and_give_the_same_records(tmp_path: Path) -> None:
    calls: list = []
    grid = expand_grid(a=[1, 2])
    kw = {"progress": False, "code_version": "v"}
    df = run_grid("b", _value, grid, [0, 1, 2], tmp_path, batch_runs=2, many=_recording_many(calls), **kw)  # fmt: skip
    assert calls == [[(1, 0), (1, 1)], [(1, 2)], [(2, 0), (2, 1)], [(2, 2)]]
    single = run_grid("s", _value, grid, [0, 1, 2], tmp_path, **kw)
    pd.testing.assert_frame_equal(_without_ids(df), _without_ids(single))
    # batch_runs is part of the identity: batched runs are other runs than single ones
    assert set(df.run_id) == {run_id({"a": a}, s, "v", batch_runs=2) for a in (1, 2) for s in (0, 1, 2)}  # fmt: skip
    assert set(df.run_id).isdisjoint(single.run_id)
    assert set(single.run_id) == {run_id({"a": a}, s, "v") for a in (1, 2) for s in (0, 1, 2)}
    rid = run_id({"a": 1}, 1, "v", batch_runs=2)
    record = json.loads((tmp_path / "b" / "runs" / f"{rid}.json").read_text())
    plain = json.loads(next((tmp_path / "s" / "runs").glob("*.json")).read_text())
    assert record.keys() == plain.keys()
    assert record["provenance"].keys() - plain["provenance"].keys() == {"batch"}
    assert record["metrics"] == {"acc": 11.0, "loss": -1.0}
    batch = record["provenance"]["batch"]
    assert batch["size"] == 2 and batch["index"] == 1 and batch["started"] == record["provenance"]["started"]  # fmt: skip
    assert record["provenance"]["wall_seconds"] == pytest.approx(batch["wall_seconds"] / 2)
    top = json.loads((tmp_path / "b" / "provenance.json").read_text())
    assert top["batch_runs"] == 2 and top["batches"] == 4 and top["runs_executed"] == 6


def test_resume_runs_only_the_unfinished_runs_of_a_batch(tmp_path: Path) -> None:
    calls: list = []
    kw = {"progress": False, "code_version": "v", "batch_runs": 4, "many": _recording_many(calls)}
    run_grid("b", _value, [{"a": 1}], [0, 1], tmp_path, **kw)
    df = run_grid("b", _value, [{"a": 1}], [0, 1, 2, 3], tmp_path, **kw)
    assert calls == [[(1, 0), (1, 1)], [(1, 2), (1, 3)]]
    assert sorted(df[df.metric == "acc"].value) == [10.0, 11.0, 12.0, 13.0]


def test_an_exception_outcome_fails_its_run_alone_and_is_retried(tmp_path: Path) -> None:
    state = {"broken": True}

    def many(runs: list[tuple[dict, int]]) -> list:
        out = fns.many_square(runs) if state["broken"] else [fns.square(p, s) for p, s in runs]
        if state["broken"]:
            out[-1] = RunFailed({"step": 2, "value": float("nan")})
        return out

    grid = expand_grid(x=[-1, 2])
    kw = {"progress": False, "code_version": "v", "batch_runs": 3, "many": many}
    with pytest.warns(UserWarning, match="4 run\\(s\\) failed"):
        df = run_grid("b", fns.square, grid, [0, 1, 2], tmp_path, **kw)
    assert sorted(df.value) == [4.0, 5.0]  # x=2, seeds 0 and 1; seed 2 got RunFailed
    kinds = sorted((f["params"]["x"], f["seed"], f["failure"]["kind"]) for f in df.attrs["failed"])
    assert kinds == [(-1, 0, "ValueError"), (-1, 1, "ValueError"), (-1, 2, "RunFailed"), (2, 2, "RunFailed")]  # fmt: skip
    failed = {f["seed"]: f for f in df.attrs["failed"] if f["params"]["x"] == -1}
    assert failed[0]["failure"]["message"] == "negative x=-1"
    assert "negative x=-1" in failed[0]["failure"]["traceback"]
    assert len(list((tmp_path / "b" / "failed").glob("*.json"))) == 4
    state["broken"] = False
    df = run_grid("b", fns.square, grid, [0, 1, 2], tmp_path, **kw)
    assert sorted(df.value) == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0] and df.attrs["failed"] == []
    assert list((tmp_path / "b" / "failed").glob("*.json")) == []


def test_a_batch_that_raises_or_miscounts_fails_each_of_its_runs(tmp_path: Path) -> None:
    def raises(runs: list) -> list:
        raise RuntimeError("out of memory")

    kw = {"progress": False, "code_version": "v", "batch_runs": 2}
    with pytest.warns(UserWarning, match="2 run\\(s\\) failed"):
        df = run_grid("r", fns.square, [{"x": 1}], [0, 1], tmp_path, many=raises, **kw)
    assert [f["failure"]["kind"] for f in df.attrs["failed"]] == ["RuntimeError"] * 2
    with pytest.warns(UserWarning, match="2 run\\(s\\) failed"):
        df = run_grid("c", fns.square, [{"x": 1}], [0, 1], tmp_path, many=lambda runs: [{"y": 1.0}], **kw)  # fmt: skip
    messages = {f["failure"]["message"] for f in df.attrs["failed"]}
    assert messages == {"a batched run function must return one outcome per (params, seed), in order: got 1 for 2 runs"}  # fmt: skip


def test_batch_key_groups_cells_that_differ(tmp_path: Path) -> None:
    sizes: list = []

    def many(runs: list[tuple[dict, int]]) -> list:
        sizes.append(sorted({p["arch"] for p, _ in runs}) + [len(runs)])
        return [{"v": p["lr"] + s} for p, s in runs]

    grid = expand_grid(arch=["a", "b"], lr=[0.1, 0.2, 0.3])
    run_grid("k", _value, grid, [0], tmp_path, progress=False, batch_runs=2, many=many,
             batch_key=lambda p: p["arch"])  # fmt: skip
    assert sizes == [["a", 2], ["a", 1], ["b", 2], ["b", 1]]


def test_bad_batching_arguments_say_what_is_valid(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_runs=2 needs many="):
        run_grid("x", _value, [{"a": 1}], [0], tmp_path, batch_runs=2)
    with pytest.raises(ValueError, match="batch_runs must be an int >= 1, got 0"):
        run_grid("x", _value, [{"a": 1}], [0], tmp_path, batch_runs=0, many=fns.many_square)
    with pytest.raises(ValueError, match="needs a picklable many"):
        run_grid("x", fns.square, [{"x": 1}, {"x": 2}], [0], tmp_path, workers=2, batch_runs=2,
                 many=lambda runs: [])  # fmt: skip
