"""Batched grid cells of the L2-SP/BSS reproduction: many fine-tuning runs, one computation.

:func:`run_cells` is the batched counterpart of :func:`survey_lib.experiments.l2sp_bss.run_cell`
for the runner's batched interface, ``many(list[(params, seed)]) -> list[RunOutput | exception]``.
Every run is prepared exactly as ``run_cell`` prepares it (:func:`~survey_lib.experiments.
l2sp_bss.prepare_run`: the target's data at the run's rate and seed, the source network, a new
head drawn from the seed, the regularizer); runs whose configs share a
:func:`~survey_lib.train.batched.batch_key` and whose data have equal sizes are then trained
together by :func:`~survey_lib.train.batched.fit_many`, and each is measured on its own test
split as ``run_cell`` does.

What is batched: the penalties :func:`~survey_lib.train.batched.fit_many` computes per run,
L2 (:math:`\\tfrac\\alpha2\\lVert w\\rVert^2`) and L2-SP (Li, Grandvalet & Davoine, ICML 2018,
https://arxiv.org/abs/1802.01483: :math:`\\tfrac\\alpha2\\lVert w_S - w^0_S\\rVert^2 +
\\tfrac\\beta2\\lVert w_{\\bar S}\\rVert^2`). BSS (Chen et al., NeurIPS 2019), DELTA and the
combined regularizers fall back inside ``fit_many`` to sequential ``fit``, run by run; runs with
``epoch_metrics`` (``fit_many`` evaluates no test set per epoch) go through ``run_cell``.

The result of each run is ``run_cell``'s to float rounding (grouped convolutions and a
hand-written SGD step; ``tests/train/test_batched.py`` for the engine's tolerance,
``tests/experiments/test_l2sp_bss_batched.py`` for this cell's); a failed run is returned as
its :class:`~survey_lib.runner.RunFailed`, other errors as the exception raised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from survey_lib import gpu
from survey_lib.experiments import epoch_metrics
from survey_lib.experiments.common import checkpoint_info, test_accuracy
from survey_lib.experiments.l2sp_bss import PreparedRun, prepare_run, run_cell
from survey_lib.runner import RunFailed, RunOutput
from survey_lib.train.batched import batch_key, fit_many


def run_cells(items: Sequence[tuple[Mapping[str, Any], int]]) -> list[Any]:
    """Run ``(params, seed)`` pairs of the L2-SP/BSS grids; one result per pair, in order.

    Returns:
        For each pair ``run_cell``'s :class:`~survey_lib.runner.RunOutput`
        (``{"test_acc": ...}`` with the source checkpoint's SHA-256), or the exception the run
        raised (``RunFailed`` for a non-finite loss), so one bad run does not stop the others.
    """
    out: list[Any] = [None] * len(items)
    groups: dict[tuple, list[tuple[int, PreparedRun]]] = {}
    for i, (params, seed) in enumerate(items):
        try:
            if epoch_metrics.recorded(params):
                out[i] = run_cell(params, seed)
                continue
            run = prepare_run(params, seed)
        except Exception as err:  # noqa: BLE001 - returned to the runner, one per run
            out[i] = err
            continue
        key = (
            batch_key(run.config), type(run.target_model).__name__,
            repr(params["source"].get("model")), len(run.train),
            tuple(run.train.images.shape[1:]), run.train.num_classes,
        )  # fmt: skip
        groups.setdefault(key, []).append((i, run))
    for members in groups.values():
        runs = [run for _, run in members]
        try:
            gpu.configure_determinism(runs[0].config.device)
            results = fit_many(
                [r.target_model for r in runs], [r.train for r in runs], None,
                [r.config for r in runs], penalties=[r.regularizer for r in runs],
                progress=False,
            )  # fmt: skip
        except Exception as err:  # noqa: BLE001
            for i, _ in members:
                out[i] = err
            continue
        for (i, run), result in zip(members, results):
            if result.status != "ok":
                out[i] = RunFailed(result.failure)
                continue
            try:
                acc = test_accuracy(run.target_model, run.test, run.config)
                out[i] = RunOutput({"test_acc": acc}, info=checkpoint_info(run.pretrained))
            except Exception as err:  # noqa: BLE001
                out[i] = err
    return out


def batch_group(params: Mapping[str, Any]) -> dict[str, Any]:
    """The runner's ``batch_key`` for these grids: runs that differ only in their method (the
    penalty, which :func:`run_cells` sets per run), learning rate or seed may share a batch."""
    key = {k: v for k, v in params.items() if k not in ("method", "spec", "lr")}
    key["train"] = {k: v for k, v in dict(params["train"]).items() if k != "lr"}
    return key
