r"""LEEP: log expected empirical prediction.

Nguyen, Hassner, Seeger and Archambeau, "LEEP: A New Measure to Evaluate Transferability of
Learned Representations", ICML 2020. https://arxiv.org/abs/2002.12462

With source-model probabilities :math:`\theta(x_i)_z` over source classes :math:`z` on the
target inputs, the empirical joint and conditional of target and source labels are

.. math::

    \hat P(y, z) = \frac{1}{N} \sum_{i : y_i = y} \theta(x_i)_z, \qquad
    \hat P(y \mid z) = \frac{\hat P(y, z)}{\sum_{y'} \hat P(y', z)},

and LEEP is the mean log-likelihood of the "expected empirical predictor":

.. math::

    T(\theta, \mathcal{D}) = \frac{1}{N} \sum_{i=1}^{N}
        \log\left(\sum_{z} \hat P(y_i \mid z)\, \theta(x_i)_z\right) \;\le\; 0 .
"""

from __future__ import annotations

from typing import Any

import numpy as np

from survey_lib.transferability._validate import check_probabilities


def leep(probs: Any, labels: Any, *, num_classes: int) -> float:
    r"""LEEP score (Nguyen et al., ICML 2020).

    Source classes that receive no probability mass on the target data have an undefined
    :math:`\hat P(y \mid z)`; they are multiplied by :math:`\theta(x_i)_z = 0` and dropped.
    Every term inside the log is positive (sample :math:`i` itself puts mass on
    :math:`\hat P(y_i, z)` for some :math:`z`), so the score is always finite.

    Args:
        probs: source-model class PROBABILITIES (softmax outputs, not logits) on the target
            inputs; non-negative rows summing to 1.
        labels: target labels in ``[0, num_classes)``.
        num_classes: number of target classes (never inferred from the labels).

    Returns:
        LEEP in nats, at most 0 (higher means more transferable).

    Shape:
        probs ``(N, Z)``, labels ``(N,)``.
    """
    p, y, c = check_probabilities(probs, labels, num_classes=num_classes)
    n = p.shape[0]
    joint = np.zeros((c, p.shape[1]))
    np.add.at(joint, y, p / n)
    p_z = joint.sum(axis=0, keepdims=True)
    cond = np.divide(joint, p_z, out=np.zeros_like(joint), where=p_z > 0)  # P(y | z)
    eep = np.einsum("iz,iz->i", p, cond[y])
    return float(np.mean(np.log(eep)))
