"""The Kornblith paper protocol's new paths: lr x wd grids chosen on a validation split and
refit, targets at their whole published size (``k_rule: at_most``), and the committed paper
presets (trainval pools, published sizes among the ks, random-resized crops, the grids)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from survey_lib import reproduce
from survey_lib.experiments import common, kornblith
from survey_lib.experiments.common import fit_or_fail, load_split, new_model, train_config
from survey_lib.experiments.validate import parameter_problems
from survey_lib.models import dataset_stats
from survey_lib.protocol_files import unread_keys
from survey_lib.runner import RunFailed

ROOT = Path(__file__).resolve().parents[2]
NB = ROOT / "notebooks"
NAME = "kornblith_gains_vs_size"
TARGET = {"name": "digits", "dataset": "digits", "options": {}, "channels": 1,
          "train_split": "train", "test_split": "test", "test_per_class": 5}
SOURCE = {"dataset": "digits", "options": {}, "model": "alexnet_small", "size": 16,
          "channels": 1, "epochs": 1, "seed": 0,
          "train": {"lr": 0.05, "batch_size": 64, "weight_decay": 0.0, "augment": "none"}}
TRAIN = {"lr": 0.05, "batch_size": 32, "weight_decay": 0.0, "augment": "none", "device": "cpu"}


def _params(method: str, spec: dict, tmp_path: Path, k: int = 4) -> dict:
    return {"target": TARGET, "k": k, "method": method, "source": SOURCE, method: spec,
            "val_fraction": 0.25, "checkpoint_dir": str(tmp_path / "ckpt")}


# --- the grid -------------------------------------------------------------------------------


def test_grid_configs_order_and_wd_divided_by_lr() -> None:
    grid = {"lr": [0.1, 0.01], "weight_decay": [0.0, 1e-4]}
    assert kornblith.grid_configs(grid) == [(0.1, 0.0), (0.1, 1e-4), (0.01, 0.0), (0.01, 1e-4)]
    divided = kornblith.grid_configs({**grid, "divide_wd_by_lr": True})
    assert [wd for _, wd in divided] == pytest.approx([0.0, 1e-3, 0.0, 1e-2])
    for lr, wd in divided:  # the per-step shrinkage lr * wd is the grid value itself
        assert lr * wd in (0.0, pytest.approx(1e-4))


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"lr": [0.1], "weight_decay": [0.0], "wd": [1]}, r"unknown keys \['wd'\]; valid"),
        ({"lr": [], "weight_decay": [0.0]}, r"grid\.lr = \[\]; valid: a non-empty list"),
        ({"lr": [0.0], "weight_decay": [0.0]}, r"grid\.lr .*> 0"),
        ({"lr": [0.1], "weight_decay": [-1e-4]}, r"grid\.weight_decay .*>= 0"),
        ({"lr": [0.1], "weight_decay": [0.0], "divide_wd_by_lr": "yes"}, "true or false"),
    ],
)
def test_bad_grids_are_named(grid: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kornblith.grid_configs(grid)


def _fake_training(monkeypatch, val_scores: dict, fail: set = frozenset()) -> list:
    """Replace training and scoring: each trained model remembers its config; its validation
    accuracy is ``val_scores[lr, wd]``; the refit's test accuracy is 0.5."""
    calls = []

    def train_method(params, train, seed, steps, changes):
        key = (changes.get("lr"), changes.get("weight_decay"))
        calls.append({"n": len(train), "steps": steps, "key": key, "seed": seed})
        if key in fail:
            raise RunFailed({"step": 0, "value": math.nan})
        return SimpleNamespace(key=key), SimpleNamespace()

    def score(model, data, config):
        return 0.5 if len(data) == TEST_SIZE else val_scores[model.key]

    monkeypatch.setattr(kornblith, "_train_method", train_method)
    monkeypatch.setattr(kornblith, "test_accuracy", score)
    monkeypatch.setattr(kornblith, "test_metrics", lambda model, data, config: {
        "test_acc": score(model, data, config), "test_acc_mean_per_class": 0.25})
    monkeypatch.setattr(kornblith, "checkpoint_info", lambda model: {"checkpoints": {}})
    return calls


TEST_SIZE = 50  # digits' test split at 5 per class


