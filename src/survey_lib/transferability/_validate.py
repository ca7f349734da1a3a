"""Input checks shared by the transferability metrics.

Every metric accepts NumPy arrays or torch tensors (any device; they are copied to host memory)
and converts them here to ``float64`` / ``int64`` NumPy arrays. Errors are ``ValueError`` and say
what was wrong and what is valid. The number of classes is always an explicit argument: it is
never inferred from ``max(label) + 1``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch


def to_numpy(x: Any, name: str) -> np.ndarray:
    """Convert a NumPy array, torch tensor or nested sequence to a NumPy array."""
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.float()
        return t.numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be a NumPy array or torch tensor, got {type(x).__name__}"
        ) from err


def check_num_classes(num_classes: Any, name: str = "num_classes") -> int:
    """Return ``num_classes`` as an int, requiring an integer >= 2."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= 2, got {num_classes!r}")
    if num_classes < 2:
        raise ValueError(f"{name} must be an integer >= 2, got {num_classes}")
    return int(num_classes)


def check_labels(
    labels: Any, *, num_classes: int, n: int | None = None, name: str = "labels"
) -> np.ndarray:
    """Validate integer class labels of shape ``(N,)`` with values in ``[0, num_classes)``."""
    y = to_numpy(labels, name)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (N,), got shape {tuple(y.shape)}")
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must have an integer dtype, got {y.dtype}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} entries but the inputs have {n} rows")
    if y.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 samples, got {y.shape[0]}")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"{name} must lie in [0, {num_classes}) for num_classes={num_classes}, "
            f"got values in [{low}, {high}]"
        )
    return y.astype(np.int64, copy=False)


def check_matrix(x: Any, name: str) -> np.ndarray:
    """Validate a finite real 2-D array ``(N, D)`` and return it as ``float64``."""
    a = to_numpy(x, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (N, D), got shape {tuple(a.shape)}")
    if a.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column, got shape {tuple(a.shape)}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name} must be real-valued, got dtype {a.dtype}")
    a = a.astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def check_features(
    features: Any, labels: Any, *, num_classes: Any
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate ``(features (N, D), labels (N,), num_classes)`` for a feature-based metric."""
    c = check_num_classes(num_classes)
    f = check_matrix(features, "features")
    y = check_labels(labels, num_classes=c, n=f.shape[0])
    return f, y, c


def check_probabilities(
    probs: Any, labels: Any, *, num_classes: Any, atol: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, int]:
    """Validate source-class probabilities ``(N, Z)`` (non-negative, rows sum to 1) and labels.

    ``atol`` allows for float32/float16 softmax round-off in the row sums; the returned rows are
    renormalised to sum to 1 exactly.
    """
    c = check_num_classes(num_classes)
    p = check_matrix(probs, "probabilities")
    if (p < 0).any():
        raise ValueError(
            "probabilities must be non-negative (pass softmax(logits), not logits); "
            f"min value is {p.min():.4g}"
        )
    row_sums = p.sum(axis=1)
    worst = float(np.abs(row_sums - 1.0).max())
    if worst > atol:
        raise ValueError(
            "probabilities must have rows summing to 1 (pass softmax(logits), not logits); "
            f"largest deviation is {worst:.4g} > atol={atol}"
        )
    y = check_labels(labels, num_classes=c, n=p.shape[0])
    # Remove the tolerated round-off so downstream identities (e.g. LEEP <= 0) hold exactly.
    return p / row_sums[:, None], y, c
