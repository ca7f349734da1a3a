"""The zoo study's analysis (survey_lib.experiments.transferability_study) on hand-made tables:
weighted τ, regret, stability, the layer/lr choice and the claim verdicts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import weightedtau

from survey_lib.experiments import transferability_study as study
from survey_lib.experiments import zoo

MODELS = ["a", "b", "c", "d"]
ACC = {"a": 0.9, "b": 0.7, "c": 0.5, "d": 0.3}


def _long(score_of: dict[str, dict[str, float]], seeds=(0, 1, 2)) -> pd.DataFrame:
    """A long table: fine-tuned accuracy ACC (+ seed jitter) and each measure's scores."""
    rows = []
    for seed in seeds:
        for m in MODELS:
            acc = ACC[m] + 0.001 * seed
            for k in (5, 20):
                rows.append(dict(model=m, target="t", seed=seed, measure="finetune_acc",
                                 setting=str(k), value=acc))  # fmt: skip
            for measure, scores in score_of.items():
                for setting in ("base", "size"):
                    flip = setting == "size" and measure == "perfect"
                    rows.append(dict(model=m, target="t", seed=seed, measure=measure,
                                     setting=setting, value=-scores[m] if flip else scores[m]))  # fmt: skip
    df = pd.DataFrame(rows)
    df["metric"] = df["measure"] + "@" + df["setting"]
    return df


SCORES = {"perfect": {"a": 4, "b": 3, "c": 2, "d": 1}, "reverse": {"a": 1, "b": 2, "c": 3, "d": 4}}
K_TRUTH = {"base": 20, "size": 5}


def test_weighted_tau_is_scipys_and_nan_when_constant() -> None:
    x, y = [0.9, 0.7, 0.5, 0.3], [3.0, 4.0, 2.0, 1.0]
    assert study.weighted_tau(x, y) == pytest.approx(weightedtau(x, y).statistic)
    assert np.isnan(study.weighted_tau(x, [1.0, 1.0, 1.0, 1.0]))


def test_tau_and_regret_of_a_perfect_and_a_reversed_measure() -> None:
    taus = study.tau_table(_long(SCORES), "finetune", K_TRUTH)
    base = taus[taus["setting"] == "base"].set_index(["measure", "seed"])
    assert base.loc[("perfect", 0), "tau"] == pytest.approx(1.0)
    assert base.loc[("reverse", 0), "tau"] == pytest.approx(-1.0)
    assert base.loc[("perfect", 0), "regret"] == pytest.approx(0.0)
    assert base.loc[("reverse", 1), "regret"] == pytest.approx(60.0)  # picks d: 0.9 - 0.3
    assert base.loc[("reverse", 1), "pick"] == "d"


def test_stability_reports_the_change_of_tau_and_of_the_winner() -> None:
    taus = study.tau_table(_long(SCORES), "finetune", K_TRUTH)
    stab = study.stability_table(taus).set_index(["measure", "seed"])
    assert stab.loc[("perfect", 0), "delta_tau"] == pytest.approx(-2.0)  # flipped in "size"
    assert stab.loc[("reverse", 0), "delta_tau"] == pytest.approx(0.0)
    assert stab["winner_changed"].all()  # perfect wins at base, reverse (= -perfect) at size


def test_summaries_and_verdicts_follow_the_per_seed_values() -> None:
    scores = {**SCORES, "logme": SCORES["perfect"], "leep": SCORES["reverse"]}
    taus = study.tau_table(_long(scores), "finetune", K_TRUTH)
    summary = study.summarise(taus, "tau", ["setting", "measure"]).set_index(["setting", "measure"])
    assert summary.loc[("base", "perfect"), "n"] == 3
    verdicts = {v.claim: v for v in study.claim_verdicts(taus, None, ["logme", "leep"])}
    better = verdicts["You et al. 2021 (LogME): LogME ranks pre-trained models better than LEEP"]
    assert better.mean == pytest.approx(2.0) and better.unit == "tau"
    # LogME vs NCE is not measured here: recorded as not run, never guessed.
    assert (
        verdicts["You et al. 2021 (LogME): LogME ranks pre-trained models better than NCE"].n == 0
    )


def test_choice_regret_of_the_measures_pick() -> None:
    rows = []
    for seed in (0, 1):
        for n, acc, score in ((1, 0.6, 3.0), (2, 0.8, 1.0), (3, 0.7, 2.0)):
            c = json.dumps({"kind": "layers", "n": n})
            rows += [{"target": json.dumps({"name": "t"}), "choice": c, "seed": seed,
                      "metric": "finetune_acc", "value": acc},
                     {"target": json.dumps({"name": "t"}), "choice": c, "seed": seed,
                      "metric": "logme", "value": score}]  # fmt: skip
    table = study.choice_table(pd.DataFrame(rows), ["logme"])
    assert table["regret"].tolist() == pytest.approx([20.0, 20.0])
    assert not table["picked_best"].any()


def test_zoo_entries_are_checked() -> None:
    good = {"name": "x", "kind": "random", "model": "resnet_small", "dataset": "glyphs"}
    with pytest.raises(ValueError, match="kind must be one of"):
        zoo.check_zoo([good, {**good, "name": "y", "kind": "imagenet"}])
    with pytest.raises(ValueError, match="lacks"):
        zoo.check_zoo([good, {"name": "y", "kind": "trained", "model": "resnet_small"}])
    with pytest.raises(ValueError, match="twice"):
        zoo.check_zoo([good, good])
    zoo.check_zoo([good, {**good, "name": "y"}])
