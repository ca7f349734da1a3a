"""run_grid's Ray executor: each run, or each batch of runs, is one Ray task of a cluster.

Ray (Moritz et al., "Ray: A Distributed Framework for Emerging AI Applications", OSDI 2018,
https://www.usenix.org/conference/osdi18/presentation/moritz) schedules tasks over a cluster's
nodes by the resources they declare. run_grid already cuts an experiment into independent,
content-addressed runs with atomic records; this module only hands them to Ray:

* **Cluster.** The driver uses the cluster this process already joined, else joins the one at
  ``address`` (or ``$RAY_ADDRESS``), else starts a local one (``ray.init()``), kept for the
  process's later grids. Tasks see the driver's ``PYTHONHASHSEED``, ``TQDM_DISABLE``,
  ``CUBLAS_WORKSPACE_CONFIG`` and ``SURVEY_*`` variables: a local cluster's workers inherit
  them, and a cluster joined by address gets them as the job's ``runtime_env``.
* **Resources.** Each task asks for ``num_cpus = $SURVEY_RAY_CPUS_PER_TASK`` (default 1) and,
  where the cluster has GPUs, ``num_gpus = 1 / workers_per_gpu`` (``k`` runs share a GPU; Ray
  sets ``CUDA_VISIBLE_DEVICES`` so the run sees its GPU as ``cuda:0``). A task limits torch to
  its CPUs' worth of threads.
* **Records.** Tasks return their records and the driver writes them atomically as tasks finish,
  so nodes need no shared results folder. Tasks run with ``max_retries=0``: a task whose worker
  or node dies comes back as an error that the driver records under ``failed/``, and run_grid's
  next call retries it, exactly as with the local executor (Ray's silent retries would hide the
  failure from the records).
* **Same code, same place.** A task changes into the driver's working directory when that
  folder exists on its node (relative paths in parameters, such as checkpoint folders, then
  mean the same on every node of a shared checkout), and, when the run ids use the library's
  code version, refuses to run if its node's code version differs from the driver's.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from survey_lib import provenance

#: Environment variable giving the CPUs each Ray task asks for (default 1).
ENV_CPUS_PER_TASK = "SURVEY_RAY_CPUS_PER_TASK"
#: Environment variables passed on to every task, besides every name starting with
#: ``SURVEY_`` (data and cache folders, font folders).
FORWARDED_ENV = ("PYTHONHASHSEED", "TQDM_DISABLE", "CUBLAS_WORKSPACE_CONFIG")


class CodeVersionMismatch(RuntimeError):
    """A Ray node runs other library code than the driver (check out the same commit there)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            "executor='ray' needs Ray: pip install -e '.[ray]' (or pip install ray)"
        ) from exc
    return ray


def connect(address: str | None = None) -> Any:
    """The ``ray`` module, joined to a cluster: the one this process already joined (its
    ``ray.init`` settings stay as they are), else the one at ``address`` or ``$RAY_ADDRESS``,
    else a new local one (whose workers inherit this environment); a cluster joined by address
    gets :func:`forwarded_env` as the job's ``runtime_env``."""
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        # a local cluster's workers inherit this environment; remote ones get it passed on
        env = {"runtime_env": {"env_vars": forwarded_env()}} if address else {}
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, **env)
    except ConnectionError as exc:
        raise ConnectionError(
            f"could not join the Ray cluster at {address!r}: {exc}. Start one with "
            "`ray start --head` and give its address (--ray-address or $RAY_ADDRESS), or give "
            "none to start a local one"
        ) from exc
    return ray


