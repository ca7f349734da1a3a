"""Batched grid cells of the layer-transfer reproduction: many transfer runs, one computation.

:func:`run_cells` is the batched counterpart of :func:`survey_lib.experiments.yosinski.run_cell`
for the runner's batched interface, ``many(list[(params, seed)]) -> list[dict | exception]``.
Every transfer or random-filter run (Yosinski, Clune, Bengio, Lipson, NeurIPS 2014,
https://arxiv.org/abs/1411.1792) is prepared exactly as ``run_cell`` prepares it (same data,
normalisation, seeds, copied and re-initialised units); runs whose configs share a
:func:`~survey_lib.train.batched.batch_key` (same number of frozen units, ...) and data sizes
are then trained together by :func:`~survey_lib.train.batched.fit_many`, and each is measured
on its own test split as ``run_cell`` does. Base runs (which train and cache the source
networks) go through ``run_cell`` one by one, and so do runs with the paper options
``frozen_dropout`` (a wide network has no dropout outside its units) or ``epoch_metrics``
(``fit_many`` evaluates no test set per epoch).

The result of each run is ``run_cell``'s (``{"test_acc": ...}``) to float rounding (see
``tests/train/test_batched.py`` for the engine's tolerance and
``tests/train/test_yosinski_batched.py`` for this cell's); a failed run is returned as its
:class:`~survey_lib.runner.RunFailed`, other errors as the exception raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from survey_lib import gpu
from survey_lib.experiments.common import test_accuracy
from survey_lib.experiments.yosinski import prepare_transfer, run_cell
from survey_lib.runner import RunFailed
from survey_lib.train.batched import batch_key, fit_many


def _sequential_only(params: Mapping[str, Any]) -> bool:
    """Runs ``run_cell`` makes one by one: base runs and the paper options above."""
    return (params["kind"] == "base" or bool(params.get("frozen_dropout"))
            or bool(params.get("epoch_metrics")))


def run_cells(items: Sequence[tuple[Mapping[str, Any], int]]) -> list[Any]:
    """Run ``(params, seed)`` pairs of the Yosinski grid; one result per pair, in order.

    Returns:
        For each pair ``{"test_acc": float}``, or the exception the run raised (``RunFailed``
        for a non-finite loss), so one bad run does not stop the others.
    """
    out: list[Any] = [None] * len(items)
    groups: dict[tuple, list[tuple[int, Any, Any, Any, Any]]] = {}
    for i, (params, seed) in enumerate(items):
        try:
            if _sequential_only(params):
                out[i] = run_cell(params, seed)
                continue
            target, _, train, test, config = prepare_transfer(params, seed)
        except Exception as err:  # noqa: BLE001 - returned to the runner, one per run
            out[i] = err
            continue
        key = (
            batch_key(config), params["model"], repr(params.get("model_kwargs", {})),
            len(train), tuple(train.images.shape[1:]), train.num_classes,
        )  # fmt: skip
        groups.setdefault(key, []).append((i, target, train, test, config))
    for members in groups.values():
        try:
            gpu.configure_determinism(members[0][4].device)  # as fit_or_fail does for run_cell
            results = fit_many(
                [m[1] for m in members], [m[2] for m in members], None,
                [m[4] for m in members], progress=False,
            )  # fmt: skip
        except Exception as err:  # noqa: BLE001
            for m in members:
                out[m[0]] = err
            continue
        for (i, target, _, test, config), result in zip(members, results):
            if result.status != "ok":
                out[i] = RunFailed(result.failure)
                continue
            try:
                out[i] = {"test_acc": test_accuracy(target, test, config)}
            except Exception as err:  # noqa: BLE001
                out[i] = err
    return out
