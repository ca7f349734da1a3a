"""The training runs each notebook's protocol asks for, counted without training (the workload
model of :mod:`survey_lib.estimate`).

.. math::

    n_r = e_r \\left\\lceil \\frac{N_r}{B_r} \\right\\rceil, \\qquad
    e_r = \\left\\lceil \\frac{S_r B_r}{N_r} \\right\\rceil \\text{ for a step budget } S_r

:math:`n_r` is run :math:`r`'s optimizer steps: :math:`e_r` epochs over its :math:`N_r`
training images in batches of :math:`B_r`; protocols that give a step budget :math:`S_r`
(Kornblith's fine-tuning, the zoo's fine-tuning) turn it into epochs as the cells do.
:math:`N_r` is the number of classes times the images per class the protocol asks for, capped
by what the split holds: the offline datasets' loader sizes (:data:`OFFLINE_PER_CLASS`) and,
for the paper profile's datasets, the committed data card (``data_cards/<slug>.yaml``: its
``classes`` and split sizes, :func:`survey_lib.data.cards.expected_split_sizes`; ``trainval``
is ``train + val`` where the card lists no ``trainval``), averaged over classes.

Counted: every training run of every grid (base, transfer and random-filter nets; source
networks trained here, once each, as the checkpoint cache would; fine-tuning, random-init and
grid-search runs and their refits; zoo fine-tuning and the choice grid's probe and full runs;
the quadrants' arms, the advised recipe and multi-step routes). Left out: feature extraction,
the linear probes, evaluation, DELTA's channel attention and start-up; checkpoints shared
between notebooks are counted in each.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import product
from typing import Any

#: Training examples per class of the offline datasets (their loaders' default sizes): glyphs
#: Latin train 11,780 / 47 classes, glyphs test fonts 3,162 / 47; Greek + Cyrillic (47 classes)
#: is rendered from fewer fonts, bounded here by the Latin count; Fashion-MNIST 6,000; digits
#: 1,198 / 10 (rounded down).
OFFLINE_PER_CLASS = {
    ("glyphs", "train"): 250,
    ("glyphs", "test"): 67,
    ("fashion_mnist", "train"): 6000,
    ("fashion_mnist", "test"): 1000,
    ("digits", "train"): 119,
    ("digits", "test"): 59,
}
OFFLINE_CLASSES = {
    "glyphs": {"latin": 47, "greek": 30, "cyrillic": 17},
    "fashion_mnist": 10,
    "digits": 10,
}
#: Frozen-unit count of a run that freezes every transferred unit (only the new head trains).
FROZEN_ALL = "all"


@dataclass(frozen=True)
class StepConfig:
    """What one training step's time depends on: the architecture (``model`` without its timm
    weights tag, with its builder arguments as JSON), batch size, frozen units (a count, or
    :data:`FROZEN_ALL`), the regularizer family, image size and input channels."""

    model: str
    batch_size: int
    frozen: int | str = 0
    method: str = "l2"
    size: int | None = None
    channels: int = 1
    model_kwargs: str = "{}"

    @property
    def key(self) -> str:
        """The configuration's name in ``step_times.json``, e.g.
        ``resnet50/b48/frozen0/delta/s224`` (the size part only when the protocol gives one)."""
        variant = "" if self.model_kwargs == "{}" else self.model_kwargs.replace(" ", "")
        key = f"{self.model}{variant}/b{int(self.batch_size)}/frozen{self.frozen}/{self.method}"
        return key if self.size is None else f"{key}/s{int(self.size)}"


@dataclass(frozen=True)
class Runs:
    """``count`` training runs of ``steps`` steps each in step configuration ``step``."""

    notebook: str
    grid: str
    step: StepConfig
    steps: int
    count: int

    @property
    def config(self) -> str:
        """The step configuration's key (:attr:`StepConfig.key`)."""
        return self.step.key


def config_key(model: str, batch_size: int, *, frozen: int | str = 0, method: str = "l2",
               size: int | None = None) -> str:  # fmt: skip
    """Name of one step-time configuration, e.g. ``alexnet_small/b256/frozen4/l2/s32``."""
    return StepConfig(arch(model), int(batch_size), frozen, method, size).key


def arch(model: str) -> str:
    """The architecture of a model name: a timm ``arch.tag`` without its weights tag (the
    weights do not change a step's time)."""
    return str(model).split(".", 1)[0]


def step_config(model: str, batch_size: int, *, frozen: int | str = 0, method: str = "l2",
                size: Any = None, channels: Any = 1,
                model_kwargs: Mapping[str, Any] | None = None) -> StepConfig:  # fmt: skip
    """A :class:`StepConfig` from protocol values."""
    return StepConfig(arch(model), int(batch_size), frozen, method,
                      None if size is None else int(size), int(channels or 1),
                      json.dumps(dict(model_kwargs or {}), sort_keys=True))  # fmt: skip


