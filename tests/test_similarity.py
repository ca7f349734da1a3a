"""The similarity ladder's definition and its distance measures (tiny inputs, no training)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from survey_lib.data import ImageDataset, list_datasets
from survey_lib.models import create_model
from survey_lib.similarity import (
    LADDER,
    SOURCE,
    frechet_distance,
    measure_similarity,
    proxy_a_distance,
)


def test_ladder_is_ordered_near_to_far_and_registered() -> None:
    ranks = [rung.rank for rung in LADDER]
    assert ranks == sorted(ranks) and ranks[0] == 1 and SOURCE.rank == 0
    assert len({rung.name for rung in LADDER}) == len(LADDER)
    assert {rung.dataset for rung in LADDER} <= set(list_datasets())
    # glyph targets use unseen typefaces only
    assert all(rung.split == "test" for rung in LADDER if rung.dataset == "glyphs")


def test_frechet_distance_matches_the_one_dimensional_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 2.0, size=(500, 1))
    b = rng.normal(-0.5, 0.5, size=(300, 1))
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_of_shifted_gaussians_is_the_squared_shift() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 3))
    shift = np.array([1.0, -2.0, 0.5])
    assert frechet_distance(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-6)
    with pytest.raises(ValueError, match="same D"):
        frechet_distance(x, x[:, :2])


def test_proxy_a_distance_separates_far_domains_only() -> None:
    rng = np.random.default_rng(2)
    same_a, same_b = rng.normal(size=(400, 5)), rng.normal(size=(400, 5))
    far = rng.normal(size=(400, 5)) + 10.0
    assert proxy_a_distance(same_a, same_b, seed=0) < 0.5
    assert proxy_a_distance(same_a, far, seed=0) == pytest.approx(2.0)


def test_measure_similarity_returns_every_measure() -> None:
    torch.manual_seed(0)
    model = create_model("resnet_small", num_classes=3, in_chans=1).eval()
    images = torch.randint(0, 256, (18, 1, 32, 32), dtype=torch.uint8)
    target = ImageDataset("toy", "test", images, torch.arange(18) % 3, ("a", "b", "c"))
    source = torch.randn(30, model.feature_dim)
    scores = measure_similarity(model, source, target, mean=(0.5,), std=(0.25,), seed=0)
    assert set(scores) == {"frechet_distance", "proxy_a_distance", "logme", "linear_probe_accuracy"}
    assert all(math.isfinite(v) for v in scores.values())
    assert 0.0 <= scores["linear_probe_accuracy"] <= 1.0 and scores["frechet_distance"] > 0
