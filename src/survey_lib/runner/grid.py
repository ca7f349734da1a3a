"""Experiments as grids of independent runs, resumable, with one JSON record per run.

An experiment ``name`` is a list of parameter dicts times a list of seeds. Each run gets an id,
a hash of its resolved parameters, its seed and the code version, and writes
``<results_dir>/<name>/runs/<run_id>.json`` atomically when it finishes, so:

* an interrupted grid resumes where it stopped (finished runs are skipped);
* a killed run leaves no partial record (the write is a rename of a complete file);
* a failed run (``fn`` raised) is recorded under ``failed/<run_id>.json``, never as a result,
  and is retried on the next call;
* a record that cannot be read (a truncated file) is moved aside into ``corrupt/``, named in a
  warning, and its run is run again;
* records of runs that are not in the grid (an older code version, a removed cell) are moved
  into ``stale/`` when the grid finishes, so ``runs/`` holds this grid's runs only; a run found
  in ``stale/runs/`` is moved back instead of being run again (a grid that returns to an earlier
  protocol resumes, and no record is ever deleted).

Runs execute in this process (``workers=1``), in a pool of spawned local processes
(``workers=N``; one or several per GPU) or as tasks of a Ray cluster (``executor="ray"``, see
:mod:`survey_lib.runner.ray_executor`); every executor gives the same ids and records. Runs of
one cell that differ only in their seed may be trained together (``batch_runs``, ``many``):
one call of a batched function, one record per run as before.

Layout::

    <results_dir>/<name>/runs/<run_id>.json      params, seed, metrics, info, provenance
    <results_dir>/<name>/failed/<run_id>.json    params, seed, failure, provenance
    <results_dir>/<name>/corrupt/                unreadable records, moved aside
    <results_dir>/<name>/stale/runs/<run_id>.json   records of runs no longer in the grid
    <results_dir>/<name>/stale/failed/<run_id>.json failure records of such runs
    <results_dir>/<name>/runs.csv                one row per run: run_id, params, seed,
                                                 code_version
    <results_dir>/<name>/results.csv             one row per run x metric: run_id, metric,
                                                 value (read_results_csv joins the two into
                                                 the tidy table run_grid returns)
    <results_dir>/<name>/provenance.json         git, packages, device, grid, seeds, timing
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import dataclasses
import hashlib
import itertools
import json
import multiprocessing as mp
import os
import pickle
import signal
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from survey_lib import provenance
from survey_lib.data.registry import reset_datasets_used, used_checksum
from survey_lib.io import atomic_write_json
from survey_lib.runner.results import (
    CorruptRecord,
    quarantine,
    read_record,
    tidy,
    write_results_csv,
)
from survey_lib.train.precision import precisions_used, reset_precisions_used

#: columns of the tidy table that parameters may not use as names.
RESERVED = ("run_id", "seed", "metric", "value", "code_version")
#: sub-folder of an experiment holding the records of runs no longer in its grid.
STALE = "stale"
#: Where runs may execute, local processes (the default, no set-up) or a Ray cluster.
EXECUTORS = ("local", "ray")
#: environment variable choosing the executor when run_grid's ``executor`` is not given (the
#: driver sets it for ``--executor``, so notebooks need no edit).
ENV_EXECUTOR = "SURVEY_EXECUTOR"
#: environment variable giving ``workers_per_gpu`` when run_grid's argument is not given.
ENV_WORKERS_PER_GPU = "SURVEY_WORKERS_PER_GPU"
#: runs one GPU holds at once unless told otherwise; 1 until the GPU box's device check has
#: measured what several workers per GPU gain (issue 12, item 8).
DEFAULT_WORKERS_PER_GPU = 1


class RunFailed(Exception):
    """Raised by a run function to record the run as failed (e.g. a diverged training).

    Args:
        failure: what went wrong, e.g. ``FitResult.failure`` (``{"step", "epoch", "value"}``).
    """

    def __init__(self, failure: Mapping[str, Any] | str) -> None:
        self.failure = dict(failure) if isinstance(failure, Mapping) else {"message": failure}
        super().__init__(json.dumps(self.failure, default=str))


@dataclass
class RunOutput:
    """What a run function may return instead of a plain metrics dict.

    Attributes:
        metrics: metric name -> number; each becomes one row of the tidy table.
        info: anything JSON-serialisable kept in the run record (history, timings, ...).
        dataset_checksum: checksum of the data the run used (overrides run_grid's argument).
    """

    metrics: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)
    dataset_checksum: str | None = None


RunFn = Callable[[dict[str, Any], int], "dict[str, float] | RunOutput"]
#: A batched run function, ``many([(params, seed), ...])``, returns one outcome per run, in
#: order, each a metrics dict, a :class:`RunOutput`, or an exception instance (that run failed
#: alone; :class:`RunFailed` as from a single run). If it raises, every run of the batch fails.
ManyFn = Callable[
    [list[tuple[dict[str, Any], int]]],
    "Sequence[dict[str, float] | RunOutput | BaseException]",
]


def expand_grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    """The cartesian product of named axes, e.g. ``expand_grid(lr=[0.1, 0.01], n=[1, 2])``."""
    for key, values in axes.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise ValueError(f"axis {key!r} must be a list of values, got {values!r}")
    keys = list(axes)
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes.values())]


def _jsonable(value: Any, where: str) -> Any:
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()  # NumPy / torch scalars
    if isinstance(value, (tuple, list)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise TypeError(
        f"{where}: {value!r} ({type(value).__name__}) is not a JSON value; "
        "use str, int, float, bool, None or lists/dicts of them"
    )


def resolve_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as plain JSON values, keys sorted; rejects reserved column names."""
    bad = sorted(set(params) & set(RESERVED))
    if bad:
        raise ValueError(f"parameter names {bad} are reserved; reserved names are {RESERVED}")
    return {str(k): _jsonable(params[k], f"parameter {k!r}") for k in sorted(params)}


def run_id(params: Mapping[str, Any], seed: int, code_version: str, batch_runs: int = 1) -> str:
    """16 hex digits of SHA-256 over the resolved parameters, the seed and the code version,
    and ``batch_runs`` when it is above 1 (a run trained in a batch of up to ``batch_runs`` runs
    is a different run from one trained alone; with ``batch_runs=1`` ids are unchanged)."""
    payload: dict[str, Any] = {
        "params": resolve_params(params),
        "seed": int(seed),
        "code": code_version,
    }
    if batch_runs > 1:
        payload["batch_runs"] = int(batch_runs)
    key = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class _Task:
    fn: RunFn
    experiment: str
    folder: str
    run_id: str
    params: dict[str, Any]
    seed: int
    code_version: str
    dataset_checksum: str | None
    executor: str = "local"
    #: for a run of a batch: its size, index, key (a hash of the batch key) and the batch's
    #: start and wall time.
    batch: dict[str, Any] | None = None


@dataclass
class _Batch:
    """Runs of compatible cells executed by one call of ``many`` (one pool or Ray task)."""

    many: ManyFn
    key: str
    tasks: list[_Task]


def _execute(task: _Task, write: bool = True) -> dict[str, Any]:
    """Run one task and build its record; writes it (see :func:`_commit`) unless ``write`` is
    false (the Ray driver writes it). Returns ``{"run_id", "status", "failure", "record"}``."""
    torch = sys.modules.get("torch")
    cuda = torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()
    if cuda and task.batch is None:
        torch.cuda.reset_peak_memory_stats()
    started, t0 = provenance.now_iso(), time.perf_counter()
    metrics: dict[str, float] = {}
    info: dict[str, Any] = {}
    checksum, failure = task.dataset_checksum, None
    reset_datasets_used()  # the data layer records the splits this run loads
    reset_precisions_used()  # and the engine the precision it computes in
    try:
        out = task.fn(dict(task.params), task.seed)
        if isinstance(out, RunOutput):
            info, checksum = _jsonable(out.info, "RunOutput.info"), out.dataset_checksum or checksum
            out = out.metrics
        if not isinstance(out, Mapping) or not out:
            raise TypeError(f"run function must return a non-empty dict of metrics, got {out!r}")
        metrics = {str(k): float(v) for k, v in out.items()}
        checksum = checksum or used_checksum()
    except RunFailed as exc:
        failure = {"kind": "RunFailed", **_jsonable(exc.failure, "RunFailed.failure")}
    except Exception as exc:  # noqa: BLE001 - any error of the user's fn is recorded, not raised
        failure = {
            "kind": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        }
    record = {
        "run_id": task.run_id,
        "experiment": task.experiment,
        "params": task.params,
        "seed": task.seed,
        "provenance": {
            **provenance.environment(),
            "code_version": task.code_version,
            "seed": task.seed,
            "params": task.params,
            "dataset_checksum": checksum,
            "precision": precisions_used(),
            "started": started,
            "finished": provenance.now_iso(),
            "wall_seconds": time.perf_counter() - t0,
            "peak_memory": provenance.peak_memory(),
            "pid": os.getpid(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "executor": task.executor,
        },
    }
    if task.batch is not None:  # the batch's start and an equal share of its wall time
        record["provenance"].update(
            started=task.batch["started"],
            wall_seconds=task.batch["wall_seconds"] / task.batch["size"],
            batch=task.batch,
        )
    if failure is None:
        outcome = {"record": {**record, "metrics": metrics, "info": info}}
        outcome.update(run_id=task.run_id, status="ok", failure=None)
    else:
        outcome = {"record": {**record, "failure": failure}}
        outcome.update(run_id=task.run_id, status="failed", failure=failure)
    if write:
        _commit(task.folder, outcome)
    return outcome


def _commit(folder: str | Path, outcome: Mapping[str, Any]) -> None:
    """Write an outcome's record atomically: ``runs/<id>.json`` (removing an earlier failure
    record) or ``failed/<id>.json``."""
    folder, rid = Path(folder), outcome["run_id"]
    if outcome["status"] == "ok":
        atomic_write_json(folder / "runs" / f"{rid}.json", outcome["record"])
        (folder / "failed" / f"{rid}.json").unlink(missing_ok=True)
    else:
        atomic_write_json(folder / "failed" / f"{rid}.json", outcome["record"])


@dataclass
class _Outcome:
    """A run function that returns (or raises) what a batched call already computed."""

    value: Any

    def __call__(self, params: dict[str, Any], seed: int) -> Any:
        if isinstance(self.value, Exception):
            raise self.value
        if isinstance(self.value, BaseException):  # e.g. a SystemExit handed back as a value
            raise RuntimeError(f"batched run returned {self.value!r}") from self.value
        return self.value


def _execute_batch(batch: _Batch, write: bool = True) -> list[dict[str, Any]]:
    """Run a batch with one call of ``batch.many``, then build (and write) one record per run
    exactly as :func:`_execute` does, each with the batch's timing. If ``many`` raises or does
    not return one outcome per run, every run of the batch fails with that error."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()
    started, t0 = provenance.now_iso(), time.perf_counter()
    runs = [(dict(t.params), t.seed) for t in batch.tasks]
    try:
        outs = list(batch.many(runs))
        if len(outs) != len(runs):
            raise TypeError(
                f"a batched run function must return one outcome per (params, seed), in "
                f"order: got {len(outs)} for {len(runs)} runs"
            )
    except Exception as exc:  # noqa: BLE001 - the batch's error is each of its runs' failure
        outs = [exc] * len(runs)
    wall = time.perf_counter() - t0
    meta = {"size": len(runs), "key": batch.key, "started": started, "wall_seconds": wall}
    return [
        _execute(dataclasses.replace(task, fn=_Outcome(out), batch={**meta, "index": i}), write)
        for i, (task, out) in enumerate(zip(batch.tasks, outs))
    ]


def _execute_unit(unit: _Task | _Batch, write: bool = True) -> list[dict[str, Any]]:
    """Execute one unit of work (a run or a batch of runs); one outcome per run."""
    if isinstance(unit, _Batch):
        return _execute_batch(unit, write)
    return [_execute(unit, write)]


def _unit_tasks(unit: _Task | _Batch) -> list[_Task]:
    return unit.tasks if isinstance(unit, _Batch) else [unit]


def _crash_outcome(task: _Task, exc: BaseException) -> dict[str, Any]:
    """The failure of a run whose worker died (or whose task the executor lost)."""
    failure = {"kind": type(exc).__name__, "message": str(exc)}
    record = {
        "run_id": task.run_id,
        "experiment": task.experiment,
        "params": task.params,
        "seed": task.seed,
        "failure": failure,
        "provenance": {
            "code_version": task.code_version,
            "executor": task.executor,
            "finished": provenance.now_iso(),
        },
    }
    return {"run_id": task.run_id, "status": "failed", "failure": failure, "record": record}


def _finish(
    unit: _Task | _Batch, result: list[dict[str, Any]] | BaseException, written: bool
) -> list[dict[str, Any]]:
    """Outcomes of a finished unit, written unless the worker ``written`` them already. A unit
    whose worker died (``result`` is the exception) fails each of its runs under ``failed/``,
    to be retried on the next call."""
    if isinstance(result, BaseException):
        outcomes, written = [_crash_outcome(t, result) for t in _unit_tasks(unit)], False
    else:
        outcomes = result
    if not written:
        for outcome in outcomes:
            _commit(_unit_tasks(unit)[0].folder, outcome)
    return outcomes


def _die_with_parent(parent_pid: int) -> None:
    """Have Linux send this process SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``),
    so pool workers never outlive the process running the grid (e.g. a notebook kernel killed
    by a job scheduler). No-op off Linux."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)


def _init_worker(gpu_queue: Any, threads: int | None, parent_pid: int | None = None) -> None:
    """Pin a worker process to one GPU (``CUDA_VISIBLE_DEVICES``) before CUDA starts, limit its
    CPU threads, and tie its life to its parent's."""
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be an int >= 1, got {value!r}")
    return value


def resolve_workers_per_gpu(workers_per_gpu: int | None = None) -> int:
    """``workers_per_gpu``, else ``$SURVEY_WORKERS_PER_GPU``, else
    :data:`DEFAULT_WORKERS_PER_GPU`; an int >= 1."""
    if workers_per_gpu is not None:
        return _positive_int(workers_per_gpu, "workers_per_gpu")
    env = os.environ.get(ENV_WORKERS_PER_GPU, "").strip()
    if not env:
        return DEFAULT_WORKERS_PER_GPU
    try:
        return _positive_int(int(env), f"${ENV_WORKERS_PER_GPU}")
    except ValueError:
        raise ValueError(f"${ENV_WORKERS_PER_GPU} must be an int >= 1, got {env!r}") from None


def resolve_executor(executor: str | None = None) -> str:
    """``executor``, else ``$SURVEY_EXECUTOR``, else ``"local"``; one of :data:`EXECUTORS`."""
    value = executor if executor is not None else os.environ.get(ENV_EXECUTOR, "").strip()
    value = value or "local"
    if value not in EXECUTORS:
        where = "" if executor is not None else f" (from ${ENV_EXECUTOR})"
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {value!r}{where}")
    return value


def _resolve_workers(
    workers: int | str, n_units: int, workers_per_gpu: int = DEFAULT_WORKERS_PER_GPU
) -> tuple[int, int]:
    gpus = _gpu_count()
    if workers == "auto":
        workers = max(1, gpus * workers_per_gpu)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1 or 'auto', got {workers!r}")
    return min(workers, max(1, n_units)), gpus


def worker_slots(n_workers: int, gpus: int, cpus: int) -> tuple[list[int] | None, int]:
    """The GPU of each local worker and the CPU threads each may use.

    Worker ``i`` gets GPU ``i mod gpus`` (round robin, so ``workers="auto"`` with ``k`` workers
    per GPU puts ``k`` on each); without GPUs the list is ``None``. Threads are
    ``max(1, cpus // n_workers)`` in both cases, so workers never oversubscribe the CPU.
    """
    gpu_ids = [i % gpus for i in range(n_workers)] if gpus else None
    return gpu_ids, max(1, cpus // max(1, n_workers))


def _finished(
    folder: Path, rid: str, name: str, moved: list[str], restored: list[str] | None = None
) -> bool:
    """Whether run ``rid`` has a complete record. An unreadable ``runs/`` or ``failed/`` record
    is moved into ``corrupt/`` with a warning naming it (and appended to ``moved``); the run
    then counts as not finished and runs again. A run with no record in ``runs/`` but a
    readable one in ``stale/runs/`` (see :func:`_move_stale`) has it moved back (its id
    appended to ``restored``, its ``failed/`` record removed as a finished run's is) and counts
    as finished; an unreadable one there is left, named in a warning, and the run runs again."""
    for sub, need in (("runs", "metrics"), ("failed", "failure")):
        path = folder / sub / f"{rid}.json"
        if not path.exists():
            continue
        try:
            read_record(path, need=need)
        except CorruptRecord as exc:
            dest = quarantine(path, folder)
            moved.append(str(dest))
            warnings.warn(f"{name}: {exc}; moved to {dest}; the run is run again", stacklevel=3)
            continue
        if sub == "runs":
            return True
    stale = folder / STALE / "runs" / f"{rid}.json"
    if not stale.exists():
        return False
    try:
        read_record(stale)
    except CorruptRecord as exc:
        warnings.warn(f"{name}: {exc}; not restored; the run is run again", stacklevel=3)
        return False
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    os.replace(stale, folder / "runs" / stale.name)
    (folder / "failed" / stale.name).unlink(missing_ok=True)
    if restored is not None:
        restored.append(rid)
    return True


def _move_stale(folder: Path, ids: Mapping[str, Any]) -> dict[str, list[str]]:
    """Move every ``runs/*.json`` and ``failed/*.json`` record whose run id is not in ``ids``
    into ``stale/runs/`` and ``stale/failed/`` (same file name, by rename, so nothing is lost
    and :func:`_finished` can move a record back). Returns the ids moved, per sub-folder."""
    moved: dict[str, list[str]] = {}
    for sub in ("runs", "failed"):
        moved[sub] = []
        for path in sorted((folder / sub).glob("*.json")):
            if path.stem in ids:
                continue
            dest = folder / STALE / sub / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)
            moved[sub].append(path.stem)
    return moved


def _batch_units(
    tasks: list[_Task],
    batch_runs: int,
    many: ManyFn | None,
    batch_key: Callable[[dict[str, Any]], Any] | None,
) -> list[_Task | _Batch]:
    """Group the runs to do into batches of up to ``batch_runs`` runs with equal
    ``batch_key(params)`` (default: the parameters themselves, i.e. seeds of one cell), in the
    order their groups first appear."""
    if batch_runs == 1 or many is None:
        return list(tasks)
    groups: dict[str, list[_Task]] = {}
    for task in tasks:
        key = task.params if batch_key is None else batch_key(dict(task.params))
        text = json.dumps(_jsonable(key, "batch_key(params)"), sort_keys=True)
        groups.setdefault(hashlib.sha256(text.encode()).hexdigest()[:12], []).append(task)
    return [
        _Batch(many, key, members[i : i + batch_runs])
        for key, members in groups.items()
        for i in range(0, len(members), batch_runs)
    ]


class _Progress:
    """One tqdm bar over a grid's runs; its postfix counts the tasks running (a task is a run
    or a batch of runs) and the runs failed."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar = tqdm(total=total, desc=desc, **({} if enabled else {"disable": True}))
        self.failed = 0
        self.show(0)

    def show(self, running: int) -> None:
        self.bar.set_postfix(running=running, failed=self.failed, refresh=False)

    def done(self, outcomes: list[dict[str, Any]], running: int) -> None:
        self.failed += sum(o["status"] != "ok" for o in outcomes)
        self.show(running)
        self.bar.update(len(outcomes))

    def close(self) -> None:
        self.bar.close()


def run_grid(
    name: str,
    fn: RunFn,
    grid: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    results_dir: str | os.PathLike[str],
    *,
    workers: int | str = 1,
    code_version: str | None = None,
    dataset_checksum: str | None = None,
    progress: bool = True,
    executor: str | None = None,
    ray_address: str | None = None,
    workers_per_gpu: int | None = None,
    batch_runs: int = 1,
    many: ManyFn | None = None,
    batch_key: Callable[[dict[str, Any]], Any] | None = None,
    prepare: Callable[[], Any] | None = None,
) -> pd.DataFrame:
    """Run ``fn(params, seed)`` for every cell of ``grid`` and every seed, skipping done runs.

    Args:
        name: experiment name; its folder is ``results_dir/name``.
        fn: returns a dict of metrics or a :class:`RunOutput`; raises :class:`RunFailed` (or
            any exception) to record a failure. With ``workers > 1`` it must be picklable (a
            module-level function, not a lambda or a notebook closure).
        grid: parameter dicts (see :func:`expand_grid`); values must be JSON values.
        seeds: seeds to run for every cell.
        results_dir: root folder of all experiments.
        workers: local executor only. ``1`` runs in this process, in order; ``N`` uses N
            spawned processes, each pinned to one GPU in turn when GPUs exist
            (``CUDA_VISIBLE_DEVICES``, so ``fn`` sees its GPU as ``cuda:0``) and limited to
            ``cpu_count // N`` CPU threads; ``"auto"`` is ``workers_per_gpu`` × the number of
            GPUs, or 1.
        code_version: part of every run id; defaults to :func:`provenance.code_version`.
        dataset_checksum: recorded in every run's provenance (a ``RunOutput`` may override).
        progress: show a tqdm bar over runs (postfix: running, failed).
        executor: ``"local"`` (processes on this machine) or ``"ray"`` (one Ray task per run
            or batch; see :mod:`survey_lib.runner.ray_executor`); default ``$SURVEY_EXECUTOR``,
            else ``"local"``. Ids, records, resume and retries are the same with both.
        ray_address: the Ray cluster to join (default ``$RAY_ADDRESS``; none: start a local
            one, or use the one this process already joined).
        workers_per_gpu: runs sharing one GPU at once (local ``workers="auto"``; Ray
            ``num_gpus=1/k``); default ``$SURVEY_WORKERS_PER_GPU``, else
            :data:`DEFAULT_WORKERS_PER_GPU`.
        batch_runs: above 1, runs with equal ``batch_key`` are grouped into batches of up to
            this many and each batch is one call of ``many``; part of each run's id.
        many: the batched run function (see :data:`ManyFn`); needed when ``batch_runs > 1``.
        batch_key: ``params -> JSON value``; runs with equal keys may share a batch (default:
            the parameters, so a batch holds seeds of one cell).
        prepare: called once in this process before any run starts (only when runs are to
            be done), e.g. to download data sets or train shared source models, so no two
            workers do it at once.

    Returns:
        The tidy table (see :func:`load_results`) of this grid's finished runs; the same
        table is written as ``runs.csv`` + ``results.csv`` (read it back with
        :func:`survey_lib.runner.results.read_results_csv`).
        ``df.attrs["failed"]`` lists the runs that failed in this call (also warned about).
    """
    if not name or Path(name).name != name:
        raise ValueError(f"name must be a plain folder name, got {name!r}")
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    executor = resolve_executor(executor)
    per_gpu = resolve_workers_per_gpu(workers_per_gpu)
    batch_runs = _positive_int(batch_runs, "batch_runs")
    if batch_runs > 1 and many is None:
        raise ValueError(
            f"batch_runs={batch_runs} needs many=, a batched run function "
            "many([(params, seed), ...]) -> one outcome per run; or batch_runs=1"
        )
    folder = Path(results_dir) / name
    code = code_version or provenance.code_version()
    cells = [resolve_params(p) for p in grid]
    tasks: list[_Task] = []
    ids: dict[str, None] = {}  # ordered set: the same cell listed twice runs once
    moved: list[str] = []
    restored: list[str] = []
    for params in cells:
        for seed in seeds:
            rid = run_id(params, int(seed), code, batch_runs)
            if rid in ids:
                continue
            ids[rid] = None
            if not _finished(folder, rid, name, moved, restored):
                task = _Task(fn, name, str(folder), rid, params, int(seed), code, dataset_checksum)
                tasks.append(dataclasses.replace(task, executor=executor))
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    units = _batch_units(tasks, batch_runs, many, batch_key)
    if executor == "local":
        n_workers, gpus = _resolve_workers(workers, len(units), per_gpu)
        if n_workers > 1:
            for what, f in (("fn", fn), ("many", many)):
                try:
                    pickle.dumps(f)
                except Exception as exc:
                    raise ValueError(
                        f"workers={workers!r} needs a picklable {what} (a module-level "
                        "function, not a lambda or a function defined in a notebook cell); "
                        f"pickling failed: {exc}"
                    ) from exc
    if prepare is not None and units:
        prepare()
    started, t0 = provenance.now_iso(), time.perf_counter()
    off = not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    bar = _Progress(len(tasks), name, not off)
    summaries: list[dict[str, Any]] = []
    try:
        if executor == "ray":
            from survey_lib.runner import ray_executor

            def on_done(unit: _Task | _Batch, result: Any, running: int) -> None:
                outcomes = _finish(unit, result, written=False)  # the driver writes records
                summaries.extend(outcomes)
                bar.done(outcomes, running)

            cluster = ray_executor.run_units(
                units,
                _execute_unit,
                on_done,
                address=ray_address,
                workers_per_gpu=per_gpu,
                expected_code=None if code_version else code,
            )
            n_workers = cluster.get("slots", 0) if cluster else 0
        elif n_workers == 1:
            cluster = {"nodes": 1, "cpus": os.cpu_count(), "gpus": gpus}
            for i, unit in enumerate(units):
                bar.show(1)
                outcomes = _execute_unit(unit)
                summaries.extend(outcomes)
                bar.done(outcomes, 0 if i + 1 == len(units) else 1)
        else:
            cluster = {"nodes": 1, "cpus": os.cpu_count(), "gpus": gpus}
            summaries = _run_parallel(units, n_workers, gpus, bar)
    finally:
        bar.close()
    failed = [
        {"run_id": s["run_id"], **_params_seed(tasks, s["run_id"]), "failure": s["failure"]}
        for s in summaries
        if s["status"] != "ok"
    ]
    stale = _move_stale(folder, ids)
    records = [
        read_record(folder / "runs" / f"{rid}.json")
        for rid in ids
        if (folder / "runs" / f"{rid}.json").exists()
    ]
    df = tidy(records)
    used = {  # the union of the splits the runs loaded (see survey_lib.data.registry)
        part
        for r in records
        for part in str(r.get("provenance", {}).get("dataset_checksum") or "").split(";")
        if part
    }
    write_results_csv(folder, df)
    atomic_write_json(
        folder / "provenance.json",
        {
            **provenance.environment(),
            "experiment": name,
            "code_version": code,
            "grid": cells,
            "seeds": [int(s) for s in seeds],
            "dataset_checksum": dataset_checksum or (";".join(sorted(used)) or None),
            "precision": "+".join(sorted({  # what this grid's runs computed in
                part for r in records
                for part in str(r.get("provenance", {}).get("precision") or "").split("+") if part
            })) or None,
            "runs_total": len(ids),
            "runs_executed": len(tasks),
            "runs_finished": int(df["run_id"].nunique()) if len(df) else 0,
            "runs_failed": [f["run_id"] for f in failed],
            "records_moved_to_corrupt": moved,
            "records_moved_to_stale": {
                "count": len(stale["runs"]),
                "run_ids": stale["runs"],
                "failed_run_ids": stale["failed"],
            },
            "records_restored_from_stale": {"count": len(restored), "run_ids": restored},
            "workers": n_workers,
            "executor": executor,
            "cluster": cluster if units else None,
            "workers_per_gpu": per_gpu,
            "batch_runs": batch_runs,
            "batches": sum(isinstance(u, _Batch) for u in units),
            "started": started,
            "finished": provenance.now_iso(),
            "wall_seconds": time.perf_counter() - t0,
            "peak_memory": provenance.peak_memory(),
        },
    )
    if failed:
        lines = "; ".join(
            f"{f['run_id']} {f['params']} seed={f['seed']}: {f['failure'].get('kind')}"
            for f in failed
        )
        warnings.warn(
            f"{name}: {len(failed)} run(s) failed (see {folder / 'failed'}): {lines}", stacklevel=2
        )
    df.attrs["failed"] = failed
    return df


def _params_seed(tasks: list[_Task], rid: str) -> dict[str, Any]:
    task = next(t for t in tasks if t.run_id == rid)
    return {"params": task.params, "seed": task.seed}


def _run_parallel(
    units: list[_Task | _Batch], n_workers: int, gpus: int, bar: _Progress
) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    gpu_ids, threads = worker_slots(n_workers, gpus, os.cpu_count() or 1)
    queue = None
    if gpu_ids is not None:
        queue = ctx.Queue()
        for gpu in gpu_ids:
            queue.put(gpu)
    summaries: list[dict[str, Any]] = []
    with cf.ProcessPoolExecutor(
        n_workers,
        mp_context=ctx,
        initializer=_init_worker,
        initargs=(queue, threads, os.getpid()),
    ) as pool:
        futures = {pool.submit(_execute_unit, unit): unit for unit in units}
        pending = len(futures)
        bar.show(min(n_workers, pending))
        for future in cf.as_completed(futures):
            unit = futures[future]
            try:
                result: list[dict[str, Any]] | BaseException = future.result()
            except Exception as exc:  # noqa: BLE001 - a dead worker fails its runs, not the grid
                result = exc
            outcomes = _finish(unit, result, written=True)
            summaries.extend(outcomes)
            pending -= 1
            bar.done(outcomes, min(n_workers, pending))
    return summaries
