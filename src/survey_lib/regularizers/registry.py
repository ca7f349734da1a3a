"""One factory for every transfer regularizer: ``create_regularizer(name, ...)``."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from torch import nn

from survey_lib.regularizers.base import CombinedRegularizer, Regularizer
from survey_lib.regularizers.bss import BSS
from survey_lib.regularizers.delta import DELTA
from survey_lib.regularizers.l2 import L2
from survey_lib.regularizers.l2_sp import L2SP
from survey_lib.regularizers.l2_sp_lower import L2SPLower
from survey_lib.regularizers.none import NoRegularizer
from survey_lib.regularizers.stochnorm import StochNorm

#: name -> (class, hyperparameters fixed by the name)
_REGISTRY: dict[str, tuple[type[Regularizer], dict[str, object]]] = {
    "none": (NoRegularizer, {}),
    "l2": (L2, {}),
    "l2_sp": (L2SP, {}),
    "l2_sp_lower": (L2SPLower, {}),
    "delta": (DELTA, {}),
    "delta_unweighted": (DELTA, {"attention": False}),
    # the authors' code and TLlib: the feature-map term summed over the batch (B x "delta")
    "delta_sum": (DELTA, {"reduction": "sum"}),
    "bss": (BSS, {}),
    "stochnorm": (StochNorm, {}),
}
SEPARATOR = "__"


def list_regularizers() -> list[str]:
    """Registered names, sorted (combine them with ``+``, e.g. ``"l2_sp+bss"``)."""
    return sorted(_REGISTRY)


def hyperparameters(name: str) -> dict[str, object]:
    """The hyperparameters ``name`` accepts and their defaults (``inspect.Parameter.empty``
    when required)."""
    cls, fixed = _lookup(name)
    signature = inspect.signature(cls.__init__)
    return {
        key: param.default
        for key, param in signature.parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY and key not in fixed
    }


def _loggable(value: object) -> object:
    """``value`` if it is plain data (for provenance files), else a ``<TypeName>`` placeholder."""
    plain = (bool, int, float, str, type(None))
    if isinstance(value, plain):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(item, plain) for item in value):
        return list(value)
    return f"<{type(value).__name__}>"


def _lookup(name: str) -> tuple[type[Regularizer], dict[str, object]]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown regularizer {name!r}; valid: {', '.join(list_regularizers())}")
    return _REGISTRY[name]


def _create_one(
    name: str, source_model: nn.Module | None, target_model: nn.Module | None, hparams: dict
) -> Regularizer:
    cls, fixed = _lookup(name)
    accepted = hyperparameters(name)
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown hyperparameter(s) {unknown} for regularizer {name!r}; "
            f"valid: {', '.join(sorted(accepted)) or '(none)'}"
        )
    required = sorted(
        key for key, default in accepted.items() if default is inspect.Parameter.empty
    )
    missing = [key for key in required if key not in hparams]
    if missing:
        raise ValueError(f"regularizer {name!r} needs hyperparameter(s) {missing}")
    for key, model, needed in (
        ("source_model", source_model, cls.needs_source),
        ("target_model", target_model, cls.needs_target),
    ):
        if needed and model is None:
            raise ValueError(f"regularizer {name!r} needs {key}=... (a TransferModel)")
    regularizer = cls(source_model, target_model, **fixed, **hparams)
    resolved = {key: default for key, default in accepted.items()}
    resolved.update(hparams)
    regularizer.hparams = {
        "name": name,
        **{k: _loggable(v) for k, v in {**fixed, **resolved}.items()},
    }
    return regularizer


def create_regularizer(
    name: str | Sequence[str],
    *,
    source_model: nn.Module | None = None,
    target_model: nn.Module | None = None,
    **hparams: object,
) -> Regularizer:
    """Build a regularizer by name.

    Args:
        name: a registered name (see :func:`list_regularizers`), or several joined by ``+``
            (``"l2_sp+bss"``) or given as a list, summed by
            :class:`~survey_lib.regularizers.base.CombinedRegularizer`.
        source_model: the pretrained model (needed by l2_sp, l2_sp_lower, delta).
        target_model: the model being fine-tuned (needed by delta; checked by l2_sp).
        **hparams: the method's hyperparameters. For a combination, prefix each with its
            regularizer's name and ``__``: ``create_regularizer("l2_sp+bss", l2_sp__alpha=0.1,
            bss__eta=1e-3, ...)``.

    Raises:
        ValueError: unknown name or hyperparameter, or a missing model or required value.
    """
    names = name.split("+") if isinstance(name, str) else list(name)
    names = [part.strip() for part in names]
    for part in names:
        _lookup(part)
    if len(names) == 1:
        return _create_one(names[0], source_model, target_model, dict(hparams))
    if len(set(names)) != len(names):
        raise ValueError(f"regularizer {names} names one method twice")
    split: dict[str, dict[str, object]] = {part: {} for part in names}
    for key, value in hparams.items():
        prefix, sep, rest = key.partition(SEPARATOR)
        if not sep or prefix not in split:
            raise ValueError(
                f"hyperparameter {key!r} of a combination must be prefixed with one of "
                f"{names} and '{SEPARATOR}', e.g. {names[0]}{SEPARATOR}<name>"
            )
        split[prefix][rest] = value
    parts = {part: _create_one(part, source_model, target_model, split[part]) for part in names}
    combined = CombinedRegularizer(parts)
    combined.hparams = {
        "name": "+".join(names),
        **{
            f"{part}{SEPARATOR}{key}": value
            for part, regularizer in parts.items()
            for key, value in regularizer.hparams.items()
            if key != "name"
        },
    }
    return combined
