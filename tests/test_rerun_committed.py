"""scripts/rerun_committed.py: re-run committed run records and compare their metrics."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_grid_of_the_notebooks_has_its_run_function(load_script) -> None:
    script = load_script("rerun_committed")
    used = {}
    for nb in (ROOT / "notebooks").glob("*.md"):
        for grid, fn in re.findall(r'run_grid\(\s*"(\w+)",\s*([\w.]+)', nb.read_text()):
            used[grid] = fn.split(".")[-1]
    assert used and set(used) == set(script.RUN_FUNCTIONS)
    for grid, fn in used.items():
        module, name = script.RUN_FUNCTIONS[grid].split(":")
        assert name == fn and callable(getattr(importlib.import_module(module), name)), grid


def test_identical_metrics_pass_and_a_changed_one_fails(
    tmp_path: Path, monkeypatch, capsys, load_script
) -> None:
    import torch

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # the test process keeps its own
    (tmp_path / "cellmod.py").write_text(
        "def run(params, seed):\n    return {'acc': params['x'] * 10 + seed}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    script = load_script("rerun_committed")
    monkeypatch.setattr(script, "RUN_FUNCTIONS", {"g": "cellmod:run"})
    runs = tmp_path / "g" / "runs"
    runs.mkdir(parents=True)
    for i, (x, seed, acc) in enumerate([(1, 0, 10), (2, 1, 21), (3, 0, 99)]):
        record = {"run_id": f"r{i}", "params": {"x": x, "t": {"name": f"n{x}"}}, "seed": seed,
                  "metrics": {"acc": acc}, "provenance": {"code_version": "abc"}}
        (runs / f"r{i}.json").write_text(json.dumps(record))
    grid = str(tmp_path / "g")
    (tmp_path / "g" / "provenance.json").write_text(
        json.dumps({"workers": 2, "device": {"cpu_count": 4}}))
    assert script.main([grid, "--seed", "0", "--match", "t.name=n1"]) == 0
    out = capsys.readouterr().out
    assert "identical" in out and "threads: 2" in out  # 4 cpus over 2 workers, as they ran
    assert script.main([grid, "--match", "x=3"]) == 1  # committed 99, now 30
    assert "DIFFERENT" in capsys.readouterr().out
    assert script.main([grid, "--match", "x=4"]) == 1  # nothing matches
    assert "matches" in capsys.readouterr().err
    del sys.modules["cellmod"]
