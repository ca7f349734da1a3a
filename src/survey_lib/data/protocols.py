"""Experimental protocols as small pure functions of labels and an explicit seed.

Every function draws from its own ``numpy.random.default_rng(seed)`` (never the global RNG), so
the same arguments always give the same indices. Per-class subsets use one seeded permutation
per class and take a prefix of it; hence for a fixed seed the subsets are *nested*: the
``k = 10`` subset lies inside the ``k = 50`` one, and the 15 % sample inside the 30 % one.

Class splits follow Yosinski et al., "How transferable are features in deep neural networks?",
NeurIPS 2014, https://arxiv.org/abs/1411.1792 (random halves A/B of the classes, plus a
deliberately dissimilar split). Sampling rates follow the fine-tuning benchmarks of Chen et al.,
"Catastrophic Forgetting Meets Negative Transfer: Batch Spectral Shrinkage for Safe Transfer
Learning", NeurIPS 2019 (15 %, 30 %, 50 %, 100 % of the training set).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

ClassSplit = tuple[tuple[int, ...], tuple[int, ...]]


def _labels_array(
    labels: Sequence[int] | np.ndarray | torch.Tensor, num_classes: int
) -> np.ndarray:
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    array = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {array.shape}")
    array = array.astype(np.int64, copy=False)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got range [{array.min()}, {array.max()}]"
        )
    return array


def _class_permutations(labels: np.ndarray, num_classes: int, seed: int) -> list[np.ndarray]:
    """Indices of each class in a seeded random order (one generator, classes in id order)."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(np.flatnonzero(labels == c)) for c in range(num_classes)]


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def split_classes(num_classes: int, seed: int) -> ClassSplit:
    r"""Random halves A and B of the class ids (Yosinski et al., NeurIPS 2014).

    A is the first :math:`\lfloor C/2 \rfloor` classes of a seeded permutation of
    :math:`\{0,\dots,C-1\}`, B the rest; both are returned sorted.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 to split, got {num_classes}")
    perm = np.random.default_rng(seed).permutation(num_classes)
    half = num_classes // 2
    return tuple(sorted(int(c) for c in perm[:half])), tuple(sorted(int(c) for c in perm[half:]))


#: CIFAR-100 fine labels of its man-made superclasses: bottle 9, bowl 10, can 16, cup 28, plate 61;
#: clock 22, keyboard 39, lamp 40, telephone 86, television 87; bed 5, chair 20, couch 25,
#: table 84, wardrobe 94; bridge 12, castle 17, house 37, road 68, skyscraper 76; bicycle 8,
#: bus 13, motorcycle 48, pickup_truck 58, train 90; lawn_mower 41, rocket 69, streetcar 81,
#: tank 85, tractor 89.
CIFAR100_MANMADE: tuple[int, ...] = tuple(
    sorted(
        (
            9,
            10,
            16,
            28,
            61,
            22,
            39,
            40,
            86,
            87,
            5,
            20,
            25,
            84,
            94,
            12,
            17,
            37,
            68,
            76,
            8,
            13,
            48,
            58,
            90,
            41,
            69,
            81,
            85,
            89,
        )
    )
)

NAMED_SPLITS: dict[str, dict[str, ClassSplit]] = {
    "fashion_mnist": {
        # Clothing (T-shirt/top, Trouser, Pullover, Dress, Coat, Shirt) versus footwear and bags
        # (Sandal, Sneaker, Bag, Ankle boot): a dissimilar split in the sense of Yosinski et al.
        "clothing_vs_footwear_bags": ((0, 1, 2, 3, 4, 6), (5, 7, 8, 9)),
        "random": split_classes(10, seed=0),
    },
    "digits": {
        "low_vs_high": ((0, 1, 2, 3, 4), (5, 6, 7, 8, 9)),
        "random": split_classes(10, seed=0),
    },
    "cifar10": {"random": split_classes(10, seed=0)},
    "cifar100": {
        # Man-made (the six superclasses food containers, household electrical devices,
        # household furniture, large man-made outdoor things, vehicles 1 and 2: 30 classes)
        # versus natural (the other 14 superclasses: 70 classes) -- the analogue of Yosinski et
        # al.'s man-made/natural ImageNet split. Ids are CIFAR-100's alphabetical fine labels.
        "manmade_vs_natural": (
            CIFAR100_MANMADE,
            tuple(c for c in range(100) if c not in CIFAR100_MANMADE),
        ),
        "random": split_classes(100, seed=0),
    },
}
"""Fixed class splits per dataset; ``"random"`` is :func:`split_classes` with seed 0."""


def named_split(dataset_name: str, split_name: str) -> ClassSplit:
    """The class ids ``(A, B)`` of a split listed in :data:`NAMED_SPLITS`."""
    if dataset_name not in NAMED_SPLITS:
        raise ValueError(
            f"no named class splits for dataset {dataset_name!r}; datasets with named splits: "
            f"{', '.join(sorted(NAMED_SPLITS))}"
        )
    splits = NAMED_SPLITS[dataset_name]
    if split_name not in splits:
        raise ValueError(
            f"unknown class split {split_name!r} for {dataset_name!r}; valid: "
            f"{', '.join(sorted(splits))}"
        )
    return splits[split_name]


def k_per_class(
    labels: Sequence[int] | np.ndarray | torch.Tensor, k: int, seed: int, *, num_classes: int
) -> np.ndarray:
    """Indices of ``k`` examples of every class (sorted ``int64``), nested in ``k`` for a seed.

    Raises:
        ValueError: ``k < 1``, or a class has fewer than ``k`` examples (the message names it).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    array = _labels_array(labels, num_classes)
    chosen = []
    for c, perm in enumerate(_class_permutations(array, num_classes, seed)):
        if perm.size < k:
            raise ValueError(f"class {c} has {perm.size} examples, fewer than k={k}")
        chosen.append(perm[:k])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def at_most_k_per_class(
    labels: Sequence[int] | np.ndarray | torch.Tensor, k: int, seed: int, *, num_classes: int
) -> np.ndarray:
    """Indices of at most ``k`` examples of each class (all of a smaller class), sorted.

    Each class keeps the prefix of the same seeded permutation as :func:`k_per_class`, so when
    every class has at least ``k`` examples this equals ``k_per_class(labels, k, seed)``; a
    small class does not lower the cap of the others (a test-set cap taken as
    ``min(k, smallest class)`` left Caltech-101 about one test image per class).

    Raises:
        ValueError: ``k < 1``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    array = _labels_array(labels, num_classes)
    chosen = [perm[:k] for perm in _class_permutations(array, num_classes, seed)]
    return np.sort(np.concatenate([np.zeros(0, dtype=np.int64), *chosen])).astype(np.int64)


def sampling_rate_subset(
    labels: Sequence[int] | np.ndarray | torch.Tensor, rate: float, seed: int, *, num_classes: int
) -> np.ndarray:
    r"""A class-stratified fraction ``rate`` of the examples (sorted ``int64`` indices).

    Class :math:`c` with :math:`n_c` examples keeps
    :math:`\max(1, \lfloor r\, n_c + \tfrac12 \rfloor)` of them (none if :math:`n_c = 0`); the
    subsets are nested across rates for a fixed seed, and ``rate=1`` returns every index.
    """
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"rate must lie in (0, 1], got {rate}")
    array = _labels_array(labels, num_classes)
    chosen = []
    for perm in _class_permutations(array, num_classes, seed):
        if perm.size:
            chosen.append(perm[: max(1, _round_half_up(rate * perm.size))])
    if not chosen:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def train_val_split(
    labels: Sequence[int] | np.ndarray | torch.Tensor,
    val_fraction: float,
    seed: int,
    *,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Stratified split into disjoint ``(train_idx, val_idx)`` covering every index.

    Class :math:`c` puts :math:`\lfloor f\, n_c + \tfrac12 \rfloor` examples in validation,
    clipped to :math:`[1, n_c - 1]` when :math:`n_c \ge 2` (every class keeps at least one
    training and, when possible, one validation example); a class with one example stays in train.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction}")
    array = _labels_array(labels, num_classes)
    train, val = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for perm in _class_permutations(array, num_classes, seed):
        n = perm.size
        n_val = 0 if n < 2 else min(max(_round_half_up(val_fraction * n), 1), n - 1)
        val.append(perm[:n_val])
        train.append(perm[n_val:])
    return (
        np.sort(np.concatenate(train)).astype(np.int64),
        np.sort(np.concatenate(val)).astype(np.int64),
    )
