"""The batched L2-SP/BSS cell gives run_cell's results (smoke-scale protocol), batching the
penalties fit_many computes (L2, L2-SP) and handing the others (BSS) to fit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from survey_lib.experiments import l2sp_bss, l2sp_bss_batched
from survey_lib.runner import RunFailed, RunOutput

PARAMS = Path(__file__).parents[2] / "notebooks/params/l2sp_vs_bss/smoke.yaml"


def test_batched_cells_match_run_cell(tmp_path: Path, monkeypatch) -> None:
    torch.set_num_threads(1)
    p = yaml.safe_load(PARAMS.read_text())
    common = {"source": p["source"], "train": p["train"], "checkpoint_dir": str(tmp_path)}
    near = p["targets"]["near"]
    grid = [{**common, "target": near, "rate": 1.0, "method": m, "spec": p["methods"][m]}
            for m in ("L2", "L2-SP", "BSS")]  # fmt: skip
    grid.append({**grid[0], "train": {**p["train"], "lr": 0.03}, "lr": 0.03})  # an lr cell
    grid.append({**grid[0], "train": {**p["train"], "lr": 1e9}, "lr": 1e9})  # diverges
    items = [(cell, seed) for cell in grid for seed in (0, 1)]
    # every cell shares one batch key: only the method, the lr and the seed differ
    assert len({repr(l2sp_bss_batched.batch_group(c)) for c, _ in items}) == 1
    calls = []
    real = l2sp_bss_batched.fit_many

    def spy(models, *args, **kwargs):
        out = real(models, *args, **kwargs)
        calls.append([r.batched_runs for r in out])
        return out

    monkeypatch.setattr(l2sp_bss_batched, "fit_many", spy)
    batched = l2sp_bss_batched.run_cells(items)
    # one fit_many call: the 6 L2/L2-SP runs and the 2 diverging ones batched, BSS by fit
    assert len(calls) == 1 and sorted(calls[0]) == [1, 1] + [8] * 8
    n_test = None
    for (cell, seed), got in zip(items, batched):
        if cell.get("lr") == 1e9:
            assert isinstance(got, RunFailed), (cell["method"], seed)
            with pytest.raises(RunFailed):
                l2sp_bss.run_cell(cell, seed)
            continue
        want = l2sp_bss.run_cell(cell, seed)
        assert isinstance(got, RunOutput) and got.info == want.info  # the same source network
        if n_test is None:
            n_test = len(l2sp_bss.target_data(near, 1.0, seed, p["source"]["size"])[1])
        # weights agree to ~1e-5 (grouped kernels): allow one test image to flip
        assert got.metrics["test_acc"] == pytest.approx(want.metrics["test_acc"],
                                                        abs=1 / n_test + 1e-9), (cell, seed)
