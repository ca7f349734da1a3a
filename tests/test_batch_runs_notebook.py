"""A protocol opts into batched training with ``batch_runs`` (issue 13): the Yosinski notebook
passes it to its transfer grids with the batched cell, and the runs come back one record each."""

from __future__ import annotations

import json
from pathlib import Path

from survey_lib import reproduce

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def _run(name: str, override: str, root: Path) -> reproduce.NotebookOutcome:
    return reproduce.run_notebook(name, "smoke", "offline", reproduce.parse_overrides([override]),
                                  notebooks_dir=NOTEBOOKS, results_root=root)  # fmt: skip


def test_batch_runs_trains_the_transfer_grids_in_batches(tmp_path: Path) -> None:
    outcome = _run("yosinski_layer_transfer", "batch_runs=2", tmp_path)
    assert outcome.status == "ok", outcome.error
    folder = next(tmp_path.glob("smoke-set-batch_runs-2-*/yosinski_layer_transfer"))
    for grid, batched in (("base", False), ("transfer", True), ("glyphs_transfer", True)):
        records = [json.loads(p.read_text()) for p in (folder / grid / "runs").glob("*.json")]
        assert records, grid
        sizes = [(r.get("provenance") or {}).get("batch", {}).get("size") for r in records]
        if batched:  # the smoke protocol has 2 seeds per cell: every batch holds both
            assert set(sizes) == {2}, (grid, sizes)
            provenance = json.loads((folder / grid / "provenance.json").read_text())
            assert provenance["batch_runs"] == 2
        else:  # base runs train and cache the source networks one by one
            assert set(sizes) == {None}, (grid, sizes)
    assert (folder / "verdicts.csv").is_file()


def test_batch_runs_below_one_is_refused_before_any_run(tmp_path: Path) -> None:
    outcome = _run("yosinski_layer_transfer", "batch_runs=0", tmp_path)
    assert outcome.status == "failed" and "batch_runs = 0" in outcome.error
    assert not any(tmp_path.rglob("runs"))


def test_l2sp_notebook_batches_methods_lrs_and_seeds_together(tmp_path: Path) -> None:
    outcome = _run("l2sp_vs_bss", "batch_runs=4", tmp_path)
    assert outcome.status == "ok", outcome.error
    folder = next(tmp_path.glob("smoke-set-batch_runs-4-*/l2sp_vs_bss"))
    for grid in ("regularizers", "lr_sweep"):
        records = [json.loads(p.read_text()) for p in (folder / grid / "runs").glob("*.json")]
        batches = {}
        for r in records:
            batch = r["provenance"]["batch"]
            batches.setdefault((batch["key"], batch["started"]), []).append(r)
        assert max(len(b) for b in batches.values()) == 4, grid  # full batches of 4 runs
        # a batch may mix methods (regularizers) and learning rates (lr_sweep): batch_group
        mixed = [b for b in batches.values() if len({json.dumps(r["params"].get("spec"),
                 sort_keys=True) + str(r["params"].get("lr")) for r in b}) > 1]  # fmt: skip
        assert mixed, grid
    assert (folder / "verdicts.csv").is_file()
