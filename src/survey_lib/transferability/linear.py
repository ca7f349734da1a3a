r"""Cross-validated linear-probe accuracy of fixed features.

Kornblith, Shlens and Le, "Do Better ImageNet Models Transfer Better?", CVPR 2019.
https://arxiv.org/abs/1805.08974 — fixed-feature transfer measured by L2-regularised
multinomial logistic regression on the penultimate layer.

Within each of :math:`K` stratified folds, a softmax classifier
:math:`p(y \mid x) \propto \exp(w_y^\top \tilde f(x) + b_y)` on standardised features
:math:`\tilde f` is fitted by minimising

.. math::

    \frac{1}{2}\lVert W \rVert_F^2 - C \sum_{i \in \text{train}} \log p(y_i \mid x_i),

and the probe accuracy is the pooled held-out accuracy
:math:`\frac{1}{N}\sum_i \mathbb{1}[\hat y_i = y_i]` over all folds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from survey_lib.transferability._validate import check_features


def linear_probe_accuracy(
    features: Any,
    labels: Any,
    *,
    num_classes: int,
    seed: int = 0,
    folds: int = 3,
    C: float = 1.0,
    max_iter: int = 1000,
) -> float:
    r"""Stratified K-fold accuracy of multinomial logistic regression on the features.

    Deterministic for a given ``seed``: the seed shuffles the stratified folds, and L-BFGS
    itself is deterministic. Features are standardised with statistics of the training fold.
    A separate transfer protocol with a tuned :math:`C` lives in
    ``survey_lib.transfer.linear_probe``; this is the cheap fixed-:math:`C` score.

    Args:
        features: penultimate-layer features (not logits or probabilities).
        labels: target labels in ``[0, num_classes)``; at least two classes present, each with
            at least ``folds`` samples.
        num_classes: number of target classes (never inferred from the labels).
        seed: shuffles the fold assignment.
        folds: number of cross-validation folds (>= 2).
        C: inverse L2 regularisation strength (> 0).
        max_iter: L-BFGS iteration cap.

    Returns:
        Held-out accuracy in ``[0, 1]``.

    Shape:
        features ``(N, D)``, labels ``(N,)``.
    """
    f, y, c = check_features(features, labels, num_classes=num_classes)
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    if not C > 0:
        raise ValueError(f"C must be > 0, got {C}")
    counts = np.bincount(y, minlength=c)
    present = counts[counts > 0]
    if present.size < 2:
        raise ValueError("linear_probe_accuracy needs at least two classes present in labels")
    if present.min() < folds:
        raise ValueError(
            f"every class present needs at least folds={folds} samples for stratified CV; "
            f"the smallest class has {int(present.min())}"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    correct = 0
    for train, test in splitter.split(f, y):
        scaler = StandardScaler().fit(f[train])
        clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
        clf.fit(scaler.transform(f[train]), y[train])
        correct += int(np.sum(clf.predict(scaler.transform(f[test])) == y[test]))
    return correct / f.shape[0]
