"""The GPU entry checks (issue 12 items 2, 3) and the wall-time estimate, on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from survey_lib import estimate, gpu, reproduce

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_scale_without_cuda_refuses_with_the_facts(monkeypatch, capsys) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(gpu.CudaUnavailableError) as err:
        gpu.require_cuda("gpu")
    text = str(err.value)
    for fact in ("torch.version.cuda=", "driver=", "torch.cuda.is_available()=False", "580.65.06",
                 "--index-url https://download.pytorch.org/whl/cu126"):  # fmt: skip
        assert fact in text
    gpu.require_cuda("cpu")  # other scales never ask
    gpu.require_cuda("smoke")
    assert reproduce.main(["--scale", "gpu", "--no-book", "--only", "l2sp_vs_bss"]) == 2
    assert "SCALE=gpu needs a CUDA device" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("facts", "why"),
    [
        ({"torch.version.cuda": None, "driver": None}, "CPU-only wheel"),
        ({"torch.version.cuda": "13.0", "driver": None}, "no NVIDIA driver"),
        ({"torch.version.cuda": "13.0", "driver": "550.54.15"}, "older than 580.65.06"),
        ({"torch.version.cuda": "12.6", "driver": "560.35.03"}, "CUDA_VISIBLE_DEVICES"),
    ],
)
def test_cuda_message_names_the_reason(facts: dict, why: str) -> None:
    assert why in gpu.cuda_message({**facts, "torch.cuda.is_available()": False})


def test_determinism_only_on_cuda(monkeypatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    assert gpu.configure_determinism("cpu") is False
    assert not torch.are_deterministic_algorithms_enabled()
    calls = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda *a, **k: calls.append(k))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    assert gpu.configure_determinism("cuda:0") is True
    assert calls == [{"warn_only": True}]
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    import os

    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)


def test_gpu_check_script_stops_within_seconds_on_a_cpu_machine() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    start = time.perf_counter()
    out = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True,
                         text=True, timeout=120, env={"PATH": "/usr/bin:/bin",
                         "PYTHON": sys.executable, "PYTHONPATH": str(ROOT / "src")})  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert "SCALE=gpu needs a CUDA device" in out.stdout + out.stderr
    assert time.perf_counter() - start < 60


def _params(scale: str) -> dict:
    return {n: reproduce.load_params(n, scale, "offline", ROOT / "notebooks") for n in reproduce.NOTEBOOKS}


def test_step_counts_follow_the_protocol_formula() -> None:
    p = _params("gpu")["l2sp_vs_bss"]
    runs = estimate.training_runs("l2sp_vs_bss", p)
    source = [r for r in runs if r.grid == "source"]
    # 47 Latin classes x 250 images, batch 128, 40 epochs
    assert source == [estimate.Runs("l2sp_vs_bss", "source", "resnet_small/b128/frozen0/l2",
                                    40 * 92, 1)]  # fmt: skip
    far = [r for r in runs if r.grid == "regularizers" and r.config.endswith("/delta")]
    assert len(far) == 2 * 4 and all(r.count == len(p["seeds"]) for r in far)
    full_far = max(r.steps for r in far)  # fashion_mnist pool 10 x 1000 at 100 %, batch 64
    assert full_far == 20 * 157
    y = estimate.training_runs("yosinski_layer_transfer", _params("gpu")["yosinski_layer_transfer"])
    base = next(r for r in y if r.grid == "base")
    seeds = len(_params("gpu")["yosinski_layer_transfer"]["seeds"])
    assert base.steps == 20 * 118 and base.count == 2 * 2 * seeds  # 5 classes x 6000 / 256


def test_estimate_sums_steps_times_step_seconds(tmp_path) -> None:
    params = _params("gpu")
    params = {n: p for n, p in params.items() if n in estimate.WORKLOADS}
    keys = {r.config for n in params for r in estimate.training_runs(n, params[n])}
    measured = {"source": "test table", "step_seconds": {k: 0.01 for k in keys},
                "workers_speedup": {"1": 1.0, "4": 2.0}}  # fmt: skip
    path = tmp_path / "step_times.json"
    path.write_text(json.dumps(measured))
    out = estimate.estimate(list(params), params, estimate.load_measurements(path))
    assert out["workers"] == 4 and out["source"] == "test table"
    for row in out["notebooks"].values():
        assert row["seconds"] == pytest.approx(row["steps"] * 0.01 / 2.0)
    assert "min" in estimate.format_estimate(out, "gpu")


def test_estimate_without_measurements_says_so(tmp_path, capsys) -> None:
    m = estimate.load_measurements(tmp_path / "missing.json")
    assert "nothing measured" in m["source"]
    params = _params("gpu")
    text = estimate.format_estimate(estimate.estimate(list(params), params, m), "gpu")
    assert "unknown" in text and "scripts/gpu_check.sh" in text
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="step_seconds"):
        estimate.load_measurements(tmp_path / "bad.json")
    rc = reproduce.main(["--scale", "gpu", "--estimate"])
    assert rc in (0, 1) and "estimated wall time at scale=gpu" in capsys.readouterr().out


def test_nearest_frozen_count_is_used_and_marked() -> None:
    table = {"alexnet_small/b256/frozen0/l2": 1.0, "alexnet_small/b256/frozen4/l2": 0.5}
    assert estimate._nearest("alexnet_small/b256/frozen5/l2", table) == (
        0.5, "~alexnet_small/b256/frozen4/l2")  # fmt: skip
    assert estimate._nearest("resnet_small/b64/frozen0/l2", table) == (None, "unmeasured")
