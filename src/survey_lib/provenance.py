"""Where a result came from: code, packages, machine, time and memory.

Every run record and every results folder carries these fields, following the ML
reproducibility checklist (Pineau et al., "Improving Reproducibility in Machine Learning
Research", JMLR 22(164), 2021, https://jmlr.org/papers/v22/20-303.html).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.metadata
import platform
import resource
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent
_DISTRIBUTIONS = {
    "torch": "torch",
    "torchvision": "torchvision",
    "timm": "timm",
    "numpy": "numpy",
    "sklearn": "scikit-learn",
    "scipy": "scipy",
    "pandas": "pandas",
}


#: Modules (paths under survey_lib/; a path ending in "/" is a whole subpackage) that present
#: results, plan runs or print protocols but never compute a run: editing them must not
#: invalidate runs. No run cell imports them (tested in tests/runner/test_aggregate.py).
PRESENTATION_MODULES = frozenset(
    {"book.py", "reproduce.py", "data/cards.py", "experiments/verdicts.py", "estimate/",
     "comparability.py", "protocol_table.py", "protocol_files.py", "kernel.py"}
)


def is_presentation_module(rel: str) -> bool:
    """Whether ``rel`` (a path under survey_lib/, e.g. ``estimate/runs.py``) is excluded from
    :func:`code_version` by :data:`PRESENTATION_MODULES`."""
    return rel in PRESENTATION_MODULES or any(
        p.endswith("/") and rel.startswith(p) for p in PRESENTATION_MODULES
    )


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 (first 12 hex digits) over the paths and contents of survey_lib's ``.py`` files,
    except :data:`PRESENTATION_MODULES` (book helpers, the notebook driver, data cards, verdict
    rules, the cost estimate, protocol tables), which never change what a run computes.

    Any other edit to the library changes it, so results computed by different code never share
    a run id. It is computed once per process (the code a process imported is the code it runs).
    """
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(_PACKAGE_DIR).as_posix()
        if "__pycache__" in path.parts or is_presentation_module(rel):
            continue
        digest.update(path.relative_to(_PACKAGE_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:12]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(_PACKAGE_DIR), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_info() -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout holding survey_lib.

    ``commit`` is ``None`` outside a git checkout or before the first commit; ``dirty`` says
    whether tracked or untracked files outside the top-level ``results/`` folder differ from that
    commit (a run's own outputs, written there while it runs, do not make the code dirty).
    """
    commit = _git("rev-parse", "HEAD")
    status = _git(
        "status", "--porcelain", "--untracked-files=normal", "--", ":(top)", ":(top,exclude)results"
    )
    return {
        "commit": commit.strip() if commit else None,
        "dirty": None if status is None else bool(status.strip()),
    }


def package_versions() -> dict[str, str | None]:
    """Versions of python and the numerical packages results depend on (``None``: absent)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for key, dist in _DISTRIBUTIONS.items():
        try:
            versions[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[key] = None
    return versions


def cpu_model() -> str:
    """The CPU's model name (from ``/proc/cpuinfo`` on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info() -> dict[str, Any]:
    """CPU model and core count, and the CUDA devices torch sees (names, count)."""
    import os

    info: dict[str, Any] = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "cuda": []}
    torch = sys.modules.get("torch")
    if torch is None:
        import torch
    if torch.cuda.is_available():
        info["cuda"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def peak_memory() -> dict[str, float | None]:
    """Peak resident memory of this process since it started (MiB, ``ru_maxrss``) and peak CUDA
    memory allocated since the last ``torch.cuda.reset_peak_memory_stats`` (MiB; ``None``
    when CUDA was not used). run_grid resets the CUDA peak before each run."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    if sys.platform == "darwin":
        rss_kib /= 1024  # bytes on macOS
    cuda_mib = None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        cuda_mib = torch.cuda.max_memory_allocated() / 2**20
    return {"max_rss_mib": rss_kib / 1024, "cuda_max_allocated_mib": cuda_mib}


def now_iso() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@functools.lru_cache(maxsize=1)
def environment() -> dict[str, Any]:
    """The fields shared by every run of a process: git, packages, device, host, code version."""
    return {
        "git": git_info(),
        "packages": package_versions(),
        "device": device_info(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "code_version": code_version(),
    }
