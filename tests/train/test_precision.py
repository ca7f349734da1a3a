"""What precision a run computed in, recorded per run, and protocols that never mislabel it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from survey_lib.runner import run_grid
from survey_lib.train import TrainConfig, fit
from survey_lib.train import precision as prec
from tests.train.tiny_model import TinyNet, tiny_data


def test_note_reset_and_used() -> None:
    prec.reset_precisions_used()
    assert prec.precisions_used() is None
    prec.note_precision("fp32")
    prec.note_precision("bf16")
    prec.note_precision("fp32")
    assert prec.precisions_used() == "bf16+fp32"
    prec.reset_precisions_used()
    assert prec.precisions_used() is None
    with pytest.raises(ValueError, match="precision must be one of"):
        prec.note_precision("fp16")


def test_protocol_for_device_turns_bf16_off_only_where_it_would_fall_back(monkeypatch) -> None:
    protocol = {"train": {"lr": 0.1, "amp_bf16": True},
                "targets": [{"train": {"amp_bf16": True}}, {"train": {"amp_bf16": False}}],
                "source": {"amp_bf16": None}}
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)
    out, changed = prec.protocol_for_device(protocol, "cpu")
    assert changed == ["train.amp_bf16", "targets[0].train.amp_bf16"]
    assert out["train"] == {"lr": 0.1, "amp_bf16": False}
    assert out["targets"][0]["train"]["amp_bf16"] is False
    assert out["source"]["amp_bf16"] is None  # None keeps its meaning (fp32 on the CPU)
    assert protocol["train"]["amp_bf16"] is True  # the input is not modified
    assert prec.protocol_for_device(protocol, "cuda") == (protocol, [])  # bf16 on CUDA
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    assert prec.protocol_for_device(protocol, "cpu") == (protocol, [])
    # what the book reads to say which precision a committed protocol uses
    assert prec.bf16_paths(protocol) == ["train.amp_bf16", "targets[0].train.amp_bf16"]
    assert prec.bf16_paths({"train": {"amp_bf16": False}, "x": [1, {"amp_bf16": None}]}) == []


def _train_one(params, seed):
    config = TrainConfig(epochs=1, batch_size=32, lr=0.1, device="cpu", seed=seed,
                         amp_bf16=params["amp"])
    result = fit(TinyNet(), tiny_data(), None, config, progress=False)
    return {"loss": float(result.history["train_loss"].iloc[-1])}


def test_each_run_record_says_what_it_computed_in(tmp_path: Path) -> None:
    run_grid("g", _train_one, [{"amp": False}, {"amp": True}], [0], tmp_path,
             progress=False, code_version="v")
    got = {}
    for path in (tmp_path / "g" / "runs").glob("*.json"):
        record = json.loads(path.read_text())
        got[record["params"]["amp"]] = record["provenance"]["precision"]
    bf16_here = prec.resolve_precision("cpu", True)
    assert got == {False: "fp32", True: bf16_here}
    grid = json.loads((tmp_path / "g" / "provenance.json").read_text())
    assert grid["precision"] == "+".join(sorted({"fp32", bf16_here}))


def test_the_driver_names_bf16_fallback_runs_apart(monkeypatch, capsys) -> None:
    from survey_lib import reproduce
    from survey_lib.experiments import common

    monkeypatch.setattr(common, "default_device", lambda: "cpu")
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: False)
    out = reproduce._precision_for_this_machine("nb", {"train": {"amp_bf16": True}})
    assert out == {"train": {"amp_bf16": False}}
    assert "no native bf16, so train.amp_bf16 -> false" in capsys.readouterr().out
    monkeypatch.setattr(prec, "cpu_has_native_bf16", lambda: True)
    assert reproduce._precision_for_this_machine("nb", {"train": {"amp_bf16": True}}) == {
        "train": {"amp_bf16": True}}
