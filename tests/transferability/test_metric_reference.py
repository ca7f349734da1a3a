"""Reference tests for H-score, NCE, LEEP, k-NN and linear-probe accuracy (synthetic data)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from survey_lib.transferability import (
    h_score,
    knn_accuracy,
    leep,
    linear_probe_accuracy,
    nce,
    nce_from_probabilities,
)


def _blobs(
    n: int, d: int, num_classes: int, spread: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs; the same noise draw for every spread, so only the separation changes."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    means = rng.normal(size=(num_classes, d))
    return spread * means[labels] + rng.normal(size=(n, d)), labels


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# --- H-score ---------------------------------------------------------------------------------


def test_hscore_matches_explicit_covariances() -> None:
    f, y = _blobs(80, 5, 4, 1.0, seed=0)
    class_means = np.stack([f[y == c].mean(axis=0) for c in range(4)])
    g = class_means[y]  # E[f | Y] evaluated per sample
    expected = np.trace(np.linalg.inv(np.cov(f.T, bias=True)) @ np.cov(g.T, bias=True))
    assert h_score(f, y, num_classes=4) == pytest.approx(expected, rel=1e-10)


def test_hscore_is_invariant_to_relabelling_classes() -> None:
    f, y = _blobs(90, 6, 3, 1.0, seed=1)
    perm = np.array([2, 0, 1])
    assert h_score(f, perm[y], num_classes=3) == pytest.approx(
        h_score(f, y, num_classes=3), rel=1e-12
    )


def test_hscore_is_invariant_to_invertible_affine_maps_of_features() -> None:
    f, y = _blobs(90, 4, 3, 1.0, seed=2)
    a = np.random.default_rng(3).normal(size=(4, 4)) + 2 * np.eye(4)
    assert h_score(f @ a + 5.0, y, num_classes=3) == pytest.approx(
        h_score(f, y, num_classes=3), rel=1e-8
    )


def test_hscore_rises_as_classes_separate_and_is_bounded() -> None:
    spreads = [0.0, 0.5, 1.0, 2.0, 4.0]
    scores = [h_score(*_blobs(120, 5, 3, s, seed=4), num_classes=3) for s in spreads]
    assert all(b > a for a, b in zip(scores, scores[1:]))
    assert 0.0 <= scores[0] < 0.2  # separation only from sampling noise
    assert scores[-1] <= 2.0 + 1e-9  # at most min(D, C - 1)
    assert scores[-1] > 1.8


def test_hscore_shrinkage_options() -> None:
    f, y = _blobs(60, 5, 3, 1.0, seed=5)
    assert h_score(f, y, num_classes=3, shrinkage=0.0) == pytest.approx(
        h_score(f, y, num_classes=3)
    )
    # Full shrinkage: Sigma_1 = (tr cov(f) / D) I and the between-class term is scaled by 0.
    assert h_score(f, y, num_classes=3, shrinkage=1.0) == pytest.approx(0.0, abs=1e-12)
    lw = h_score(f, y, num_classes=3, shrinkage="ledoit-wolf")
    assert 0.0 < lw <= h_score(f, y, num_classes=3) * 1.5
    with pytest.raises(ValueError, match="shrinkage"):
        h_score(f, y, num_classes=3, shrinkage=1.5)


# --- NCE -------------------------------------------------------------------------------------


def test_nce_of_a_deterministic_map_is_zero() -> None:
    y = np.arange(60) % 4
    one_to_one = np.array([3, 1, 0, 2])[y]
    assert nce(one_to_one, y, num_source_classes=4, num_classes=4) == 0.0
    finer_source = np.arange(60) % 8  # each source class maps to one target class
    assert nce(finer_source, finer_source % 4, num_source_classes=8, num_classes=4) == 0.0


def test_nce_hand_computed_values() -> None:
    # z = 0 -> y in {0, 0, 1, 1}: H = log 2 with P(z=0) = 1/2;  z = 1 -> y = 1: H = 0.
    z = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    y = np.array([0, 0, 1, 1, 1, 1, 1, 1])
    assert nce(z, y, num_source_classes=2, num_classes=2) == pytest.approx(-0.5 * math.log(2))
    # Independent uniform labels: -H(Y | Z) = -H(Y) = -log 2.
    z_ind = np.arange(8) % 2
    y_ind = (np.arange(8) // 2) % 2
    assert nce(z_ind, y_ind, num_source_classes=2, num_classes=2) == pytest.approx(-math.log(2))


def test_nce_is_never_positive_and_at_least_minus_log_c() -> None:
    rng = np.random.default_rng(6)
    for _ in range(20):
        z = rng.integers(0, 7, size=50)
        y = rng.integers(0, 4, size=50)
        value = nce(z, y, num_source_classes=7, num_classes=4)
        assert -math.log(4) - 1e-12 <= value <= 0.0


def test_nce_from_probabilities_uses_the_argmax() -> None:
    rng = np.random.default_rng(7)
    probs = _softmax(rng.normal(size=(40, 6)))
    y = rng.integers(0, 3, size=40)
    assert nce_from_probabilities(probs, y, num_classes=3) == nce(
        probs.argmax(axis=1), y, num_source_classes=6, num_classes=3
    )
    with pytest.raises(ValueError, match="source_labels"):
        nce(np.full(40, 6), y, num_source_classes=6, num_classes=3)


# --- LEEP ------------------------------------------------------------------------------------


def _leep_loop(probs: np.ndarray, y: np.ndarray, num_classes: int) -> float:
    """LEEP written out term by term from the paper's definition."""
    n, num_z = probs.shape
    joint = np.zeros((num_classes, num_z))
    for i in range(n):
        for z in range(num_z):
            joint[y[i], z] += probs[i, z] / n
    total = 0.0
    for i in range(n):
        eep = sum(joint[y[i], z] / joint[:, z].sum() * probs[i, z] for z in range(num_z))
        total += math.log(eep)
    return total / n


