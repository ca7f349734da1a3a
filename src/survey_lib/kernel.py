"""The Jupyter kernel the reproduction notebooks run in, and a check that it still works.

``make install`` registers a kernel spec ``python3`` inside the virtual environment
(``ipykernel install --sys-prefix``). Its ``kernel.json`` records the interpreter as an absolute
path, so a checkout that is moved or copied keeps a spec pointing at a python that no longer
exists, and papermill fails with ``FileNotFoundError``. :func:`ensure_kernel` detects that and
rewrites the spec to the running interpreter (what ``ipykernel install`` would write); ``make
install`` and the ``make reproduce`` driver call it every time (``python -m survey_lib.kernel``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from survey_lib.io import atomic_write_text

KERNEL_NAME = "python3"


def _interpreter_ok(argv0: str) -> bool:
    path = Path(argv0) if os.path.isabs(argv0) else shutil.which(argv0)
    return path is not None and Path(path).is_file() and os.access(path, os.X_OK)


def ensure_kernel(name: str = KERNEL_NAME) -> str | None:
    """Make the kernel spec ``name`` start an interpreter that exists.

    Returns ``None`` when the spec is fine, else a sentence saying what was repaired. A missing
    spec is installed into this interpreter's prefix with ipykernel; a spec whose interpreter is
    missing is rewritten to ``sys.executable`` in place.

    Raises:
        OSError: the stale spec cannot be rewritten (the message names the file and the fix).
    """
    from jupyter_client.kernelspec import KernelSpecManager

    found = KernelSpecManager().find_kernel_specs()
    if name not in found:
        from ipykernel.kernelspec import install

        install(kernel_name=name, display_name="Python 3 (survey_lib)", prefix=sys.prefix)
        return f"kernel spec {name!r} was missing: installed for {sys.executable}"
    spec_file = Path(found[name]) / "kernel.json"
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    argv = list(spec.get("argv") or [])
    if argv and _interpreter_ok(argv[0]):
        return None
    stale = argv[0] if argv else "(no argv)"
    spec["argv"] = [sys.executable, *argv[1:]] if argv else [
        sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"
    ]
    try:
        atomic_write_text(spec_file, json.dumps(spec, indent=1) + "\n")
    except OSError as exc:
        raise OSError(
            f"kernel spec {spec_file} starts {stale}, which does not exist, and cannot be "
            f"rewritten ({exc.strerror or exc}); run `{sys.executable} -m ipykernel install "
            f"--sys-prefix --name {name}`"
        ) from None
    return f"kernel spec {spec_file} started {stale}, which does not exist: now {sys.executable}"


if __name__ == "__main__":
    message = ensure_kernel()
    print(message or f"kernel spec {KERNEL_NAME!r} is fine")
