"""The batched Yosinski cell gives run_cell's results (smoke-scale Fashion-MNIST protocol)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from survey_lib.experiments import yosinski
from survey_lib.experiments.yosinski_batched import run_cells

PARAMS = Path(__file__).parents[2] / "notebooks/params/yosinski_layer_transfer/smoke.yaml"


def test_batched_cells_match_run_cell(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    p = yaml.safe_load(PARAMS.read_text())
    common = {k: p[k] for k in ("dataset", "model", "size", "channels", "train_per_class",
                                "test_per_class", "train")}  # fmt: skip
    common |= {"options": {}, "checkpoint_dir": str(tmp_path / "ckpt")}
    grid = [
        {**common, "kind": "transfer", "split": "random", "source": "A", "n": 2, "freeze": True},
        {**common, "kind": "random_frozen", "split": "dissimilar", "source": "B", "n": 2,
         "freeze": True},
        {**common, "kind": "transfer", "split": "random", "source": "B", "n": 2, "freeze": True},
        {**common, "kind": "transfer", "split": "random", "source": "A", "n": 5, "freeze": False},
        {**common, "kind": "base", "split": "random", "half": "A"},
        {**common, "kind": "nonsense", "split": "random", "source": "A", "n": 1, "freeze": True},
    ]  # fmt: skip
    items = [(cell, seed) for cell in grid for seed in (0, 1)]
    batched = run_cells(items)
    for (cell, seed), got in zip(items, batched):
        if cell["kind"] == "nonsense":
            assert isinstance(got, ValueError) and "unknown kind" in str(got)
            continue
        want = yosinski.run_cell(cell, seed).metrics
        got = getattr(got, "metrics", got)  # base runs come back as run_cell's RunOutput
        # weights agree to ~1e-5; allow one of the 150 test images to flip
        assert got["test_acc"] == pytest.approx(want["test_acc"], abs=1 / 150 + 1e-9), (cell, seed)