def test_leep_matches_the_definition_term_by_term() -> None:
    rng = np.random.default_rng(8)
    probs = _softmax(2.0 * rng.normal(size=(30, 5)))
    y = rng.integers(0, 3, size=30)
    assert leep(probs, y, num_classes=3) == pytest.approx(_leep_loop(probs, y, 3), rel=1e-12)


def test_leep_of_confident_correct_one_to_one_predictions_is_zero() -> None:
    y = np.arange(100) % 5
    source = np.array([4, 2, 0, 1, 3])[y]
    assert leep(np.eye(5)[source], y, num_classes=5) == pytest.approx(0.0, abs=1e-12)
    # 0.99 on the mapped class, 0.0025 elsewhere: P(y | z) has the same profile, so every
    # sample scores log(0.99^2 + 4 * 0.0025^2), about -0.02 nats.
    soft = np.full((100, 5), 0.0025)
    soft[np.arange(100), source] = 0.99
    expected = math.log(0.99**2 + 4 * 0.0025**2)
    assert leep(soft, y, num_classes=5) == pytest.approx(expected, rel=1e-10)
    assert -0.03 < expected < 0.0


def test_leep_drops_with_label_noise() -> None:
    rng = np.random.default_rng(9)
    y = np.arange(200) % 4
    probs = np.eye(4)[y] * 0.9 + 0.025
    scores = []
    for noise in (0.0, 0.1, 0.3, 0.6):
        noisy = y.copy()
        flip = rng.random(200) < noise
        noisy[flip] = rng.integers(0, 4, size=int(flip.sum()))
        scores.append(leep(probs, noisy, num_classes=4))
    assert all(b < a for a, b in zip(scores, scores[1:]))


def test_leep_is_never_positive_and_uninformative_sources_give_minus_label_entropy() -> None:
    rng = np.random.default_rng(10)
    y = rng.integers(0, 3, size=60)
    for _ in range(10):
        assert leep(_softmax(3.0 * rng.normal(size=(60, 4))), y, num_classes=3) <= 0.0
    freq = np.bincount(y, minlength=3) / 60
    uniform = np.full((60, 4), 0.25)
    assert leep(uniform, y, num_classes=3) == pytest.approx(float(np.mean(np.log(freq[y]))))


