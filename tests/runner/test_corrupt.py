"""Run records that heal (issue 18, item 9): a truncated ``runs/<id>.json`` or
``failed/<id>.json`` is named in a warning, moved into ``corrupt/`` and its run re-run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from survey_lib.runner import CorruptRecord, load_results, run_grid, run_id
from survey_lib.runner.results import read_record


def _truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def test_truncated_records_are_moved_aside_and_their_runs_rerun(tmp_path: Path) -> None:
    state = {"broken": True}
    calls: list = []

    def fn(params: dict, seed: int) -> dict:
        calls.append(params["a"])
        if params["a"] == 3 and state["broken"]:
            raise RuntimeError("diverged")
        return {"acc": float(params["a"])}

    grid = [{"a": 1}, {"a": 2}, {"a": 3}]
    kw = {"progress": False, "code_version": "v"}
    with pytest.warns(UserWarning, match="1 run\\(s\\) failed"):
        run_grid("exp", fn, grid, [0], tmp_path, **kw)
    folder = tmp_path / "exp"
    ok, bad = folder / "runs" / f"{run_id({'a': 2}, 0, 'v')}.json", folder / "failed" / f"{run_id({'a': 3}, 0, 'v')}.json"  # fmt: skip
    _truncate(ok)
    _truncate(bad)
    state["broken"] = False
    calls.clear()
    with pytest.warns(UserWarning) as caught:
        df = run_grid("exp", fn, grid, [0], tmp_path, **kw)
    messages = [str(w.message) for w in caught]
    assert any(f"run record {ok} is corrupt: not valid JSON" in m and "run again" in m for m in messages)  # fmt: skip
    assert any(f"run record {bad} is corrupt" in m for m in messages)
    assert sorted(calls) == [2, 3] and sorted(df.value) == [1.0, 2.0, 3.0]
    assert (folder / "corrupt" / "runs" / ok.name).read_text() != ok.read_text()
    assert (folder / "corrupt" / "failed" / bad.name).exists() and not bad.exists()
    assert read_record(ok)["metrics"] == {"acc": 2.0}
    moved = json.loads((folder / "provenance.json").read_text())["records_moved_to_corrupt"]
    assert sorted(moved) == sorted([str(folder / "corrupt" / "runs" / ok.name), str(folder / "corrupt" / "failed" / bad.name)])  # fmt: skip
    # the same record corrupt a second time: a second, time-stamped copy, nothing overwritten
    _truncate(ok)
    with pytest.warns(UserWarning, match="is corrupt"):
        run_grid("exp", fn, grid, [0], tmp_path, **kw)
    assert len(list((folder / "corrupt" / "runs").glob(f"{ok.stem}*.json"))) == 2


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"run_id": "abc", "par', "not valid JSON"),
        ("[1, 2]", "a JSON list, not an object"),
        ('{"run_id": "abc", "params": {}, "seed": 0}', "missing key\\(s\\) metrics"),
        ('{"run_id": "xyz", "params": {}, "seed": 0, "metrics": {"a": 1}}', "holds run 'xyz'"),
        ('{"run_id": "abc", "params": {}, "seed": 0, "metrics": {}}', "metrics is not a non-empty"),
    ],
)
def test_read_record_names_the_file_and_what_is_wrong(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "runs" / "abc.json"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(CorruptRecord, match=f"run record {path} is corrupt: {why}"):
        read_record(path)


def test_load_results_skips_a_corrupt_record_with_a_warning(tmp_path: Path) -> None:
    run_grid("exp", lambda p, s: {"acc": 1.0}, [{"a": 1}, {"a": 2}], [0], tmp_path, progress=False)  # fmt: skip
    path = next((tmp_path / "exp" / "runs").glob("*.json"))
    _truncate(path)
    with pytest.warns(UserWarning, match=f"run record {path} is corrupt.*skipped"):
        df = load_results(tmp_path / "exp")
    assert len(df) == 1
