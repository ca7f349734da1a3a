"""What a GPU run needs before it starts: a usable CUDA device, and deterministic kernels.

Two jobs, both called by the entry points (the ``make reproduce`` driver and the training
helpers of :mod:`survey_lib.experiments.common`), never by the numerical code itself:

* :func:`require_cuda` refuses ``SCALE=gpu`` on a machine where PyTorch sees no CUDA device,
  with one message naming what was found (``torch.__version__``, ``torch.version.cuda``, the
  NVIDIA driver, ``torch.cuda.is_available()``) and how to get a working build, instead of
  silently training on the CPU for days and writing ``results/gpu``.
* :func:`configure_determinism` makes CUDA training as deterministic as PyTorch allows
  (PyTorch, "Reproducibility", https://pytorch.org/docs/stable/notes/randomness.html):
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (cuBLAS picks reproducible reduction orders only with a
  fixed workspace; it must be set before the first cuBLAS call, so the driver also exports it
  to the notebook kernels), ``torch.use_deterministic_algorithms(True, warn_only=True)``
  (an op without a deterministic CUDA kernel warns instead of stopping a run) and
  ``torch.backends.cudnn.deterministic = True``, ``torch.backends.cudnn.benchmark = False``.

What remains nondeterministic (README, "GPU"): results agree bitwise between runs on the same
GPU model, driver, CUDA and PyTorch build, not across them (kernel selection and bf16 rounding
differ); ops that PyTorch lists without a deterministic CUDA kernel warn once
(``adaptive_avg_pool2d`` backward when its input is not a multiple of its output, which the
committed protocols never hit, see :class:`~survey_lib.models.alexnet_small.AlexNetSmall`);
a CPU run and a GPU run never agree bitwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import torch

#: The CUDA version of the pinned torch wheel (``torch==2.14.1`` from PyPI is built with it).
PINNED_CUDA = "13.0"
#: Minimum Linux NVIDIA driver for CUDA 13.x (NVIDIA, "CUDA Toolkit Release Notes", table 3:
#: CUDA 13.0 GA needs >= 580.65.06; minor-version compatibility covers later 13.x builds).
MIN_DRIVER = {"13.0": "580.65.06", "12.8": "570.26", "12.6": "560.28.03"}

CUBLAS_WORKSPACE = ":4096:8"

REINSTALL_HINT = (
    "For an older driver, install another CUDA build of the same torch version into the "
    "project's environment from PyTorch's own index (which builds exist for a release is "
    "listed there; not checked by this project), e.g. a CUDA 12.6 build, driver >= 560.28: "
    "`.venv/bin/pip install --force-reinstall torch==2.14.1 torchvision==0.29.2 "
    "--index-url https://download.pytorch.org/whl/cu126` (cu128: driver >= 570.26), then "
    "check with `.venv/bin/python -c 'import torch; print(torch.cuda.is_available())'`."
)


class CudaUnavailableError(RuntimeError):
    """``SCALE=gpu`` was asked for where PyTorch cannot use a CUDA device."""


def driver_version() -> str | None:
    """The NVIDIA kernel driver's version, or ``None`` when no driver is loaded.

    Read from ``/proc/driver/nvidia/version`` (present whenever the kernel module is loaded),
    else from ``nvidia-smi``; neither needs PyTorch to work.
    """
    proc = Path("/proc/driver/nvidia/version")
    try:
        for word in proc.read_text().split():
            parts = word.split(".")
            if len(parts) >= 2 and all(p.isdigit() for p in parts):
                return word
    except OSError:
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(
            [smi, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    first = out.stdout.strip().splitlines()[:1]
    return first[0].strip() if out.returncode == 0 and first else None


def cuda_facts() -> dict[str, object]:
    """What this machine offers a CUDA run: the facts :func:`require_cuda` reports."""
    available = torch.cuda.is_available()
    facts: dict[str, object] = {
        "torch": torch.__version__,
        "torch.version.cuda": torch.version.cuda,
        "driver": driver_version(),
        "torch.cuda.is_available()": available,
        "device_count": torch.cuda.device_count() if available else 0,
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
    if available:
        facts["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return facts


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def cuda_message(facts: dict[str, object] | None = None) -> str:
    """The one message that explains why CUDA is unusable here and what to do."""
    facts = cuda_facts() if facts is None else facts
    found = ", ".join(f"{k}={v}" for k, v in facts.items() if k != "devices")
    build = facts.get("torch.version.cuda")
    driver = facts.get("driver")
    if build is None:
        why = "this torch build has no CUDA support (a CPU-only wheel)."
    elif driver is None:
        why = "no NVIDIA driver is loaded (no /proc/driver/nvidia/version, no nvidia-smi)."
    else:
        need = MIN_DRIVER.get(".".join(str(build).split(".")[:2]))
        if need and _version_tuple(str(driver)) < _version_tuple(need):
            why = f"driver {driver} is older than {need}, the minimum for CUDA {build}."
        else:
            why = (
                "PyTorch still sees no usable device (check CUDA_VISIBLE_DEVICES, "
                "`nvidia-smi`, and that this process may open /dev/nvidia*)."
            )
    return (
        f"SCALE=gpu needs a CUDA device, but {why} Found: {found}. "
        f"The pinned torch wheel (torch==2.14.1 from PyPI) is a CUDA {PINNED_CUDA} build and "
        f"needs an NVIDIA driver >= {MIN_DRIVER[PINNED_CUDA]}. {REINSTALL_HINT} "
        "Or run SCALE=cpu."
    )


def require_cuda(scale: str) -> None:
    """Raise :class:`CudaUnavailableError` when ``scale == "gpu"`` and CUDA is unusable."""
    if scale == "gpu" and not torch.cuda.is_available():
        raise CudaUnavailableError(cuda_message())


def export_determinism_env() -> None:
    """Set ``CUBLAS_WORKSPACE_CONFIG`` in this process's environment (inherited by papermill
    kernels and spawned workers) unless the user set it already."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def configure_determinism(device: str | torch.device) -> bool:
    """Make CUDA training deterministic where PyTorch allows; returns whether it acted.

    On a CPU device nothing changes (CPU training is already bitwise reproducible here and
    ``use_deterministic_algorithms`` would only slow some CPU ops). Idempotent.
    """
    if torch.device(device).type != "cuda":
        return False
    export_determinism_env()
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return True


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (else first buffer; CPU for an empty module):
    where every tensor fed to it must be built."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


__all__ = [
    "CudaUnavailableError",
    "configure_determinism",
    "cuda_facts",
    "cuda_message",
    "driver_version",
    "export_determinism_env",
    "model_device",
    "require_cuda",
]
