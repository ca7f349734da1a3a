"""The offline similarity ladder: targets at graded distances from a Latin-glyph source.

The survey places each source/target pair on a map of target size × similarity to the source
(Plested and Gedeon, "Deep transfer learning for image classification: a survey", 2022,
https://arxiv.org/abs/2205.09904). Offline, the source is Latin glyphs in the training
typefaces (:mod:`survey_lib.data.glyphs`) and :data:`LADDER` lists targets from near to far.
Each rung's similarity is *measured* in the frozen feature space of a source model:

* Fréchet distance between the source-training and target feature distributions (Heusel et al.,
  "GANs trained by a two time-scale update rule converge to a local Nash equilibrium",
  NeurIPS 2017, https://arxiv.org/abs/1706.08500), the primary measure:
  :math:`d_F^2 = \\lVert\\mu_s-\\mu_t\\rVert^2 + \\operatorname{tr}\\big(\\Sigma_s+\\Sigma_t
  -2(\\Sigma_s\\Sigma_t)^{1/2}\\big)`.
* Proxy A-distance (Ben-David et al., "Analysis of representations for domain adaptation",
  NeurIPS 2006, https://papers.nips.cc/paper/2983): :math:`\\hat d_A = 2(1-2\\epsilon)` with
  :math:`\\epsilon` the held-out error of a linear classifier telling source from target.
* Task-level transferability of the frozen features to the target labels: LogME and
  cross-validated linear-probe accuracy (:mod:`survey_lib.transferability`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import linalg
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from survey_lib.data import get_dataset
from survey_lib.data.base import ImageDataset
from survey_lib.data.protocols import k_per_class
from survey_lib.models.base import TransferModel
from survey_lib.models.features import extract_features
from survey_lib.transferability import linear_probe_accuracy, logme


@dataclass(frozen=True)
class Rung:
    """One target of the ladder.

    Attributes:
        name: short identifier used in result tables.
        dataset: registry name passed to :func:`survey_lib.data.get_dataset`.
        split: the split used as the target sample.
        options: loader options (e.g. ``{"scripts": ("greek",)}``).
        description: what changes relative to the source.
        rank: intended distance from the source, 1 = nearest (ties allowed).
    """

    name: str
    dataset: str
    split: str
    description: str
    rank: int
    options: Mapping[str, Any] = field(default_factory=dict)


SOURCE = Rung("latin_train_fonts", "glyphs", "train", "source: Latin glyphs, training typefaces", 0,
              {"scripts": ("latin",)})  # fmt: skip
"""The source task of the ladder (the model is trained on it)."""

LADDER: tuple[Rung, ...] = (
    Rung("latin_unseen_fonts", "glyphs", "test", "same classes, typefaces never seen", 1,
         {"scripts": ("latin",)}),
    Rung("greek", "glyphs", "test", "same domain (typeset glyphs), new classes", 2,
         {"scripts": ("greek",)}),
    Rung("cyrillic", "glyphs", "test", "same domain (typeset glyphs), new classes", 2,
         {"scripts": ("cyrillic",)}),
    Rung("digits", "digits", "test", "same kind of shape (digits), handwritten 8x8 scans", 3),
    Rung("fashion_mnist", "fashion_mnist", "test", "another domain: photographs of clothing", 4),
)  # fmt: skip
"""Targets from near to far. Glyph targets use the test typefaces, so no rung shares a font
with the source's training set."""


