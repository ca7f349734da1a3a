"""End-to-end check on a SYNTHETIC toy transfer problem: every metric ranks targets correctly.

All data here is synthetic (Gaussian draws), not a real data set. Inputs x live in R^20. A fixed
random "source feature extractor" keeps 4 latent directions of x (a random orthonormal basis)
and maps them through a random linear layer and tanh; a random source classifier on top of those
features gives probabilities over 10 source classes. Target A's classes are a function of the 4
kept directions (shared structure); target B's classes are a function of the 16 discarded
directions, which for isotropic Gaussian x are independent of everything the extractor outputs.
A transferability metric should score A above B.
"""

from __future__ import annotations

import numpy as np
import pytest

from survey_lib.transferability import get_metric, list_metrics

N, INPUT_DIM, KEPT, NUM_SOURCE, NUM_TARGET = 400, 20, 4, 10, 3


def _toy_transfer_problem(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(INPUT_DIM, INPUT_DIM)))[0]
    kept, discarded = basis[:, :KEPT], basis[:, KEPT:]
    x = rng.normal(size=(N, INPUT_DIM))
    features = np.tanh(x @ kept @ rng.normal(size=(KEPT, 6)))  # the source extractor
    logits = 3.0 * features @ rng.normal(size=(6, NUM_SOURCE))  # the source classifier head
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    target_related = np.argmax(x @ kept @ rng.normal(size=(KEPT, NUM_TARGET)), axis=1)
    target_unrelated = np.argmax(
        x @ discarded @ rng.normal(size=(INPUT_DIM - KEPT, NUM_TARGET)), axis=1
    )
    return {
        "features": features,
        "probabilities": probs,
        "related": target_related,
        "unrelated": target_unrelated,
    }


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", list_metrics())
def test_metric_ranks_the_related_target_above_the_unrelated_one(name: str, seed: int) -> None:
    problem = _toy_transfer_problem(seed)
    metric = get_metric(name)
    inputs = problem[metric.input]
    related = metric(inputs, problem["related"], num_classes=NUM_TARGET)
    unrelated = metric(inputs, problem["unrelated"], num_classes=NUM_TARGET)
    assert related > unrelated


@pytest.mark.parametrize("name", ["knn", "linear"])
def test_accuracy_metrics_show_chance_on_the_unrelated_target(name: str) -> None:
    problem = _toy_transfer_problem(0)
    chance = np.bincount(problem["unrelated"], minlength=NUM_TARGET).max() / N
    acc = get_metric(name)(problem["features"], problem["unrelated"], num_classes=NUM_TARGET)
    assert acc < chance + 0.07
    assert get_metric(name)(problem["features"], problem["related"], num_classes=NUM_TARGET) > 0.75
