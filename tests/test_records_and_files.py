"""Records and files (issue 18): results follow the umask, every run records the checksum of
the data it loaded, offline paper-profile weights fail fast with the override named, and a
notebook's failed runs are reported with their messages."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from survey_lib.io import atomic_write_json, atomic_write_text


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_results_files_follow_the_umask(tmp_path: Path, umask_022) -> None:
    path = atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert path.stat().st_mode & 0o777 == 0o644
    os.umask(0o077)
    assert atomic_write_text(tmp_path / "b.txt", "b").stat().st_mode & 0o777 == 0o600
    os.chmod(path, 0o664)  # replacing a file keeps its mode, as open(..., "w") would
    assert atomic_write_json(path, {"x": 2}).stat().st_mode & 0o777 == 0o664


def _loads_digits(params: dict, seed: int) -> dict:
    from survey_lib.data import get_dataset

    return {"n": float(len(get_dataset("digits", params["split"])))}


def test_every_run_records_the_checksum_of_the_data_it_loaded(tmp_path: Path) -> None:
    from survey_lib.data import get_dataset
    from survey_lib.runner import run_grid

    run_grid("g", _loads_digits, [{"split": "train"}, {"split": "test"}], [0], tmp_path,
             progress=False)
    records = [json.loads(p.read_text()) for p in (tmp_path / "g" / "runs").glob("*.json")]
    by_split = {r["params"]["split"]: r["provenance"]["dataset_checksum"] for r in records}
    for split in ("train", "test"):
        assert by_split[split] == f"digits/{split}:{get_dataset('digits', split).checksum}"
    grid = json.loads((tmp_path / "g" / "provenance.json").read_text())["dataset_checksum"]
    assert set(grid.split(";")) == set(by_split.values())


def test_paper_weights_offline_fail_fast_naming_tag_and_override(tmp_path, monkeypatch) -> None:
    from survey_lib.models import create_model
    from survey_lib.models.timm_backbone import WeightsUnavailableError

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as info:
        create_model("resnet50.tv_in1k", num_classes=10, in_chans=3, weights="pretrained")
    assert time.perf_counter() - start < 20
    message = str(info.value)
    assert "'resnet50.tv_in1k'" in message and "source.weights=" in message
    assert "weights='/path/model.safetensors'" in message


def test_unreachable_hub_fails_fast_without_offline_flag(tmp_path, monkeypatch) -> None:
    from survey_lib.models import timm_backbone

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(timm_backbone, "_reachable", lambda url, timeout: False)
    with pytest.raises(timm_backbone.WeightsUnavailableError, match="cannot be reached"):
        timm_backbone.check_weights_available("resnet50.tv_in1k")


def test_notebook_reports_failed_runs_and_stops_when_none_finished(capsys) -> None:
    from survey_lib.experiments.run_checks import GridFailed, report_failures

    failure = {"kind": "ValueError", "message": "lr must be a finite number > 0, got nan",
               "traceback": "long"}
    some = pd.DataFrame({"run_id": ["a", "a", "b"], "metric": ["x"] * 3, "value": [1.0] * 3})
    some.attrs["failed"] = [{"run_id": "c", "params": {"lr": float("nan"), "target":
                                                       {"name": "far"}}, "seed": 1,
                             "failure": failure}]
    assert report_failures(some, "lr_sweep") == 1
    out = capsys.readouterr().out
    assert "lr_sweep: 1 of 3 runs failed" in out and "lr must be a finite number" in out
    assert "target=far" in out and "long" not in out

    none = pd.DataFrame(columns=["run_id", "metric", "value"])
    none.attrs["failed"] = [{"run_id": "d", "params": {}, "seed": 0,
                             "failure": {"kind": "RunFailed", "step": 3, "value": "nan"}}]
    with pytest.raises(GridFailed, match=r"(?s)no run finished \(1 failed\).*seed=0: RunFailed"):
        report_failures(none, "regularizers")


def test_verdicts_on_an_incomplete_grid_are_marked() -> None:
    from survey_lib.experiments.verdicts import effect, mark_incomplete, verdict_table

    verdicts = [effect("c", [0.1, 0.2, 0.3], predicted="+", sesoi=0.5, sesoi_rule="test", what="x")]
    table = verdict_table(mark_incomplete(verdicts, 2))
    assert list(table["complete"]) == [False]
    assert "2 failed or missing runs" in table.loc[0, "bound_text"]
    full = verdict_table(mark_incomplete(verdicts, 0))
    assert list(full["complete"]) == [True]