@cache
def _card(dataset: str) -> dict[str, Any]:
    from survey_lib.data.cards import default_cards_dir, read_card

    path = default_cards_dir() / f"{dataset}.yaml"
    if not path.is_file():
        raise ValueError(
            f"no size known for dataset {dataset!r}: not an offline dataset "
            f"({', '.join(OFFLINE_CLASSES)}) and no data card {path.name}"
        )
    return read_card(path)


def classes(dataset: str, options: Mapping[str, Any] | None = None,
            subset: list[Any] | None = None) -> int:  # fmt: skip
    """Number of classes of ``dataset`` (with glyphs' ``scripts`` option), or of ``subset``."""
    if subset:
        return len(subset)
    if dataset in OFFLINE_CLASSES:
        table = OFFLINE_CLASSES[dataset]
        if isinstance(table, int):
            return table
        return sum(table[s] for s in (options or {}).get("scripts", ["latin"]))
    return int(_card(dataset)["classes"])


def per_class(dataset: str, split: str, cap: Any = None) -> int:
    """Training images per class the split holds, at most ``cap``."""
    if (dataset, split) in OFFLINE_PER_CLASS:
        have = OFFLINE_PER_CLASS[(dataset, split)]
    else:
        from survey_lib.data.cards import expected_split_sizes

        card = _card(dataset)
        sizes = expected_split_sizes(card)
        if split not in sizes and split == "trainval" and "train" in sizes:
            sizes[split] = sizes["train"] + sizes.get("val", 0)
        if split not in sizes:
            raise ValueError(f"no size of split {split!r} of {dataset!r} in its data card; "
                             f"valid: {', '.join(sorted(sizes))}")  # fmt: skip
        have = max(1, sizes[split] // int(card["classes"]))
    return have if cap is None else min(int(cap), have)


def epoch_steps(n: int, batch_size: int, epochs: int) -> int:
    """Optimizer steps of ``epochs`` epochs over ``n`` images (the last batch partial)."""
    return int(epochs) * max(1, math.ceil(n / int(batch_size)))


def budget_steps(n: int, batch_size: int, steps: int) -> int:
    """Steps a cell runs for a step budget: ``ceil(steps * B / n)`` whole epochs."""
    epochs = max(1, math.ceil(int(steps) * int(batch_size) / max(n, 1)))
    return epoch_steps(n, batch_size, epochs)


def method_key(regularizer: Any) -> str:
    """The regularizer family whose step time a run pays: ``delta`` (any DELTA variant),
    ``bss``, ``l2_sp`` (any L2-SP variant) or ``l2``."""
    parts = str(regularizer or "l2").split("+")
    for name in ("delta", "bss", "l2_sp"):
        if any(part.startswith(name) for part in parts):
            return name
    return "l2"


def source_runs(notebook: str, source: Mapping[str, Any], epochs: list[int]) -> list[Runs]:
    """The source networks a notebook trains (none for given weights, ``epochs: 0``)."""
    if int(source.get("epochs", 0)) == 0:
        return []
    n = classes(source["dataset"], source.get("options")) * per_class(
        source["dataset"], "train", source.get("per_class")
    )
    bs = int(source["train"]["batch_size"])
    step = step_config(source["model"], bs, size=source.get("size"),
                       channels=source.get("channels", 1))  # fmt: skip
    return [Runs(notebook, "source", step, epoch_steps(n, bs, ep), 1) for ep in sorted(set(epochs))]


def grid_size(spec: Mapping[str, Any]) -> int:
    """Configurations of a method's validation-selected hyperparameter ``grid``: the product of
    its lists (``{lr: [...], weight_decay: [...]}``; scalar options such as
    ``divide_wd_by_lr`` or the search runs' ``steps`` are not axes); 0 without one."""
    grid = spec.get("grid") or {}
    axes = [list(v) for v in grid.values() if isinstance(v, (list, tuple))]
    if not axes:
        return 0
    return len(list(product(*axes)))


WorkloadFn = Callable[[Mapping[str, Any]], list[Runs]]


__all__ = [
    "OFFLINE_PER_CLASS", "OFFLINE_CLASSES", "FROZEN_ALL", "StepConfig", "Runs", "config_key",
    "arch", "step_config", "classes", "per_class", "epoch_steps", "budget_steps", "method_key",
    "source_runs", "grid_size", "WorkloadFn",
]  # fmt: skip
