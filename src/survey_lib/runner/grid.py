"""Experiments as grids of independent runs, resumable, with one JSON record per run.

An experiment ``name`` is a list of parameter dicts times a list of seeds. Each run gets an id,
a hash of its resolved parameters, its seed and the code version, and writes
``<results_dir>/<name>/runs/<run_id>.json`` atomically when it finishes, so:

* an interrupted grid resumes where it stopped (finished runs are skipped);
* a killed run leaves no partial record (the write is a rename of a complete file);
* a failed run (``fn`` raised) is recorded under ``failed/<run_id>.json``, never as a result,
  and is retried on the next call.

Layout::

    <results_dir>/<name>/runs/<run_id>.json      params, seed, metrics, info, provenance
    <results_dir>/<name>/failed/<run_id>.json    params, seed, failure, provenance
    <results_dir>/<name>/results.csv             tidy table of this grid's runs
    <results_dir>/<name>/provenance.json         git, packages, device, grid, seeds, timing
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import itertools
import json
import multiprocessing as mp
import os
import pickle
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
from survey_lib.io import atomic_write_json, atomic_write_text
from survey_lib.runner.results import read_record, tidy

#: columns of the tidy table that parameters may not use as names.
RESERVED = ("run_id", "seed", "metric", "value", "code_version")


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


def run_id(params: Mapping[str, Any], seed: int, code_version: str) -> str:
    """16 hex digits of SHA-256 over the resolved parameters, the seed and the code version."""
    key = json.dumps(
        {"params": resolve_params(params), "seed": int(seed), "code": code_version},
        sort_keys=True,
        separators=(",", ":"),
    )
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


def _execute(task: _Task) -> dict[str, Any]:
    """Run one task and write its record; returns ``{"run_id", "status", "failure"}``."""
    import sys

    torch = sys.modules.get("torch")
    cuda = torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started, t0 = provenance.now_iso(), time.perf_counter()
    metrics: dict[str, float] = {}
    info: dict[str, Any] = {}
    checksum, failure = task.dataset_checksum, None
    reset_datasets_used()  # the data layer records the splits this run loads
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
            "started": started,
            "finished": provenance.now_iso(),
            "wall_seconds": time.perf_counter() - t0,
            "peak_memory": provenance.peak_memory(),
            "pid": os.getpid(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        },
    }
    folder = Path(task.folder)
    if failure is None:
        atomic_write_json(
            folder / "runs" / f"{task.run_id}.json", {**record, "metrics": metrics, "info": info}
        )
        (folder / "failed" / f"{task.run_id}.json").unlink(missing_ok=True)
        return {"run_id": task.run_id, "status": "ok", "failure": None}
    atomic_write_json(folder / "failed" / f"{task.run_id}.json", {**record, "failure": failure})
    return {"run_id": task.run_id, "status": "failed", "failure": failure}


def _init_worker(gpu_queue: Any, threads: int | None) -> None:
    """Pin a worker process to one GPU (``CUDA_VISIBLE_DEVICES``) before CUDA starts."""
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _resolve_workers(workers: int | str, n_tasks: int) -> tuple[int, int]:
    gpus = _gpu_count()
    if workers == "auto":
        workers = max(1, gpus)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1 or 'auto', got {workers!r}")
    return min(workers, max(1, n_tasks)), gpus


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
        workers: ``1`` runs in this process, in order; ``N`` uses N spawned processes, each
            pinned to one GPU in turn when GPUs exist (``CUDA_VISIBLE_DEVICES``, so ``fn`` sees
            its GPU as ``cuda:0``); ``"auto"`` is the number of GPUs, or 1.
        code_version: part of every run id; defaults to :func:`provenance.code_version`.
        dataset_checksum: recorded in every run's provenance (a ``RunOutput`` may override).
        progress: show a tqdm bar over runs.

    Returns:
        The tidy table (see :func:`load_results`) of this grid's finished runs.
        ``df.attrs["failed"]`` lists the runs that failed in this call (also warned about).
    """
    if not name or Path(name).name != name:
        raise ValueError(f"name must be a plain folder name, got {name!r}")
    if not seeds:
        raise ValueError("seeds must list at least one seed")
    folder = Path(results_dir) / name
    code = code_version or provenance.code_version()
    cells = [resolve_params(p) for p in grid]
    tasks: list[_Task] = []
    ids: dict[str, None] = {}  # ordered set: the same cell listed twice runs once
    for params in cells:
        for seed in seeds:
            rid = run_id(params, int(seed), code)
            if rid in ids:
                continue
            ids[rid] = None
            if not (folder / "runs" / f"{rid}.json").exists():
                tasks.append(
                    _Task(fn, name, str(folder), rid, params, int(seed), code, dataset_checksum)
                )
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    n_workers, gpus = _resolve_workers(workers, len(tasks))
    if n_workers > 1:
        try:
            pickle.dumps(fn)
        except Exception as exc:
            raise ValueError(
                f"workers={workers!r} needs a picklable fn (a module-level function, not a "
                f"lambda or a function defined in a notebook cell); pickling failed: {exc}"
            ) from exc
    started, t0 = provenance.now_iso(), time.perf_counter()
    off = not progress or os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")
    bar = tqdm(total=len(tasks), desc=name, **({"disable": True} if off else {}))
    summaries: list[dict[str, Any]] = []
    if n_workers == 1:
        for task in tasks:
            summaries.append(_execute(task))
            bar.update(1)
    else:
        summaries = _run_parallel(tasks, n_workers, gpus, bar)
    bar.close()
    failed = [
        {"run_id": s["run_id"], **_params_seed(tasks, s["run_id"]), "failure": s["failure"]}
        for s in summaries
        if s["status"] != "ok"
    ]
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
    atomic_write_text(folder / "results.csv", df.to_csv(index=False))
    atomic_write_json(
        folder / "provenance.json",
        {
            **provenance.environment(),
            "experiment": name,
            "code_version": code,
            "grid": cells,
            "seeds": [int(s) for s in seeds],
            "dataset_checksum": dataset_checksum or (";".join(sorted(used)) or None),
            "runs_total": len(ids),
            "runs_executed": len(tasks),
            "runs_finished": int(df["run_id"].nunique()) if len(df) else 0,
            "runs_failed": [f["run_id"] for f in failed],
            "workers": n_workers,
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


def _run_parallel(tasks: list[_Task], n_workers: int, gpus: int, bar: tqdm) -> list[dict[str, Any]]:
    ctx = mp.get_context("spawn")
    queue, threads = None, None
    if gpus:
        queue = ctx.Queue()
        for i in range(n_workers):
            queue.put(i % gpus)
    else:
        threads = max(1, (os.cpu_count() or 1) // n_workers)
    summaries = []
    with cf.ProcessPoolExecutor(
        n_workers, mp_context=ctx, initializer=_init_worker, initargs=(queue, threads)
    ) as pool:
        futures = {pool.submit(_execute, task): task for task in tasks}
        for future in cf.as_completed(futures):
            task = futures[future]
            try:
                summaries.append(future.result())
            except Exception as exc:  # noqa: BLE001 - a dead worker fails its run, not the grid
                failure = {"kind": type(exc).__name__, "message": str(exc)}
                record = {
                    "run_id": task.run_id,
                    "experiment": task.experiment,
                    "params": task.params,
                    "seed": task.seed,
                    "failure": failure,
                }
                atomic_write_json(Path(task.folder) / "failed" / f"{task.run_id}.json", record)
                summaries.append({"run_id": task.run_id, "status": "failed", "failure": failure})
            bar.update(1)
    return summaries