def test_grid_searches_on_the_train_part_then_refits_the_best(tmp_path, monkeypatch) -> None:
    scores = {(0.1, 0.0): 0.3, (0.1, 1e-4): 0.6, (0.01, 0.0): 0.6, (0.01, 1e-4): 0.2}
    calls = _fake_training(monkeypatch, scores)
    spec = {"steps": 7, "train": TRAIN,
            "grid": {"lr": [0.1, 0.01], "weight_decay": [0.0, 1e-4], "steps": 3}}
    out = kornblith.run_cell(_params("scratch", spec, tmp_path, k=4), seed=2)
    search, refit = calls[:4], calls[4]
    assert len(calls) == 5
    # 4 per class, a quarter (one per class) held out for validation: 30 search, 40 refit images
    assert {c["n"] for c in search} == {30} and refit["n"] == 40
    assert [c["key"] for c in search] == list(scores) and {c["steps"] for c in search} == {3}
    assert refit["steps"] == 7 and refit["key"] == (0.1, 1e-4)  # the first of the tied best
    assert {c["seed"] for c in calls} == {2}
    assert out.metrics == {"test_acc": 0.5, "test_acc_mean_per_class": 0.25, "best_lr": 0.1,
                           "best_weight_decay": 1e-4, "best_val_acc": 0.6, "grid_failed": 0.0}


def test_diverged_configurations_lose_and_all_diverged_fails(tmp_path, monkeypatch) -> None:
    scores = {(0.1, 0.0): 0.9, (0.01, 0.0): 0.4}
    _fake_training(monkeypatch, scores, fail={(0.1, 0.0)})
    spec = {"steps": 2, "train": TRAIN, "grid": {"lr": [0.1, 0.01], "weight_decay": [0.0]}}
    out = kornblith.run_cell(_params("finetune", spec, tmp_path), seed=0)
    assert out.metrics["best_lr"] == 0.01 and out.metrics["grid_failed"] == 1.0
    _fake_training(monkeypatch, scores, fail=set(scores))
    with pytest.raises(RunFailed, match="all 2 grid configurations diverged"):
        kornblith.run_cell(_params("finetune", spec, tmp_path), seed=0)


def test_grid_needs_a_validation_split(tmp_path, monkeypatch) -> None:
    _fake_training(monkeypatch, {})
    spec = {"steps": 2, "train": TRAIN, "grid": {"lr": [0.1], "weight_decay": [0.0]}}
    with pytest.raises(ValueError, match="at least 2 images per class"):
        kornblith.run_cell(_params("scratch", spec, tmp_path, k=1), seed=0)
    params = _params("scratch", spec, tmp_path)
    del params["val_fraction"]
    with pytest.raises(ValueError, match="val_fraction"):
        kornblith.run_cell(params, seed=0)


def _scratch_before_grids(params: dict, seed: int) -> float:
    """The random-init run as run_cell did it before grids existed (the reference)."""
    source, spec = params["source"], params["scratch"]
    train, test = kornblith.target_data(params["target"], params["k"], seed, source["size"])
    epochs = max(1, math.ceil(int(spec["steps"]) * int(spec["train"]["batch_size"]) / len(train)))
    stats = dataset_stats(train)
    model = new_model(source["model"], train.num_classes, int(source.get("channels", 1)), seed)
    config = train_config({**spec["train"], "epochs": epochs}, seed, stats)
    fit_or_fail(model, train, None, config)
    return common.test_metrics(model, test, config)


def test_without_a_grid_runs_are_as_before_and_a_grid_refit_is_such_a_run(tmp_path) -> None:
    spec = {"steps": 3, "train": TRAIN}
    params = _params("scratch", spec, tmp_path, k=4)
    plain = kornblith.run_cell(params, seed=1)
    # as before, plus the mean per-class accuracy of the same predictions
    assert plain.metrics == _scratch_before_grids(params, 1)
    assert set(plain.metrics) == {"test_acc", "test_acc_mean_per_class"}
    grid = {"lr": [0.02, 0.2], "weight_decay": [0.0], "steps": 2}
    tuned = kornblith.run_cell(_params("scratch", {**spec, "grid": grid}, tmp_path), seed=1)
    best = tuned.metrics["best_lr"]
    assert best in grid["lr"] and tuned.metrics["best_weight_decay"] == 0.0
    assert 0.0 <= tuned.metrics["best_val_acc"] <= 1.0
    refit = {"steps": 3, "train": {**TRAIN, "lr": best}}
    same = kornblith.run_cell(_params("scratch", refit, tmp_path), seed=1)
    assert tuned.metrics["test_acc"] == same.metrics["test_acc"]
    assert tuned.metrics["test_acc_mean_per_class"] == same.metrics["test_acc_mean_per_class"]


# --- whole published training sets ----------------------------------------------------------


