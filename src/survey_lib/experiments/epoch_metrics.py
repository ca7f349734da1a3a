"""Metrics over a run's per-epoch test evaluations, named as the papers report them.

Our verdicts judge ``test_acc``, the top-1 accuracy on the test set after the *final* epoch.
Two published protocols report other quantities of the same run, both selected on the test
set (so slightly optimistic):

* ``test_acc_best_epoch`` — the TLlib benchmark (Jiang et al., "Transfer-Learning-Library",
  https://github.com/thuml/Transfer-Learning-Library, ``examples/task_adaptation``) evaluates
  the test set once per "epoch" of 500 iterations and reports the best:

  .. math:: a_\\text{best} = \\max_{e \\in E} a_e

* ``test_acc_top10_mean`` — Yosinski, Clune, Bengio & Lipson, "How transferable are features in
  deep neural networks?", NeurIPS 2014, https://arxiv.org/abs/1411.1792, report for each run
  the mean of its ten best validation top-1 accuracies (their validation set, ImageNet's, is
  the held-out set every network is measured on, our test split):

  .. math:: a_\\text{top-}k = \\frac1k \\sum_{i=1}^{k} a_{(i)}, \\qquad
      a_{(1)} \\ge a_{(2)} \\ge \\dots, \\quad k = \\min(10, |E|)

where :math:`a_e` is the test top-1 accuracy after epoch :math:`e` and :math:`E` the evaluated
epochs (``fit(..., eval_sets={"test": test}, eval_every=...)`` records them as the history's
``test_acc`` column). A protocol asks for them with ``epoch_metrics: [...]``; they are recorded
beside ``test_acc``, never instead of it, and ``metric:`` names the one the verdicts use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FINAL = "test_acc"
"""The default metric: test top-1 after the final epoch."""

EPOCH_METRICS: dict[str, str] = {
    "test_acc_best_epoch": "test top-1 of the best evaluated epoch (TLlib's reported number)",
    "test_acc_top10_mean": "mean of the 10 best per-epoch test top-1 of a run "
    "(Yosinski et al. 2014's reported number)",
}
"""The metrics over epochs a protocol can ask for, with what each is."""

HISTORY_COLUMN = "test_acc"
"""The history column (``fit``'s ``eval_sets={"test": ...}``) the metrics are computed from."""


def describe(name: str) -> str:
    """What metric ``name`` is, in words (for tables and pages)."""
    if name == FINAL:
        return "test top-1 after the final epoch"
    check_names([name])
    return EPOCH_METRICS[name]


def check_names(names: Iterable[Any]) -> list[str]:
    """``names`` as a list, each a key of :data:`EPOCH_METRICS`.

    Raises:
        ValueError: an unknown name (the message lists the valid ones)."""
    names = list(names)
    bad = [n for n in names if n not in EPOCH_METRICS]
    if bad:
        raise ValueError(
            f"epoch_metrics {bad}: unknown; valid: {', '.join(EPOCH_METRICS)}"
        )
    return names


def metric_problems(metric: Any, epoch_metrics: Any) -> list[str]:
    """Problems with a protocol's ``metric`` / ``epoch_metrics`` pair, one line each: the
    names must be known and the verdict metric must be ``test_acc`` or a recorded one."""
    problems = []
    if isinstance(epoch_metrics, list):
        bad = [n for n in epoch_metrics if n not in EPOCH_METRICS]
        if bad:
            problems.append(f"epoch_metrics = {epoch_metrics!r}: unknown {bad}; valid: "
                            f"a list from {', '.join(EPOCH_METRICS)}")
        recorded = [FINAL, *[n for n in epoch_metrics if n in EPOCH_METRICS]]
        if isinstance(metric, str) and metric not in recorded:
            problems.append(
                f"metric = {metric!r}: not recorded by this protocol; valid: {', '.join(recorded)}"
                + ("" if metric not in EPOCH_METRICS else
                   f" (add {metric!r} to epoch_metrics to record it)")
            )
    return problems


def best_epoch(accs: Sequence[float]) -> float:
    """:math:`\\max_e a_e` over the evaluated epochs (NaN entries, epochs not evaluated, are
    skipped)."""
    values = [float(a) for a in accs if not math.isnan(float(a))]
    if not values:
        raise ValueError("no evaluated epoch: every per-epoch accuracy is NaN")
    return max(values)


def top_k_mean(accs: Sequence[float], k: int = 10) -> float:
    """The mean of the ``k`` largest per-epoch accuracies (all of them when fewer were
    evaluated); NaN entries are skipped."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    values = sorted((float(a) for a in accs if not math.isnan(float(a))), reverse=True)
    if not values:
        raise ValueError("no evaluated epoch: every per-epoch accuracy is NaN")
    top = values[:k]
    return sum(top) / len(top)


_FUNCTIONS = {
    "test_acc_best_epoch": best_epoch,
    "test_acc_top10_mean": lambda accs: top_k_mean(accs, 10),
}


def from_history(history: Any, names: Iterable[str]) -> dict[str, float]:
    """Each metric of ``names`` from ``history[HISTORY_COLUMN]`` (a :class:`FitResult`
    history whose fit had ``eval_sets={"test": ...}``).

    Raises:
        ValueError: an unknown name, or a history without the per-epoch test column."""
    names = check_names(names)
    if names and HISTORY_COLUMN not in getattr(history, "columns", ()):
        raise ValueError(
            f"history has no {HISTORY_COLUMN!r} column: fit needs eval_sets={{'test': ...}}"
        )
    accs = list(history[HISTORY_COLUMN]) if names else []
    return {name: float(_FUNCTIONS[name](accs)) for name in names}


def eval_every_epochs(every_iterations: int | None, steps_per_epoch: int) -> int:
    """Epochs between test evaluations so that one falls about every ``every_iterations``
    optimisation steps (TLlib: 500), at least 1; ``None``: every epoch."""
    if every_iterations is None:
        return 1
    return max(1, round(int(every_iterations) / max(1, int(steps_per_epoch))))


def label_columns(table: Any, metric: str, epoch_metrics: Sequence[str]) -> Any:
    """``table`` with a ``metric`` column naming the quantity it reports, when the protocol
    records any metric over epochs or judges another than ``test_acc`` (otherwise unchanged:
    every number is then ``test_acc``)."""
    if metric == FINAL and not list(epoch_metrics):
        return table
    return table.assign(metric=metric)


def recorded(params: Mapping[str, Any]) -> list[str]:
    """The epoch metrics a grid cell asks for (``params['epoch_metrics']``, default none)."""
    return check_names(params.get("epoch_metrics") or [])


__all__ = [
    "FINAL",
    "EPOCH_METRICS",
    "HISTORY_COLUMN",
    "describe",
    "check_names",
    "metric_problems",
    "best_epoch",
    "top_k_mean",
    "from_history",
    "eval_every_epochs",
    "label_columns",
    "recorded",
]
