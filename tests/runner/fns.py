"""Module-level (picklable) run functions for the runner tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

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
        info={"pid": os.getpid(), "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES")},
    )