def test_k_rule_at_most_keeps_small_classes_whole() -> None:
    counts = torch.bincount(load_split("digits", "train", size=None).labels).tolist()
    big = max(counts) + 5
    with pytest.raises(ValueError, match="fewer than k"):
        kornblith.target_data(TARGET, big, 0, 16)
    train, _ = kornblith.target_data({**TARGET, "k_rule": "at_most"}, big, 0, 16)
    assert torch.bincount(train.labels).tolist() == counts  # every image of every class
    small = min(counts) - 1  # every class large enough: exactly the k_per_class draw
    a, _ = kornblith.target_data({**TARGET, "k_rule": "at_most"}, small, 3, 16)
    b, _ = kornblith.target_data(TARGET, small, 3, 16)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    with pytest.raises(ValueError, match=r"k_rule 'all'; valid: \('exactly', 'at_most'\)"):
        kornblith.target_data({**TARGET, "k_rule": "all"}, 5, 0, 16)
    assert torch.bincount(b.labels).tolist() == [small] * 10


# --- the committed paper presets ------------------------------------------------------------


def test_published_preset_is_the_published_protocol() -> None:
    p = reproduce.load_params(NAME, "published", "paper", NB)
    targets = {t["name"]: t for t in p["targets"]}
    assert {n: t["train_split"] for n, t in targets.items()} == {
        "caltech101": "train", "oxford_pets": "train", "flowers102": "trainval",
        "dtd": "trainval", "fgvc_aircraft": "trainval"}
    published = {"caltech101": 30, "oxford_pets": 100, "flowers102": 20, "dtd": 80,
                 "fgvc_aircraft": 67}
    for name, size in published.items():  # trained at the published size, tested on all
        assert targets[name]["max_k"] == size and size in p["ks"]
        assert targets[name]["test_per_class"] is None
    assert targets["oxford_pets"]["k_rule"] == targets["fgvc_aircraft"]["k_rule"] == "at_most"
    for method, lrs, steps in (("finetune", (1e-4, 0.1), 20000), ("scratch", (1e-3, 1.0), 40000)):
        spec = p[method]
        assert spec["steps"] == steps and spec["train"]["augment"] == "rrc_flip"
        assert spec["train"]["batch_size"] == 256 and spec["train"]["nesterov"] is True
        grid = spec["grid"]
        assert grid["divide_wd_by_lr"] is True and "steps" not in grid
        assert len(kornblith.grid_configs(grid)) == 7 * 8
        assert np.allclose(grid["lr"], np.logspace(*np.log10(lrs), 7))
        assert grid["weight_decay"][0] == 0.0
        assert np.allclose(grid["weight_decay"][1:], np.logspace(-6, -3, 7))


def test_paper_gpu_keeps_grids_and_trainval_pools() -> None:
    p = reproduce.load_params(NAME, "gpu", "paper", NB)
    for method in ("finetune", "scratch"):
        grid = p[method]["grid"]
        assert len(kornblith.grid_configs(grid)) >= 4 and grid["steps"] < p[method]["steps"]
        assert p[method]["train"]["augment"] == "rrc_flip"
    assert [t["train_split"] for t in p["targets"]][2:] == ["trainval"] * 3


def test_schema_checks_grids_and_k_rules() -> None:
    p = reproduce.load_params(NAME, "published", "paper", NB)
    assert parameter_problems(NAME, p) == [] and unread_keys(NAME, p) == []
    bad = reproduce.apply_overrides(p, {"finetune.grid.lr": [], "scratch.grid.wd": [0.1]})
    bad["targets"][1]["k_rule"] = "all"
    problems = "\n".join(parameter_problems(NAME, bad))
    assert "finetune.grid.lr = []" in problems
    assert "targets[1].k_rule = 'all'" in problems and "'exactly' (k per class)" in problems
    assert "scratch.grid" in problems and "wd" in problems
    assert unread_keys(NAME, bad) == ["scratch.grid.wd"]


def test_probe_limits_pass_known_keys_and_reject_others() -> None:
    from survey_lib.experiments.kornblith import _probe_limits

    assert _probe_limits(None) == {}
    assert _probe_limits({"max_iter": 20, "tol": 1e-3}) == {"max_iter": 20, "tol": 1e-3}
    with pytest.raises(ValueError, match=r"probe: unknown keys \['iters'\]; valid: max_iter, tol"):
        _probe_limits({"iters": 20})


def test_permutation_text_says_why_there_is_no_p() -> None:
    from types import SimpleNamespace

    assert kornblith._permutation_text(SimpleNamespace(p_value=0.25, min_p=0.083)) == (
        "p = 0.250, smallest attainable 0.083")
    text = kornblith._permutation_text(SimpleNamespace(p_value=float("nan"), min_p=float("nan")))
    assert "nan" not in text and "fewer than two units" in text
