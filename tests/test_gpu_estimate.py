"""The GPU entry checks (issue 12 items 2, 3) and the GPU-time estimate (offline scales and the
paper presets, issue 19), on the CPU."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from survey_lib import estimate, gpu, reproduce
from survey_lib.estimate import prior as stated_prior
from survey_lib.estimate.runs import StepConfig, per_class

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


NB = ROOT / "notebooks"


def _params(scale: str, profile: str = "offline") -> dict:
    names = reproduce.PUBLISHED_NOTEBOOKS if scale == "published" else reproduce.NOTEBOOKS
    return {n: reproduce.load_params(n, scale, profile, NB) for n in names}


def _steps(runs: list, grid: str) -> list[tuple[int, int]]:
    return sorted((r.steps, r.count) for r in runs if r.grid == grid)


def test_step_counts_follow_the_protocol_formula() -> None:
    p = _params("gpu")["l2sp_vs_bss"]
    runs = estimate.training_runs("l2sp_vs_bss", p)
    source = [r for r in runs if r.grid == "source"]
    # 47 Latin classes x 250 images, batch 128, 40 epochs
    assert [(r.config, r.steps, r.count) for r in source] == [
        (f"resnet_small/b128/frozen0/l2/s{p['source']['size']}", 40 * 92, 1)]
    far = [r for r in runs if r.grid == "regularizers" and "/delta" in r.config]
    assert len(far) == 2 * 4 and all(r.count == len(p["seeds"]) for r in far)
    full_far = max(r.steps for r in far)  # fashion_mnist pool 10 x 1000 at 100 %, batch 64
    assert full_far == 20 * 157
    y = estimate.training_runs("yosinski_layer_transfer", _params("gpu")["yosinski_layer_transfer"])
    base = next(r for r in y if r.grid == "base")
    seeds = len(_params("gpu")["yosinski_layer_transfer"]["seeds"])
    assert base.steps == 20 * 118 and base.count == 2 * 2 * seeds  # 5 classes x 6000 / 256


def test_paper_dataset_sizes_come_from_the_data_cards() -> None:
    assert per_class("fgvc_aircraft", "trainval") == 66  # 6,667 / 100
    assert per_class("fgvc_aircraft", "train", 100) == 33  # 3,334 / 100
    assert per_class("flowers102", "trainval") == 20  # train + val where the card has no trainval
    assert per_class("caltech101", "train") == 30 and per_class("cifar100", "train") == 500
    with pytest.raises(ValueError, match="no size known for dataset 'nope'"):
        per_class("nope", "train")
    with pytest.raises(ValueError, match="valid: test, train, trainval, val"):
        per_class("fgvc_aircraft", "extra")


def test_published_presets_count_the_papers_training() -> None:
    pub, gpu_ = _params("published", "paper"), _params("gpu", "paper")
    l2 = estimate.training_runs("l2sp_vs_bss", pub["l2sp_vs_bss"])
    # Aircraft trainval (6,667 images) at 100 %, batch 48 with drop_last: 138 steps an epoch,
    # TLlib's 10k iterations -> 73 whole epochs (the first epoch boundary at or after 10k)
    assert pub["l2sp_vs_bss"]["iterations"] == 10000 and pub["l2sp_vs_bss"]["train"]["drop_last"]
    far = [r for r in l2 if r.grid == "regularizers" and r.steps == 73 * 138]
    assert len(far) == len(pub["l2sp_vs_bss"]["methods"])
    assert {r.config.split("/")[-1] for r in l2} == {"s224"}
    assert any(r.config == "resnet50/b48/frozen0/delta/s224" for r in l2)
    k = estimate.training_runs("kornblith_gains_vs_size", pub["kornblith_gains_vs_size"])
    # Caltech-101 at k = 30: 3,030 images, 20k steps x 256 -> 1,690 epochs of 12 batches
    assert (1690 * 12, 5) in _steps(k, "gains/finetune")
    assert not [r for r in k if r.grid == "source"]  # given weights: nothing trained
    for name in reproduce.PUBLISHED_NOTEBOOKS:  # the stated reductions cut the steps
        total = {s: sum(r.steps * r.count for r in estimate.training_runs(name, p[name]))
                 for s, p in (("published", pub), ("gpu", gpu_))}
        assert 0 < total["gpu"] < total["published"], name


def test_a_validation_grid_adds_its_runs_and_the_refit() -> None:
    p = copy.deepcopy(_params("published", "paper")["kornblith_gains_vs_size"])
    for method in ("finetune", "scratch"):  # the preset's own grids off: one grid at a time
        p[method].pop("grid", None)
    plain = _steps(estimate.training_runs("kornblith_gains_vs_size", p), "gains/finetune")
    p["finetune"]["grid"] = {"lr": [0.001, 0.01, 0.1], "weight_decay": [0.0, 0.0001]}
    runs = estimate.training_runs("kornblith_gains_vs_size", p)
    assert _steps(runs, "gains/finetune") == plain  # the refit on all k
    grid = [r for r in runs if r.grid == "gains/finetune/grid"]
    assert len(grid) == len(plain) and all(r.count == 6 * len(p["seeds"]) for r in grid)
    assert not [r for r in runs if r.grid == "gains/scratch/grid"]
    # scalar grid options are not axes; a grid's own `steps` sets its search runs' length
    p["finetune"]["grid"].update({"divide_wd_by_lr": True, "steps": 100})
    runs = estimate.training_runs("kornblith_gains_vs_size", p)
    grid = [r for r in runs if r.grid == "gains/finetune/grid"]
    assert all(r.count == 6 * len(p["seeds"]) for r in grid)
    assert all(r.steps < plain_steps for r, plain_steps in zip(grid, [s for s, _ in plain]))


def test_the_two_new_notebooks_are_counted() -> None:
    q = estimate.training_runs("best_practice_quadrants",
                               _params("gpu", "paper")["best_practice_quadrants"])
    # small_near: Pets 10 per class x 37 = 370 images, batch 64, 10 epochs; 8 arms + advised
    small_near = [r for r in q if r.grid == "arms" and r.steps == 10 * 6]
    assert sum(r.count for r in small_near) == 9 * 5
    assert any(r.config == "resnet50/b64/frozenall/l2/s224" for r in q)
    t = estimate.training_runs("transferability_ranking",
                               _params("gpu", "paper")["transferability_ranking"])
    # DTD at k = 10: 470 images, 200 steps x 64 -> 28 epochs of 8 batches, per model and seed
    dtd = [r for r in t if r.grid == "ranking" and r.steps == 28 * 8]
    assert len(dtd) == 12 and not [r for r in t if r.grid == "zoo"]  # 12 given-weight models
    offline = estimate.training_runs("transferability_ranking", _params("gpu")["transferability_ranking"])
    assert len([r for r in offline if r.grid == "zoo"]) == 12  # 14 entries, 2 random-init


def test_prior_follows_its_stated_formula(monkeypatch) -> None:
    monkeypatch.setattr(stated_prior, "model_profile", lambda *a: (1e9, 6))
    base = StepConfig("m", 100, size=32)
    r, t0 = stated_prior.ASSUMED_TFLOPS * 1e12, stated_prior.STEP_OVERHEAD_S
    assert stated_prior.prior_step_seconds(base) == pytest.approx(t0 + 100 * 1e9 * 3 / r)
    frozen = StepConfig("m", 100, frozen="all", size=32)
    assert stated_prior.prior_step_seconds(frozen) == pytest.approx(t0 + 100 * 1e9 / r)
    half = StepConfig("m", 100, frozen=5, size=32)  # 5 of 6 units: all but the head
    assert stated_prior.prior_step_seconds(half) == pytest.approx(t0 + 100 * 1e9 / r)
    delta = StepConfig("m", 100, method="delta", size=32)
    assert stated_prior.prior_step_seconds(delta) == pytest.approx(t0 + 100 * 1e9 * 4 / r)


def test_prior_counts_the_flops_of_every_conv_and_linear_layer() -> None:
    from survey_lib.models import create_model

    net = create_model("alexnet_small", num_classes=10, in_chans=3).eval()
    macs = []

    def hook(module, inputs, output) -> None:
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            macs.append(output.numel() * module.in_channels // module.groups * k)
        else:
            macs.append(module.in_features * module.out_features * output.shape[0])

    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        net(torch.zeros(1, 3, 32, 32))
    flops, units = stated_prior.model_profile("alexnet_small", 32, 3)
    assert flops == pytest.approx(2 * sum(macs), rel=0.02) and units == len(list(net.units()))


def test_estimate_sums_steps_times_step_seconds(tmp_path) -> None:
    params = _params("gpu")
    keys = {r.config for n in params for r in estimate.training_runs(n, params[n])}
    measured = {"source": "test table", "step_seconds": {k: 0.01 for k in keys},
                "workers_speedup": {"1": 1.0, "4": 2.0}}  # fmt: skip
    path = tmp_path / "step_times.json"
    path.write_text(json.dumps(measured))
    out = estimate.estimate(list(params), params, estimate.load_measurements(path), prior=None)
    assert out["workers"] == 4 and out["source"] == "test table"
    for row in out["notebooks"].values():
        assert row["seconds"] == pytest.approx(row["steps"] * 0.01 / 2.0)
        assert row["basis"] == "measured" and row["prior_seconds"] == 0
    assert "(measured)" in estimate.format_estimate(out, "gpu")


def test_estimate_without_measurements_uses_the_stated_prior_and_says_so(tmp_path) -> None:
    m = estimate.load_measurements(tmp_path / "missing.json")
    assert "nothing measured" in m["source"]
    params = _params("gpu")
    none = estimate.estimate(list(params), params, m, prior=None)
    assert all(r["seconds"] is None for r in none["notebooks"].values())
    assert "unknown" in estimate.format_estimate(none, "gpu")
    out = estimate.estimate(list(params), params, m, prior=lambda step: 0.02)
    for row in out["notebooks"].values():
        assert row["basis"] == "prior" and row["seconds"] == pytest.approx(row["steps"] * 0.02)
    text = estimate.format_estimate(out, "gpu")
    assert "fitted to no measurement" in text and "scripts/gpu_check.sh" in text
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="step_seconds"):
        estimate.load_measurements(tmp_path / "bad.json")


def test_measured_and_prior_mix_per_configuration(tmp_path) -> None:
    params = {"l2sp_vs_bss": _params("gpu")["l2sp_vs_bss"]}
    runs = estimate.training_runs("l2sp_vs_bss", params["l2sp_vs_bss"])
    measured = {"step_seconds": {runs[0].config: 0.5}, "workers_speedup": {"1": 1.0}}
    out = estimate.estimate(["l2sp_vs_bss"], params, measured, prior=lambda step: 0.01)
    row = out["notebooks"]["l2sp_vs_bss"]
    assert row["basis"] == "measured + prior"
    timed = sum(r.steps * r.count for r in runs if estimate._nearest(r.config, measured["step_seconds"])[0])
    assert row["seconds"] == pytest.approx(timed * 0.5 + (row["steps"] - timed) * 0.01)


def test_preset_table_has_every_notebook_and_paper_preset(monkeypatch, capsys) -> None:
    monkeypatch.setattr(stated_prior, "prior_step_seconds", lambda step: 0.01)
    rc = reproduce.main(["--profile", "paper", "--estimate"])
    out = capsys.readouterr().out
    assert rc == 1  # nothing is measured yet
    assert "| notebook | paper-smoke | paper-cpu | paper-gpu | paper-published |" in out
    for name in reproduce.NOTEBOOKS:
        line = next(x for x in out.splitlines() if x.startswith(f"| {name} |"))
        cells = [c.strip() for c in line.strip("|").split("|")][1:]
        assert len(cells) == 4 and "unknown" not in cells
        assert (cells[3] == "—") == (name not in reproduce.PUBLISHED_NOTEBOOKS)
    assert "fitted to no measurement" in out and "estimates, not measurements" in out
    rows = estimate.preset_table(["l2sp_vs_bss"], ["gpu"], lambda n, s: _params("gpu", "paper")[n],
                                 {"step_seconds": {}}, prior=lambda step: 0.01)
    steps = sum(r.steps * r.count for r in estimate.training_runs(
        "l2sp_vs_bss", _params("gpu", "paper")["l2sp_vs_bss"]))
    assert rows == [{"notebook": "l2sp_vs_bss", "preset": "gpu", "steps": steps,
                     "hours": pytest.approx(steps * 0.01 / 3600), "basis": "prior"}]


def test_one_preset_estimate_names_the_preset(monkeypatch, capsys) -> None:
    monkeypatch.setattr(stated_prior, "prior_step_seconds", lambda step: 0.01)
    rc = reproduce.main(["--profile", "paper", "--scale", "published", "--estimate"])
    out = capsys.readouterr().out
    assert rc == 1 and "profile=paper preset=published" in out
    assert all(n in out for n in reproduce.PUBLISHED_NOTEBOOKS)
    assert "transferability_ranking" not in out


def test_nearest_frozen_count_is_used_and_marked() -> None:
    table = {"alexnet_small/b256/frozen0/l2": 1.0, "alexnet_small/b256/frozen4/l2": 0.5}
    assert estimate._nearest("alexnet_small/b256/frozen5/l2/s32", table) == (
        0.5, "~alexnet_small/b256/frozen4/l2")  # fmt: skip
    assert estimate._nearest("resnet_small/b64/frozen0/l2", table) == (None, "unmeasured")
    sized = {"resnet50/b48/frozen0/l2/s224": 0.1}
    assert estimate._nearest("resnet50/b48/frozen0/l2/s224", sized) == (0.1, "")
    assert estimate._nearest("resnet50/b48/frozen0/l2/s112", sized) == (None, "unmeasured")
    assert estimate._nearest("resnet50/b48/frozenall/delta/s224", sized)[0] == 0.1


@pytest.mark.slow
def test_readme_estimate_block_matches_the_estimate() -> None:
    """The README's GPU-hours table is the estimate's own output (it says it is an estimate)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- estimate:begin -->")[1].split("<!-- estimate:end -->")[0]
    measured = estimate.load_measurements()

    def load(name: str, preset: str):
        if preset == "published" and name not in reproduce.PUBLISHED_NOTEBOOKS:
            return None
        return reproduce.load_params(name, preset, "paper", NB)

    rows = estimate.preset_table(list(reproduce.NOTEBOOKS), list(reproduce.SCALES), load, measured)
    assert estimate.format_presets(rows, measured).strip() in block
