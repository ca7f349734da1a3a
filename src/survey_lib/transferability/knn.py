r"""Leave-one-out k-nearest-neighbour accuracy of fixed features.

Cover and Hart, "Nearest neighbor pattern classification", IEEE Transactions on Information
Theory 13(1), 1967. https://doi.org/10.1109/TIT.1967.1053964. Used as a cheap transferability
proxy for choosing pre-trained experts by Puigcerver et al., "Scalable Transfer Learning with
Expert Models", ICLR 2021. https://arxiv.org/abs/2009.13239

Each sample :math:`i` is classified by a majority vote over its :math:`k` nearest other samples
:math:`\mathcal{N}_k(i)` (itself excluded):

.. math::

    \mathrm{kNN}_{\mathrm{LOO}} = \frac{1}{N}\sum_{i=1}^{N}
        \mathbb{1}\!\left[y_i = \arg\max_{c} \sum_{j \in \mathcal{N}_k(i)} \mathbb{1}[y_j = c]\right].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from survey_lib.transferability._validate import check_features

_METRICS = ("cosine", "euclidean")
_BLOCK = 1024  # rows of the distance matrix held in memory at once


def _distances(block: np.ndarray, f: np.ndarray, sq_norms: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return 1.0 - block @ f.T  # rows already L2-normalised
    return (block**2).sum(axis=1, keepdims=True) + sq_norms[None, :] - 2.0 * block @ f.T


def knn_accuracy(
    features: Any,
    labels: Any,
    *,
    num_classes: int,
    k: int = 5,
    metric: str = "cosine",
) -> float:
    r"""Leave-one-out k-NN accuracy of the features for the target labels.

    Deterministic: neighbours are ranked by distance with a stable sort (ties go to the lower
    sample index), and a tied vote goes to the tied class whose member is nearest.

    Args:
        features: penultimate-layer features (not logits or probabilities).
        labels: target labels in ``[0, num_classes)``.
        num_classes: number of target classes (never inferred from the labels).
        k: number of neighbours, in ``[1, N - 1]``.
        metric: ``"cosine"`` (features L2-normalised first; zero rows stay zero) or
            ``"euclidean"``.

    Returns:
        Accuracy in ``[0, 1]``.

    Shape:
        features ``(N, D)``, labels ``(N,)``.
    """
    f, y, c = check_features(features, labels, num_classes=num_classes)
    n = f.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n - 1:
        raise ValueError(f"k must be an integer in [1, N - 1] = [1, {n - 1}], got {k!r}")
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    if metric == "cosine":
        norms = np.linalg.norm(f, axis=1, keepdims=True)
        f = f / np.where(norms > 0, norms, 1.0)
    sq_norms = (f**2).sum(axis=1)
    correct = 0
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        dist = _distances(f[start:stop], f, sq_norms, metric)
        rows = np.arange(stop - start)
        dist[rows, rows + start] = np.inf  # leave the sample itself out
        nbrs = np.argsort(dist, axis=1, kind="stable")[:, :k]
        nbr_labels = y[nbrs]
        votes = np.zeros((stop - start, c), dtype=np.int64)
        np.add.at(votes, (rows[:, None], nbr_labels), 1)
        # Tie-break: rank of the first neighbour of each class (k = class absent).
        first = np.full((stop - start, c), k, dtype=np.int64)
        for j in range(k - 1, -1, -1):
            first[rows, nbr_labels[:, j]] = j
        pred = np.argmax(votes * (k + 1) + (k - first), axis=1)
        correct += int(np.sum(pred == y[start:stop]))
    return correct / n
