r"""NCE: negative conditional entropy of the target labels given source labels.

Tran, Nguyen and Hassner, "Transferability and Hardness of Supervised Classification Tasks",
ICCV 2019. https://arxiv.org/abs/1908.08142

With source labels :math:`z_i` and target labels :math:`y_i` on the same inputs, the empirical
joint is :math:`\hat P(y, z) = \frac{1}{N}\left|\{i : y_i = y, z_i = z\}\right|` and

.. math::

    \mathrm{NCE}(Y \mid Z) = -H(Y \mid Z)
        = \sum_{y, z} \hat P(y, z) \log \frac{\hat P(y, z)}{\hat P(z)} \;\le\; 0 .

Tran et al. assume both labellings exist for the same images. Nguyen et al. (LEEP, ICML 2020,
https://arxiv.org/abs/2002.12462) extend NCE to a new target dataset by using the source
model's dummy labels :math:`z_i = \arg\max_z \theta(x_i)_z`; ``nce_from_probabilities``
does exactly that.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from survey_lib.transferability._validate import (
    check_labels,
    check_num_classes,
    check_probabilities,
)


def _negative_conditional_entropy(z: np.ndarray, y: np.ndarray, num_z: int, num_y: int) -> float:
    joint = np.zeros((num_z, num_y))
    np.add.at(joint, (z, y), 1.0)
    joint /= z.shape[0]
    p_z = joint.sum(axis=1, keepdims=True)
    nz = joint > 0
    # 0 log 0 = 0: only cells with mass contribute, and those have p_z > 0.
    ratio = joint[nz] / np.broadcast_to(p_z, joint.shape)[nz]
    return float(np.sum(joint[nz] * np.log(ratio)))


def nce(
    source_labels: Any,
    target_labels: Any,
    *,
    num_source_classes: int,
    num_classes: int,
) -> float:
    r"""Negative conditional entropy :math:`-H(Y \mid Z)` (Tran et al., ICCV 2019).

    Args:
        source_labels: source-task labels (or source-model dummy labels) in
            ``[0, num_source_classes)``.
        target_labels: target labels in ``[0, num_classes)``.
        num_source_classes: number of source classes :math:`|Z|`.
        num_classes: number of target classes :math:`|Y|`.

    Returns:
        NCE in nats, at most 0; 0 when each source label determines the target label.

    Shape:
        source_labels ``(N,)``, target_labels ``(N,)``.
    """
    num_z = check_num_classes(num_source_classes, "num_source_classes")
    num_y = check_num_classes(num_classes)
    z = check_labels(source_labels, num_classes=num_z, name="source_labels")
    y = check_labels(target_labels, num_classes=num_y, n=z.shape[0], name="target_labels")
    return _negative_conditional_entropy(z, y, num_z, num_y)


def nce_from_probabilities(probs: Any, labels: Any, *, num_classes: int) -> float:
    r"""NCE with dummy source labels :math:`z_i = \arg\max_z \theta(x_i)_z` (Nguyen et al. 2020).

    Ties in the arg-max go to the lowest source class index (deterministic).

    Args:
        probs: source-model class probabilities (softmax outputs, not logits) on the target
            inputs; rows sum to 1.
        labels: target labels in ``[0, num_classes)``.
        num_classes: number of target classes.

    Returns:
        :math:`-H(Y \mid Z)` in nats (at most 0).

    Shape:
        probs ``(N, Z)``, labels ``(N,)``.
    """
    p, y, c = check_probabilities(probs, labels, num_classes=num_classes)
    z = np.argmax(p, axis=1)
    return _negative_conditional_entropy(z, y, p.shape[1], c)
