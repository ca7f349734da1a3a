"""Which floating-point precision a run computes in: bf16 autocast or fp32.

bf16 autocast (``torch.autocast(dtype=torch.bfloat16)``) runs convolutions and matrix products
in bfloat16, an 8-bit-exponent, 8-bit-significand format (relative rounding error
:math:`2^{-8} \\approx 0.4\\,\\%`), and keeps parameters, optimiser state, batch-norm
statistics and the loss in fp32 (mixed precision: Micikevicius et al., "Mixed Precision
Training", ICLR 2018, https://arxiv.org/abs/1710.03740; bf16: Kalamkar et al., "A Study of
BFLOAT16 for Deep Learning Training", 2019, https://arxiv.org/abs/1905.12322).

``TrainConfig.amp_bf16`` is tri-state:

* ``None`` (default): bf16 on CUDA, fp32 on the CPU, so CPU protocols written before CPU bf16
  existed keep computing in fp32;
* ``True``: bf16 on CUDA and on CPUs with native bf16 arithmetic (AVX-512 BF16 or AMX); fp32
  on other CPUs (the fallback is recorded in ``FitResult.precision``, never silent);
* ``False``: fp32 everywhere.

The precision actually used is ``"bf16"`` or ``"fp32"`` (:func:`resolve_precision`); a run's
record keeps it (``FitResult.precision``), and a protocol that wants bf16 says so in its
``train`` mapping (``amp_bf16: true``), which makes it part of the run's identity.

Which precision a run actually computed in is recorded twice: ``FitResult.precision`` for one
``fit``, and, for a grid run, ``provenance.precision`` of its record (the runner resets
:func:`reset_precisions_used` before the run and reads :func:`precisions_used` after it;
``fit`` and evaluation call :func:`note_precision`). On a machine where a protocol's
``amp_bf16: true`` would compute in fp32, :func:`protocol_for_device` rewrites it to ``false``
before the runs are named, so a bf16 run and its fp32 fallback never share a run id.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

PRECISIONS = ("bf16", "fp32")
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's own check, else /proc/cpuinfo flags).

    oneDNN emulates bf16 on CPUs without AVX-512 BF16 / AMX, which is slower than fp32, so
    only native support counts.
    """
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if torch.backends.mkldnn.is_available() and check is not None:
        try:
            if not bool(check()):
                return False
        except RuntimeError:  # pragma: no cover - builds without the op
            pass
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: trust oneDNN alone
        return torch.backends.mkldnn.is_available() and check is not None and bool(check())
    flags = set()
    for line in info.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return any(flag in flags for flag in _CPU_BF16_FLAGS)


def resolve_precision(device: str | torch.device, amp_bf16: bool | None) -> str:
    """``"bf16"`` or ``"fp32"``: the precision a run on ``device`` uses for ``amp_bf16``.

    Raises:
        ValueError: ``amp_bf16`` is not ``None``, ``True`` or ``False``.
    """
    if not (amp_bf16 is None or isinstance(amp_bf16, bool)):
        raise ValueError(f"amp_bf16 must be None, True or False, got {amp_bf16!r}")
    kind = torch.device(device).type
    if amp_bf16 is False:
        return "fp32"
    if kind == "cuda":
        return "bf16"
    if kind == "cpu" and amp_bf16 is True and cpu_has_native_bf16():
        return "bf16"
    return "fp32"


_USED: set[str] = set()


def note_precision(precision: str) -> None:
    """Record that this process computed something in ``precision`` (``"bf16"``/``"fp32"``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    _USED.add(precision)


def reset_precisions_used() -> None:
    """Forget what :func:`note_precision` recorded (the runner calls it before each run)."""
    _USED.clear()


def precisions_used() -> str | None:
    """What was computed since the last reset: ``"bf16"``, ``"fp32"``, ``"bf16+fp32"`` (e.g. a
    bf16 fine-tuning evaluated by an fp32 linear probe), or ``None`` (no training or evaluation
    through the engine, e.g. a cell that only read a cached result)."""
    return "+".join(sorted(_USED)) or None


def _set_bf16_off(protocol: Any, drop: bool) -> tuple[Any, list[str]]:
    """A copy of ``protocol`` (nested mappings and lists) and the paths of its
    ``amp_bf16: true`` entries (``train.amp_bf16``, ``targets[0].train.amp_bf16``); with
    ``drop`` those entries are ``false`` in the copy."""
    found: list[str] = []

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, Mapping):
            out = {}
            for key, value in node.items():
                where = f"{path}.{key}" if path else str(key)
                if key == "amp_bf16" and value is True:
                    out[key] = not drop
                    found.append(where)
                else:
                    out[key] = walk(value, where)
            return out
        if isinstance(node, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(node)]
        return node

    return walk(protocol, ""), found


def bf16_paths(protocol: Any) -> list[str]:
    """Where ``protocol`` asks for bf16 autocast: the paths of its ``amp_bf16: true`` entries
    (nested mappings and lists searched); empty for an fp32 protocol."""
    return _set_bf16_off(protocol, drop=False)[1]


def protocol_for_device(protocol: Any, device: str | torch.device) -> tuple[Any, list[str]]:
    """``protocol`` with every ``amp_bf16: true`` that ``device`` would compute in fp32 set to
    ``false`` (nested mappings and lists are searched), and the paths changed (``train.amp_bf16``).

    The engine falls back to fp32 on a CPU without native bf16 (:func:`resolve_precision`); doing
    that in the protocol instead, before run ids are computed from it, keeps "bf16 and fp32 runs
    are different runs" true on every machine (issue 13).
    """
    if resolve_precision(device, True) == "bf16":
        return _set_bf16_off(protocol, drop=False)[0], []
    return _set_bf16_off(protocol, drop=True)
