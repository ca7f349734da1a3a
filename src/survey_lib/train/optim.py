"""SGD parameter groups: per-unit learning rates, no decay on biases and norms, frozen units out.

Discriminative (layer-wise) learning rates as in ULMFiT (Howard & Ruder, "Universal Language
Model Fine-tuning for Text Classification", ACL 2018, https://arxiv.org/abs/1801.06146): unit
:math:`i` trains at :math:`\\eta_i = m_i\\,\\eta`. Weight decay
:math:`\\tfrac{\\lambda}{2}\\lVert w\\rVert^2` is applied only to weights of dimension >= 2 when
``wd_skip_norm_bias`` (Goyal et al., 2017, https://arxiv.org/abs/1706.02677, "no bias decay").
"""

from __future__ import annotations

from typing import Any

from torch import nn

from survey_lib.train.config import TrainConfig


def num_units(model: nn.Module) -> int:
    return len(getattr(model, "unit_names", ()))


def param_groups(model: nn.Module, config: TrainConfig) -> list[dict[str, Any]]:
    """SGD parameter groups: one per (unit, decay or not), frozen parameters excluded.

    Unit ``i`` gets ``lr = config.lr * lr_multipliers[i]``; 0/1-dimensional parameters (biases,
    normalisation scales) get no weight decay when ``wd_skip_norm_bias``. Parameters with
    ``requires_grad=False`` and those of the first ``frozen_units`` units are left out.
    """
    n_units = num_units(model)
    mults = config.lr_multipliers or (1.0,) * max(n_units, 1)
    buckets: dict[tuple[int, bool], list[nn.Parameter]] = {}
    seen: set[int] = set()
    unit_params = model.iter_unit_parameters() if n_units else iter(())
    for unit, _, p in unit_params:
        if id(p) in seen:
            continue
        seen.add(id(p))
        if unit < config.frozen_units or not p.requires_grad:
            continue
        decay = not (config.wd_skip_norm_bias and p.ndim <= 1)
        buckets.setdefault((unit, decay), []).append(p)
    for p in model.parameters():  # parameters outside any unit train at the base lr
        if id(p) not in seen and p.requires_grad:
            seen.add(id(p))
            decay = not (config.wd_skip_norm_bias and p.ndim <= 1)
            buckets.setdefault((-1, decay), []).append(p)
    groups = []
    for (unit, decay), params in sorted(buckets.items()):
        groups.append(
            {
                "params": params,
                "lr": config.lr * (mults[unit] if unit >= 0 else 1.0),
                "weight_decay": config.weight_decay if decay else 0.0,
                "unit": unit,
            }
        )
    if not groups:
        raise ValueError("no trainable parameters: every parameter is frozen")
    return groups
