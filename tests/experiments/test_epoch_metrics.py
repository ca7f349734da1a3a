"""Metrics over a run's epochs (TLlib's best epoch, Yosinski's mean of the 10 best), the TLlib
iteration count, and the protocol checks of the paper options of both notebooks."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from survey_lib import reproduce
from survey_lib.experiments import epoch_metrics as em
from survey_lib.experiments import validate
from survey_lib.experiments.l2sp_bss import epochs_for_iterations, steps_per_epoch
from survey_lib.experiments.validate import parameter_problems

NB = Path(__file__).resolve().parents[2] / "notebooks"


def test_best_epoch_and_top_k_mean_by_hand() -> None:
    accs = [0.1, 0.5, math.nan, 0.3, 0.4]
    assert em.best_epoch(accs) == 0.5
    assert em.top_k_mean(accs, 2) == pytest.approx(0.45)
    assert em.top_k_mean(accs, 10) == pytest.approx((0.1 + 0.5 + 0.3 + 0.4) / 4)  # all 4 run
    twelve = [i / 100 for i in range(12)]  # the 10 best of 12: 0.02 .. 0.11
    assert em.top_k_mean(twelve) == pytest.approx(sum(twelve[2:]) / 10)
    with pytest.raises(ValueError, match="no evaluated epoch"):
        em.best_epoch([math.nan])


def test_from_history_needs_the_per_epoch_test_column() -> None:
    history = pd.DataFrame({"epoch": [0, 1, 2], "test_acc": [0.2, 0.6, 0.4]})
    assert em.from_history(history, ["test_acc_best_epoch", "test_acc_top10_mean"]) == {
        "test_acc_best_epoch": 0.6, "test_acc_top10_mean": pytest.approx(0.4)}
    assert em.from_history(history.drop(columns="test_acc"), []) == {}
    with pytest.raises(ValueError, match="eval_sets"):
        em.from_history(history.drop(columns="test_acc"), ["test_acc_best_epoch"])
    with pytest.raises(ValueError, match="unknown; valid: test_acc_best_epoch"):
        em.from_history(history, ["best"])


def test_validate_knows_exactly_the_epoch_metrics() -> None:
    assert set(validate._EPOCH_METRIC_NAMES) == set(em.EPOCH_METRICS)
    assert em.describe("test_acc").endswith("final epoch")


def test_label_columns_only_when_asked() -> None:
    table = pd.DataFrame({"claim": ["1"]})
    assert em.label_columns(table, "test_acc", []) is table
    assert em.label_columns(table, "test_acc", ["test_acc_best_epoch"]).metric.tolist() == [
        "test_acc"]
    best = em.label_columns(table, "test_acc_best_epoch", ["test_acc_best_epoch"])
    assert best.metric.tolist() == ["test_acc_best_epoch"]


def test_tllib_iterations_become_whole_epochs() -> None:
    # TLlib: 10k iterations x 48 whatever the rate; 6667 Aircraft trainval images drop_last
    assert steps_per_epoch(6667, 48, True) == 138
    assert epochs_for_iterations(10_000, 6667, 48, True) == 73  # 73 x 138 = 10074 >= 10000
    assert epochs_for_iterations(10_000, 1000, 48, True) == 500  # 15 %: 20 steps an epoch
    assert epochs_for_iterations(5, 200, 64, False) == 2
    with pytest.raises(ValueError, match="no training steps"):
        epochs_for_iterations(10, 20, 48, True)
    assert em.eval_every_epochs(500, 138) == 4 and em.eval_every_epochs(500, 900) == 1
    assert em.eval_every_epochs(None, 7) == 1


def _load(name: str, scale: str) -> dict:
    return reproduce.load_params(name, scale, "paper", NB)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"epoch_metrics": ["best"]}, "epoch_metrics"),
        ({"metric": "test_acc_best_epoch", "epoch_metrics": []},
         "add 'test_acc_best_epoch' to epoch_metrics"),
        ({"both_directions": ["diagonal"]}, "both_directions"),
        ({"splits": ["random"], "both_directions": ["dissimilar"]}, "not in splits"),
        ({"frozen_dropout": True, "model": "resnet_small"}, "no dropout outside its units"),
        ({"frozen_dropout": "yes"}, "frozen_dropout"),
    ],
)
def test_yosinski_paper_options_are_checked(change: dict, needle: str) -> None:
    params = {**_load("yosinski_layer_transfer", "smoke"), **change}
    problems = parameter_problems("yosinski_layer_transfer", params)
    assert any(needle in p for p in problems), problems


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"train": {"epochs": 3, "lr": 0.01}, "iterations": 10}, "not read when iterations"),
        ({"train": {"lr": 0.01}, "iterations": None}, "train.epochs is missing"),
        ({"eval_every_iterations": 5, "epoch_metrics": []}, "read only with epoch_metrics"),
        ({"metric": "test_acc_top10_mean"}, "not recorded by this protocol"),
        ({"iterations": 0}, "iterations"),
    ],
)
def test_l2sp_paper_options_are_checked(change: dict, needle: str) -> None:
    params = {**_load("l2sp_vs_bss", "smoke"), **change}
    problems = parameter_problems("l2sp_vs_bss", params)
    assert any(needle in p for p in problems), problems


@pytest.mark.parametrize("name", ["yosinski_layer_transfer", "l2sp_vs_bss"])
def test_offline_protocols_pass_with_the_notebook_defaults(name: str) -> None:
    for scale in ("smoke", "cpu", "gpu"):
        params = reproduce.load_params(name, scale, "offline", NB)
        defaults = {"epoch_metrics": [], "metric": "test_acc"}
        assert parameter_problems(name, {**params, **defaults}) == []
