"""The fixed-feature logistic-regression protocol on small synthetic problems."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from survey_lib.transfer import linear_probe


def _blobs(n: int, rng: np.random.Generator, *, d: int = 10, k: int = 3, noise: float = 1.0):
    centers = np.eye(k, d) * 4.0
    labels = rng.integers(0, k, size=n)
    return centers[labels] + noise * rng.standard_normal((n, d)), labels


def test_separable_problem_is_solved() -> None:
    rng = np.random.default_rng(0)
    (xtr, ytr), (xva, yva), (xte, yte) = (_blobs(n, rng) for n in (150, 60, 200))
    result = linear_probe(xtr, ytr, xva, yva, num_classes=3, test_features=xte, test_labels=yte)
    assert result.val_accuracy > 0.95
    assert result.test_accuracy is not None and result.test_accuracy > 0.95
    assert len(result.grid) == 12 and result.grid["selected"].sum() == 1
    assert result.best_C == pytest.approx(1.0 / (result.best_l2 * 150))
    assert result.refit_C == pytest.approx(1.0 / (result.best_l2 * 210))
    # the huge penalties shrink W to ~0: chance-level accuracy on the validation split
    strongest = result.grid.iloc[0]
    assert strongest["l2"] == pytest.approx(1e5) and strongest["val_accuracy"] < 0.6


def test_choice_on_validation_beats_the_weakest_penalty_when_overfitting() -> None:
    # Few examples, many noise dimensions: a weak penalty overfits, validation should notice.
    rng = np.random.default_rng(1)

    def split(n: int):
        x, y = _blobs(n, rng, d=200, k=2, noise=2.5)
        return x, y

    (xtr, ytr), (xva, yva) = split(30), split(400)
    result = linear_probe(xtr, ytr, xva, yva, num_classes=2, l2_grid=np.logspace(-4, 3, 8))
    grid = result.grid
    assert result.val_accuracy == grid["val_accuracy"].max()
    assert grid.loc[grid["selected"], "l2"].item() == result.best_l2
    weakest = grid.loc[grid["l2"].idxmin()]
    assert weakest["train_accuracy"] == 1.0
    assert result.best_l2 > weakest["l2"]
    assert result.val_accuracy >= weakest["val_accuracy"]
    assert result.test_accuracy is None and result.refit_C is None


def test_ties_go_to_the_stronger_penalty() -> None:
    rng = np.random.default_rng(2)
    (xtr, ytr), (xva, yva) = _blobs(60, rng, noise=0.1), _blobs(30, rng, noise=0.1)
    result = linear_probe(xtr, ytr, xva, yva, num_classes=3, l2_grid=[1e-3, 1e-2, 1e-1])
    assert (result.grid["val_accuracy"] == 1.0).all()
    assert result.best_l2 == pytest.approx(1e-1)


def test_accepts_tensors_and_checks_inputs() -> None:
    rng = np.random.default_rng(3)
    (xtr, ytr), (xva, yva) = _blobs(40, rng), _blobs(20, rng)
    result = linear_probe(
        torch.from_numpy(xtr).float(),
        torch.from_numpy(ytr),
        xva,
        yva,
        num_classes=3,
        l2_grid=[1e-2],
    )
    assert result.val_accuracy > 0.9
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        linear_probe(xtr, ytr, xva, yva, num_classes=2)
    with pytest.raises(ValueError, match="both test_features and test_labels"):
        linear_probe(xtr, ytr, xva, yva, num_classes=3, test_features=xva)
    with pytest.raises(ValueError, match="positive strengths"):
        linear_probe(xtr, ytr, xva, yva, num_classes=3, l2_grid=[0.0, 1.0])


def test_refit_reports_mean_per_class_accuracy_of_its_test_predictions() -> None:
    # unbalanced test set: 150 of class 0, 10 of class 1, 40 of class 2
    rng = np.random.default_rng(3)
    (xtr, ytr), (xva, yva) = (_blobs(n, rng, noise=2.0) for n in (150, 60))
    xte, yte = _blobs(400, rng, noise=2.0)
    keep = np.concatenate([np.flatnonzero(yte == 0)[:150], np.flatnonzero(yte == 1)[:10],
                           np.flatnonzero(yte == 2)[:40]])
    xte, yte = xte[keep], yte[keep]
    result = linear_probe(xtr, ytr, xva, yva, num_classes=3, test_features=xte, test_labels=yte)
    from survey_lib.train.evaluate import mean_per_class_accuracy

    # the refit's own predictions, recomputed: top-1 and the per-class mean from its counts
    x_all, y_all = np.concatenate([xtr, xva]), np.concatenate([ytr, yva])
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ref = make_pipeline(StandardScaler(), LogisticRegression(C=result.refit_C, max_iter=1000))
    pred = ref.fit(x_all, y_all).predict(xte)
    per_class = [np.mean(pred[yte == c] == c) for c in range(3)]
    assert result.test_mean_per_class_accuracy == pytest.approx(np.mean(per_class), abs=0.02)
    assert result.test_accuracy == pytest.approx(np.mean(pred == yte), abs=0.02)
    assert mean_per_class_accuracy(torch.as_tensor(pred), torch.as_tensor(yte)) == pytest.approx(
        np.mean(per_class))
    no_test = linear_probe(xtr, ytr, xva, yva, num_classes=3)
    assert no_test.test_mean_per_class_accuracy is None
