"""SIGTERM to the driver (``python -m survey_lib.reproduce``, as a job scheduler or ``timeout``
sends it) stops the whole process tree: the papermill kernel and the pool workers its run_grid
spawned, which live in the kernel's own session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import yaml

from survey_lib import reproduce

REPO = Path(__file__).resolve().parents[2]

NOTEBOOK = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

```{code-cell} ipython3
:tags: [parameters]

scale = "smoke"
profile = "offline"
results_dir = "results"
checkpoint_dir = "results/checkpoints"
{declared}
```

```{code-cell} ipython3
import os
from pathlib import Path

import sleepy
from survey_lib.runner import run_grid

Path(os.environ["SLEEPY_DIR"], f"kernel_{os.getpid()}").touch()
run_grid("sleep", sleepy.sleep, [{"i": 0}, {"i": 1}], [0], results_dir, workers=2, progress=False)
```
"""

SLEEPY = """
import os
import time
from pathlib import Path


def sleep(params, seed):
    Path(os.environ["SLEEPY_DIR"], f"worker_{os.getpid()}").touch()
    time.sleep(300)
    return {"x": 1.0}
"""


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.notebooks  # runs a (tiny) notebook through the driver: ~15 s on 2 cores
def test_sigterm_to_the_driver_stops_kernel_and_pool_workers(tmp_path: Path) -> None:
    root, marks = tmp_path / "repo", tmp_path / "marks"
    (root / "notebooks" / "params" / "l2sp_vs_bss").mkdir(parents=True)
    marks.mkdir()
    # the driver validates the protocol before it starts a kernel: give the tiny notebook the
    # real (valid) smoke protocol of l2sp_vs_bss, and declare its names
    protocol = reproduce.load_params("l2sp_vs_bss", "smoke", "offline", REPO / "notebooks")
    declared = "\n".join(f"{key} = None" for key in protocol)
    (root / "notebooks" / "l2sp_vs_bss.md").write_text(NOTEBOOK.replace("{declared}", declared))
    (root / "notebooks" / "params" / "l2sp_vs_bss" / "smoke.yaml").write_text(
        yaml.safe_dump(protocol)
    )
    (root / "sleepy.py").write_text(textwrap.dedent(SLEEPY))
    path = os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = {**os.environ, "PYTHONPATH": path, "SLEEPY_DIR": str(marks)}
    cmd = [sys.executable, "-m", "survey_lib.reproduce", "--scale", "smoke", "--only"]
    cmd += ["l2sp_vs_bss", "--no-book", "--notebooks-dir", str(root / "notebooks")]
    cmd += ["--results-root", str(tmp_path / "results")]
    driver = subprocess.Popen(cmd, env=env, cwd=root)
    try:
        deadline = time.monotonic() + 120
        while len(list(marks.glob("worker_*"))) < 2 and time.monotonic() < deadline:
            assert driver.poll() is None, "the driver ended before its pool workers started"
            time.sleep(0.2)
        workers = [int(p.name.split("_")[1]) for p in marks.glob("worker_*")]
        kernel = [int(p.name.split("_")[1]) for p in marks.glob("kernel_*")]
        assert len(workers) == 2 and len(kernel) == 1
        tree = {p.pid for p in psutil.Process(driver.pid).children(recursive=True)}
        assert set(workers) | set(kernel) <= tree  # the pool workers are the driver's descendants
        driver.send_signal(signal.SIGTERM)
        assert driver.wait(60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 15
        while any(_alive(pid) for pid in tree) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [pid for pid in tree if _alive(pid)] == []
    finally:
        for pid in [driver.pid, *[int(p.name.split("_")[1]) for p in marks.glob("*_*")]]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