def load_rung(
    rung: Rung, *, size: int = 32, max_n: int | None = None, seed: int = 0
) -> ImageDataset:
    """The rung's images as 1-channel ``size``×``size``; with ``max_n``, a seeded class-balanced
    subset of :math:`k = \\min(\\lfloor n_{max}/C \\rfloor, n_{c,\\min})` images per class."""
    data = get_dataset(rung.dataset, rung.split, **dict(rung.options)).resized(size, channels=1)
    if max_n is not None and len(data) > max_n:
        counts = torch.bincount(data.labels, minlength=data.num_classes)
        k = max(1, min(max_n // data.num_classes, int(counts.min())))
        data = data.subset(k_per_class(data.labels, k, seed, num_classes=data.num_classes))
    return data


def frechet_distance(source: Any, target: Any) -> float:
    r"""Fréchet distance between Gaussians fitted to two feature samples (Heusel et al. 2017).

    .. math:: d_F^2 = \lVert\mu_s-\mu_t\rVert^2 + \operatorname{tr}\big(\Sigma_s+\Sigma_t
        -2(\Sigma_s\Sigma_t)^{1/2}\big)

    Args:
        source: features ``(N_s, D)``.
        target: features ``(N_t, D)``.

    Returns:
        :math:`d_F^2` (the squared distance, as FID reports it); 0 for identical samples.
    """
    a = np.asarray(source, dtype=np.float64)
    b = np.asarray(target, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(
            f"source and target must be (N, D) with the same D and N >= 2, got {a.shape}, {b.shape}"
        )
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(cov_a @ cov_b)
    root = np.real(root)  # numerical noise gives tiny imaginary parts
    mean_term = float(np.sum((a.mean(0) - b.mean(0)) ** 2))
    return max(mean_term + float(np.trace(cov_a + cov_b - 2.0 * root)), 0.0)


def proxy_a_distance(source: Any, target: Any, *, seed: int = 0, C: float = 1.0) -> float:
    r"""Proxy A-distance :math:`\hat d_A = 2(1-2\epsilon)` (Ben-David et al. 2006).

    :math:`\epsilon` is the error of an L2-regularised logistic regression trained on a random
    half of each domain (equal counts) to tell source from target, measured on the other half.

    Args:
        source: features ``(N_s, D)``.
        target: features ``(N_t, D)``.
        seed: draws the equal-size subsamples and the halves.
        C: inverse regularisation strength of the domain classifier.

    Returns:
        :math:`\hat d_A` clipped to ``[0, 2]``: 0 indistinguishable, 2 perfectly separable.
    """
    a = np.asarray(source, dtype=np.float64)
    b = np.asarray(target, dtype=np.float64)
    n = min(len(a), len(b))
    if n < 4 or a.shape[1:] != b.shape[1:]:
        raise ValueError(f"need >= 4 samples per domain with equal D, got {a.shape}, {b.shape}")
    rng = np.random.default_rng(seed)
    a, b = a[rng.permutation(len(a))[:n]], b[rng.permutation(len(b))[:n]]
    half = n // 2
    x_fit = np.concatenate([a[:half], b[:half]])
    x_eval = np.concatenate([a[half:], b[half:]])
    y_fit = np.r_[np.zeros(half), np.ones(half)]
    y_eval = np.r_[np.zeros(n - half), np.ones(n - half)]
    scaler = StandardScaler().fit(x_fit)
    clf = LogisticRegression(C=C, max_iter=2000).fit(scaler.transform(x_fit), y_fit)
    error = 1.0 - float(clf.score(scaler.transform(x_eval), y_eval))
    return float(np.clip(2.0 * (1.0 - 2.0 * error), 0.0, 2.0))


def measure_similarity(
    model: TransferModel,
    source_features: torch.Tensor,
    target: ImageDataset,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    seed: int = 0,
    device: str = "cpu",
) -> dict[str, float]:
    """Every similarity measure of one target in the frozen feature space of ``model``.

    Args:
        model: the source model (its head is not used).
        source_features: features of the source training sample, ``(N_s, D)``.
        target: target images, already of the model's input size and channels.
        mean, std: the source model's input normalisation.
        seed: seeds the A-distance subsamples and the probe's folds.
        device: where to run the model.

    Returns:
        ``frechet_distance``, ``proxy_a_distance``, ``logme`` and ``linear_probe_accuracy``.
    """
    feats, _ = extract_features(model, target, mean=mean, std=std, device=device)
    return {
        "frechet_distance": frechet_distance(source_features, feats),
        "proxy_a_distance": proxy_a_distance(source_features, feats, seed=seed),
        "logme": logme(feats, target.labels, num_classes=target.num_classes),
        "linear_probe_accuracy": linear_probe_accuracy(
            feats, target.labels, num_classes=target.num_classes, seed=seed
        ),
    }
