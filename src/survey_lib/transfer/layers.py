"""Layer transfer: copy the first n units, re-initialise the rest, freeze or scale their lr.

Yosinski, Clune, Bengio & Lipson, "How transferable are features in deep neural networks?",
NeurIPS 2014, https://arxiv.org/abs/1411.1792: a transfer network copies layers ``1..n`` of a
source network, re-initialises layers ``n+1..L`` and either freezes the copied layers (AnB) or
fine-tunes them (AnB+). The survey (Plested & Gedeon) treats freezing and fine-tuning as the two
ends of one scale, the learning rate of the transferred layers relative to the new ones:

.. math:: \\eta_u = m_u \\, \\eta, \\qquad m_u = 0 \\text{ (frozen)} \\;\\dots\\; m_u = 1
    \\text{ (fine-tuned like the new layers)}
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from survey_lib.models.base import TransferModel


def _check_count(model: TransferModel, n: int) -> None:
    if not isinstance(n, int) or not 0 <= n <= len(model.unit_names):
        raise ValueError(
            f"n must be an int in [0, {len(model.unit_names)}] (units {list(model.unit_names)}), "
            f"got {n!r}"
        )


def _reinitialise(unit_name: str, unit: nn.Module) -> None:
    """Reset every parameter of ``unit`` with its module's own ``reset_parameters``."""
    reset: set[int] = set()
    for module in unit.modules():
        if callable(getattr(module, "reset_parameters", None)):
            module.reset_parameters()
            reset.update(id(p) for p in module.parameters(recurse=False))
        elif callable(getattr(module, "reset_running_stats", None)):
            module.reset_running_stats()
    leftover = [name for name, p in unit.named_parameters() if id(p) not in reset]
    with torch.no_grad():
        for name, param in unit.named_parameters():
            if id(param) in reset or param.ndim < 2:
                continue
            # Loose tensors such as a ViT's position embedding: timm's truncated normal, std 0.02.
            nn.init.trunc_normal_(param, std=0.02)
            leftover.remove(name)
    if leftover:
        warnings.warn(
            f"unit {unit_name!r}: parameters {leftover} have no reset_parameters and were kept",
            stacklevel=3,
        )


