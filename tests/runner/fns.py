"""Module-level (picklable) run functions for the runner tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from survey_lib.runner import RunOutput


def rendezvous(params: dict, seed: int) -> RunOutput:
    """Waits (up to 60 s) until two processes hold a run, proving the runs overlap."""
    sync = Path(params["sync_dir"])
    (sync / f"pid_{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while len(list(sync.glob("pid_*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    return RunOutput(
        metrics={"square": params["x"] ** 2 + seed},
        info={
            "pid": os.getpid(),
            "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "threads": torch.get_num_threads(),
        },
    )


def square(params: dict, seed: int) -> RunOutput:
    """``x² + seed``; records the process and its torch threads."""
    return RunOutput(
        metrics={"square": params["x"] ** 2 + seed},
        info={
            "pid": os.getpid(),
            "threads": torch.get_num_threads(),
            "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        },
    )


def many_square(runs: list[tuple[dict, int]]) -> list:
    """Batched :func:`square`; a run with ``x < 0`` fails alone (an exception as its outcome)."""
    return [
        ValueError(f"negative x={p['x']}") if p["x"] < 0 else square(p, seed) for p, seed in runs
    ]


def victim(params: dict, seed: int) -> dict:
    """Logs each call; the run ``i == 1`` writes its pid and sleeps until killed, unless the
    file ``killed`` exists (then it returns like the others)."""
    flags = Path(params["flags"])
    with (flags / "calls.log").open("a") as log:
        log.write(f"{params['i']}\n")
    if params["i"] == 1 and not (flags / "killed").exists():
        (flags / "victim.pid.tmp").write_text(str(os.getpid()))
        (flags / "victim.pid.tmp").rename(flags / "victim.pid")
        time.sleep(120)
    return {"i": float(params["i"]) + seed}