def test_leep_bounds_nce_as_in_nguyen_et_al() -> None:
    # Nguyen et al. (2020), Theorem 1: LEEP >= NCE + mean_i log theta(x_i)_{z_i}, equal for
    # one-hot source predictions.
    rng = np.random.default_rng(11)
    y = rng.integers(0, 3, size=80)
    probs = _softmax(2.0 * rng.normal(size=(80, 6)) + 2.0 * np.eye(6)[y])
    z = probs.argmax(axis=1)
    bound = nce_from_probabilities(probs, y, num_classes=3) + np.mean(
        np.log(probs[np.arange(80), z])
    )
    assert leep(probs, y, num_classes=3) >= bound
    one_hot = np.eye(6)[z]
    assert leep(one_hot, y, num_classes=3) == pytest.approx(
        nce_from_probabilities(one_hot, y, num_classes=3), abs=1e-12
    )


# --- k-NN and linear probe -------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_on_separable_data_is_perfect_and_on_random_labels_is_chance(metric: str) -> None:
    f, y = _blobs(150, 6, 3, 8.0, seed=12)
    assert knn_accuracy(f, y, num_classes=3, metric=metric) == 1.0
    rng = np.random.default_rng(13)
    random_labels = rng.integers(0, 3, size=300)
    acc = knn_accuracy(rng.normal(size=(300, 6)), random_labels, num_classes=3, metric=metric)
    assert abs(acc - 1 / 3) < 0.1


def test_knn_matches_brute_force_leave_one_out() -> None:
    rng = np.random.default_rng(14)
    f = rng.normal(size=(70, 4))
    y = rng.integers(0, 2, size=70)
    dist = np.linalg.norm(f[:, None] - f[None], axis=2)
    np.fill_diagonal(dist, np.inf)
    for k in (1, 3, 5):  # odd k, two classes: no tied votes
        nbrs = np.argsort(dist, axis=1)[:, :k]
        pred = (y[nbrs].sum(axis=1) * 2 > k).astype(int)
        expected = float(np.mean(pred == y))
        assert knn_accuracy(f, y, num_classes=2, k=k, metric="euclidean") == pytest.approx(expected)


def test_knn_cosine_ignores_row_scale_and_rejects_bad_k() -> None:
    f, y = _blobs(60, 5, 3, 1.0, seed=15)
    scale = np.random.default_rng(16).uniform(0.1, 10.0, size=(60, 1))
    assert knn_accuracy(f * scale, y, num_classes=3) == knn_accuracy(f, y, num_classes=3)
    with pytest.raises(ValueError, match="k must be"):
        knn_accuracy(f, y, num_classes=3, k=60)
    with pytest.raises(ValueError, match="metric"):
        knn_accuracy(f, y, num_classes=3, metric="manhattan")


def test_linear_probe_on_separable_data_is_perfect_and_on_random_labels_is_chance() -> None:
    f, y = _blobs(150, 6, 3, 8.0, seed=17)
    assert linear_probe_accuracy(f, y, num_classes=3) == 1.0
    rng = np.random.default_rng(18)
    random_labels = rng.integers(0, 3, size=300)
    acc = linear_probe_accuracy(rng.normal(size=(300, 6)), random_labels, num_classes=3)
    assert abs(acc - 1 / 3) < 0.1


def test_linear_probe_seed_controls_the_folds() -> None:
    f, y = _blobs(90, 5, 3, 0.7, seed=19)
    accs = {linear_probe_accuracy(f, y, num_classes=3, seed=s) for s in range(5)}
    assert len(accs) > 1  # the seed is not ignored
    assert linear_probe_accuracy(f, y, num_classes=3, seed=3) == linear_probe_accuracy(
        f, y, num_classes=3, seed=3
    )
    with pytest.raises(ValueError, match="folds"):
        linear_probe_accuracy(f[:4], y[:4], num_classes=3, folds=3)