def transfer_units(
    source: TransferModel,
    target: TransferModel,
    n: int,
    *,
    freeze: bool = False,
    seed: int | None = None,
) -> TransferModel:
    """Copy the first ``n`` units of ``source`` into ``target`` and re-initialise the others.

    Parameters and buffers (e.g. BatchNorm running statistics) of units ``0..n-1`` are copied
    in place; every module of units ``n..`` is re-initialised with its ``reset_parameters``
    (PyTorch's default initialisation, as a freshly built model), under ``torch.manual_seed(seed)``
    when a seed is given (the global random state is left untouched then). Copied units get
    ``requires_grad = not freeze``; re-initialised units get ``requires_grad = True``.

    Args:
        source: the network trained on the source task.
        target: a network with the same unit names and unit shapes (its head may differ when
            ``n`` is below the number of units).
        n: how many leading units to transfer, ``0..len(units)``.
        freeze: freeze the copied units (Yosinski's AnB) instead of leaving them trainable (AnB+).
        seed: seed for re-initialisation.

    Returns:
        ``target``, modified in place.

    Raises:
        ValueError: unit names differ, ``n`` is out of range, or a copied tensor's shape differs.
    """
    if tuple(source.unit_names) != tuple(target.unit_names):
        raise ValueError(
            f"source and target units differ: {list(source.unit_names)} vs "
            f"{list(target.unit_names)}"
        )
    _check_count(target, n)
    source_units, target_units = source.units(), target.units()
    with torch.no_grad():
        for (name, src), (_, dst) in zip(source_units[:n], target_units[:n]):
            src_tensors = dict(src.named_parameters()) | dict(src.named_buffers())
            dst_tensors = dict(dst.named_parameters()) | dict(dst.named_buffers())
            if src_tensors.keys() != dst_tensors.keys():
                raise ValueError(
                    f"unit {name!r}: tensors differ, source {sorted(src_tensors)} vs target "
                    f"{sorted(dst_tensors)}"
                )
            for key, value in src_tensors.items():
                if value.shape != dst_tensors[key].shape:
                    raise ValueError(
                        f"unit {name!r}: {key} has shape {tuple(value.shape)} in the source and "
                        f"{tuple(dst_tensors[key].shape)} in the target"
                    )
                dst_tensors[key].copy_(value)
    devices = sorted({p.device.index or 0 for p in target.parameters() if p.is_cuda})
    with torch.random.fork_rng(devices=devices, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        for name, unit in target_units[n:]:
            _reinitialise(name, unit)
    for index, (_, unit) in enumerate(target_units):
        unit.requires_grad_(index >= n or not freeze)
    return target


def freeze_units(model: TransferModel, n: int) -> TransferModel:
    """Freeze units ``0..n-1`` (``requires_grad=False``) and unfreeze the others.

    Frozen units with BatchNorm still update their running statistics in train mode; use
    :func:`set_train_mode` to keep those fixed as well.
    """
    _check_count(model, n)
    for index, (_, unit) in enumerate(model.units()):
        unit.requires_grad_(index >= n)
    return model


def frozen_unit_count(model: TransferModel) -> int:
    """Number of leading units whose parameters all have ``requires_grad=False``."""
    count = 0
    for _, unit in model.units():
        if any(p.requires_grad for p in unit.parameters()):
            break
        count += 1
    return count


def set_train_mode(model: TransferModel) -> TransferModel:
    """``model.train()``, but leading frozen units in eval mode (BatchNorm statistics fixed)."""
    model.train()
    for _, unit in model.units()[: frozen_unit_count(model)]:
        unit.eval()
    return model


def lr_multipliers_for(
    model: TransferModel, n_transferred: int, transferred_mult: float
) -> list[float]:
    """``[transferred_mult] * n_transferred + [1.0] * (units left)``.

    ``transferred_mult=0`` is Yosinski's frozen AnB, ``1`` his fine-tuned AnB+, values between
    a slower learning rate for transferred layers.
    """
    _check_count(model, n_transferred)
    if transferred_mult < 0:
        raise ValueError(f"transferred_mult must be >= 0, got {transferred_mult}")
    rest = len(model.unit_names) - n_transferred
    return [float(transferred_mult)] * n_transferred + [1.0] * rest


def _resolve_multipliers(
    model: TransferModel, lr_multipliers: Sequence[float] | Mapping[str, float] | None
) -> list[float]:
    names = list(model.unit_names)
    if lr_multipliers is None:  # keep what is frozen frozen, train the rest at the base rate
        mults = [
            0.0 if not any(p.requires_grad for p in unit.parameters()) else 1.0
            for _, unit in model.units()
        ]
    elif isinstance(lr_multipliers, Mapping):
        unknown = sorted(set(lr_multipliers) - set(names))
        if unknown:
            raise ValueError(f"lr_multipliers name unknown units {unknown}; units are {names}")
        mults = [float(lr_multipliers.get(name, 1.0)) for name in names]
    else:
        mults = [float(m) for m in lr_multipliers]
        if len(mults) != len(names):
            raise ValueError(
                f"lr_multipliers must give one value per unit ({len(names)}: {names}), "
                f"got {len(mults)}"
            )
    if any(m < 0 for m in mults):
        raise ValueError(f"lr_multipliers must be >= 0, got {mults}")
    return mults


def unit_param_groups(
    model: TransferModel,
    base_lr: float,
    *,
    weight_decay: float,
    lr_multipliers: Sequence[float] | Mapping[str, float] | None = None,
    skip_norm_bias_decay: bool = True,
) -> list[dict]:
    """Optimiser parameter groups with a learning rate per unit.

    Unit :math:`u` trains with :math:`\\eta_u = m_u\\,\\eta` (``base_lr * multiplier``). A unit
    with :math:`m_u = 0` is frozen: its parameters get ``requires_grad=False`` and are left out
    of every group, so neither momentum nor weight decay can move them. Units with
    :math:`m_u > 0` get ``requires_grad=True``: the multipliers decide what trains.

    Args:
        model: any :class:`TransferModel`.
        base_lr: learning rate :math:`\\eta` of units with multiplier 1.
        weight_decay: weight decay of the decayed groups.
        lr_multipliers: one value per unit (in unit order), or ``{unit name: value}`` (units
            not named get 1), or ``None``: 0 for units whose parameters are all frozen (e.g. by
            ``transfer_units(..., freeze=True)``), 1 for the others.
        skip_norm_bias_decay: no weight decay on one-dimensional tensors (biases, norm scales).

    Returns:
        A list of dicts for ``torch.optim``, each with ``params``, ``lr``, ``weight_decay`` and
        the extra keys ``unit`` (name) and ``lr_mult``; empty groups are left out.
    """
    mults = _resolve_multipliers(model, lr_multipliers)
    groups: list[dict] = []
    seen: set[int] = set()
    for (name, unit), mult in zip(model.units(), mults):
        params = [p for p in unit.parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        unit.requires_grad_(mult > 0)
        if mult == 0:
            continue
        decay = [p for p in params if not (skip_norm_bias_decay and p.ndim <= 1)]
        no_decay = [p for p in params if skip_norm_bias_decay and p.ndim <= 1]
        for chosen, wd in ((decay, weight_decay), (no_decay, 0.0)):
            if chosen:
                groups.append(
                    {
                        "params": chosen,
                        "lr": base_lr * mult,
                        "weight_decay": wd,
                        "unit": name,
                        "lr_mult": mult,
                    }
                )
    outside = [n for n, p in model.named_parameters() if id(p) not in seen]
    if outside:
        raise ValueError(f"parameters outside every unit: {outside}")
    return groups