def cluster_info(ray: Any) -> dict[str, Any]:
    """Alive nodes, their host names, and the cluster's CPUs and GPUs."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    resources = ray.cluster_resources()
    return {
        "nodes": len(nodes),
        "hosts": sorted({str(n.get("NodeManagerHostname")) for n in nodes}),
        "cpus": float(resources.get("CPU", 0.0)),
        "gpus": float(resources.get("GPU", 0.0)),
    }


def cpus_per_task() -> float:
    """``$SURVEY_RAY_CPUS_PER_TASK`` (a number > 0), default 1."""
    text = os.environ.get(ENV_CPUS_PER_TASK, "").strip() or "1"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or not math.isfinite(value):
        raise ValueError(f"${ENV_CPUS_PER_TASK} must be a number > 0, got {text!r}")
    return value


def task_resources(cluster: dict[str, Any], workers_per_gpu: int, cpus: float) -> dict[str, float]:
    """Ray resources of one task: ``cpus`` CPUs and, on a cluster with GPUs, ``1/k`` GPU."""
    return {"num_cpus": cpus, "num_gpus": 1.0 / workers_per_gpu if cluster["gpus"] > 0 else 0.0}


def concurrent_slots(cluster: dict[str, Any], resources: dict[str, float]) -> int:
    """How many such tasks the cluster can run at once (an upper bound: nodes differ)."""
    slots = cluster["cpus"] / resources["num_cpus"]
    if resources["num_gpus"] > 0:
        slots = min(slots, cluster["gpus"] / resources["num_gpus"])
    return max(0, int(slots + 1e-9))


def forwarded_env() -> dict[str, str]:
    """The driver's environment variables every task gets (see :data:`FORWARDED_ENV`)."""
    return {k: v for k, v in os.environ.items() if k in FORWARDED_ENV or k.startswith("SURVEY_")}


def _run_task(
    execute: Callable[[Any, bool], list[dict[str, Any]]],
    unit: Any,
    cwd: str,
    threads: int,
    expected_code: str | None,
) -> list[dict[str, Any]]:
    """Body of every Ray task: one run or batch, its records returned, not written."""
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    import torch

    torch.set_num_threads(threads)
    if expected_code is not None:
        found = provenance.code_version()
        if found != expected_code:
            raise CodeVersionMismatch(
                f"node {provenance.environment().get('hostname')} runs survey_lib code version "
                f"{found}, the driver {expected_code}: check out the driver's commit there"
            )
    return execute(unit, False)


def run_units(
    units: Sequence[Any],
    execute: Callable[[Any, bool], list[dict[str, Any]]],
    on_done: Callable[[Any, list[dict[str, Any]] | BaseException, int], None],
    *,
    address: str | None = None,
    workers_per_gpu: int = 1,
    expected_code: str | None = None,
) -> dict[str, Any] | None:
    """Run every unit as one Ray task and call ``on_done(unit, outcomes or error, running)`` in
    this process as each finishes (``running``: tasks still out, at most the cluster's slots).

    Args:
        units: picklable units of work (runs or batches).
        execute: ``execute(unit, write=False) -> outcomes``, run on a worker.
        on_done: receives the outcomes, or the error when the task's worker or node died.
        address: cluster address (see :func:`connect`).
        workers_per_gpu: tasks sharing one GPU.
        expected_code: the code version workers must have (``None``: not checked).

    Returns:
        :func:`cluster_info` with the task ``resources`` and ``slots``; ``None`` without units.
    """
    if not units:
        return None
    ray = connect(address)
    cluster = cluster_info(ray)
    resources = task_resources(cluster, workers_per_gpu, cpus_per_task())
    slots = concurrent_slots(cluster, resources)
    if slots < 1:
        raise ValueError(
            f"no node of the Ray cluster ({cluster['cpus']:g} CPUs, {cluster['gpus']:g} GPUs) "
            f"can run a task needing {resources}; lower ${ENV_CPUS_PER_TASK}"
        )
    cluster.update(resources=resources, slots=slots)
    remote = ray.remote(_run_task).options(**resources, max_retries=0)
    threads = max(1, int(resources["num_cpus"]))
    cwd = os.getcwd()
    pending = {remote.remote(execute, u, cwd, threads, expected_code): u for u in units}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                unit = pending.pop(ref)
                try:
                    result: list[dict[str, Any]] | BaseException = ray.get(ref)
                except ray.exceptions.RayTaskError as exc:  # raised in _run_task itself
                    result = exc.cause if isinstance(exc.cause, BaseException) else exc
                except ray.exceptions.RayError as exc:  # worker or node died, task lost
                    result = exc
                on_done(unit, result, min(len(pending), slots))
    finally:
        for ref in pending:  # interrupted: stop the tasks still out
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001, S110 - best effort; the task may have finished
                pass
    return cluster
