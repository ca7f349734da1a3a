"""Grid cells of the transfer-regularizer comparison (L2, L2-SP, BSS, L2-SP+BSS, DELTA).

Li, Grandvalet, Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
Networks", ICML 2018; Chen et al., "Catastrophic Forgetting Meets Negative Transfer: Batch
Spectral Shrinkage for Safe Transfer Learning", NeurIPS 2019; Li et al., "DELTA: Deep Learning
Transfer using Feature Map with Attention for Convolutional Networks", ICLR 2019.

Every run fine-tunes the same pretrained source model on a target sampled at a rate (15, 30,
50 or 100 % of its training pool, nested and stratified) with the optimiser's own weight decay
switched off: each method's whole penalty is explicit, so the loss line reads
``cross_entropy + penalty`` for all of them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

from survey_lib.data.protocols import sampling_rate_subset
from survey_lib.experiments import common
from survey_lib.experiments.common import (
    checkpoint_info,
    fit_or_fail,
    load_split,
    model_device,
    test_accuracy,
    train_config,
)
from survey_lib.models import TransferModel
from survey_lib.models.features import normalize
from survey_lib.regularizers import create_regularizer
from survey_lib.runner import RunOutput
from survey_lib.train.context import StepContext


def source_model(source: Mapping[str, Any], checkpoint_dir: str) -> tuple[TransferModel, tuple]:
    """The pretrained source model (cached) and the normalisation it was trained with."""
    return common.source_model(source, checkpoint_dir)


def target_data(target: Mapping[str, Any], rate: float, seed: int, size: int):
    """The target's pool (``pool_per_class`` per class, fixed by ``pool_seed``), sampled at
    ``rate`` with ``seed`` (nested across rates), and its test set, with ``target["channels"]``
    channels (default 1) at ``size`` px."""
    opts = dict(target.get("options", {}))
    channels = int(target.get("channels", 1))
    pool = load_split(
        target["dataset"],
        "train",
        per_class=target["pool_per_class"],
        seed=target.get("pool_seed", 0),
        size=size,
        channels=channels,
        options=opts,
    )
    train = pool.subset(
        sampling_rate_subset(pool.labels, float(rate), seed, num_classes=pool.num_classes)
    )
    test = load_split(
        target["dataset"],
        "test",
        per_class=target["test_per_class"],
        seed=0,
        size=size,
        channels=channels,
        options=opts,
    )
    return train, test


def on_model_device(model: TransferModel, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``tensors`` moved to :func:`~survey_lib.experiments.common.model_device` of ``model``."""
    device = model_device(model)
    return tuple(t.to(device) for t in tensors)


def run_cell(params: Mapping[str, Any], seed: int) -> RunOutput:
    """Fine-tune the source on ``params['target']`` at ``params['rate']`` with the penalty
    ``params['method']`` (a key of ``params['methods']``: ``{"regularizer": name, **hparams}``).
    ``params['lr']`` overrides the learning rate (the learning-rate sweep). The source model
    and every tensor given to the regularizer (DELTA's attention batch) live on the run's
    device; the run record keeps the source checkpoint's SHA-256."""
    source = params["source"]
    spec = dict(params["methods"][params["method"]])
    train, test = target_data(params["target"], params["rate"], seed, source["size"])
    pretrained, stats = source_model(source, params["checkpoint_dir"])
    config = train_config(
        {**params["train"], **({"lr": params["lr"]} if params.get("lr") else {})}, seed, stats
    )
    pretrained.to(config.device)
    # the whole pretrained network (any input channels, timm backbones included), with a new
    # head drawn from the run's seed
    target_model = copy.deepcopy(pretrained)
    torch.manual_seed(int(seed))
    target_model.reset_classifier(train.num_classes)
    name = spec.pop("regularizer")
    if "delta" in name.split("+"):
        x = normalize(train.images[:256], stats[0], stats[1])
        spec[("delta__" if "+" in name else "") + "attention_data"] = (x, train.labels[:256])
    for key in [k for k in spec if k.endswith("attention_data")]:
        spec[key] = on_model_device(pretrained, *spec[key])
    torch.manual_seed(seed)
    reg = create_regularizer(name, source_model=pretrained, target_model=target_model, **spec)
    fit_or_fail(target_model, train, None, config, penalty=reg.penalty)
    return RunOutput(
        {"test_acc": test_accuracy(target_model, test, config)}, info=checkpoint_info(pretrained)
    )


def penalty_magnitudes(
    model: TransferModel,
    stats: tuple,
    targets: Mapping[str, Mapping[str, Any]],
    methods: Mapping[str, Mapping[str, Any]],
    *,
    size: int,
    batch_size: int,
) -> pd.DataFrame:
    """Each method's penalty next to the cross-entropy, for ``model`` (the pretrained source,
    training mode, a freshly reset head) on the first ``batch_size`` images of each target.

    One row per target × method (plus "BSS term alone"): ``cross_entropy``, ``penalty``. Every
    tensor is built on ``model``'s device, wherever that is.
    """
    rows = []
    for t in targets.values():
        tr, _ = target_data(t, 1.0, 0, size)
        x, y = on_model_device(
            model, normalize(tr.images[:batch_size], *stats), tr.labels[:batch_size]
        )
        bss_only = {
            "regularizer": "bss",
            "eta": methods["BSS"]["bss__eta"],
            "k": methods["BSS"]["bss__k"],
        }
        for m, spec in {**methods, "BSS term alone": bss_only}.items():
            spec = dict(spec)
            name = spec.pop("regularizer")
            target_model = copy.deepcopy(model)
            torch.manual_seed(0)
            target_model.reset_classifier(tr.num_classes)
            if "delta" in name.split("+"):
                spec[("delta__" if "+" in name else "") + "attention_data"] = (x, y)
            reg = create_regularizer(name, source_model=model, target_model=target_model, **spec)
            target_model.train()
            feats = target_model.forward_features(x)
            logits = target_model.forward_head(feats)
            ctx = StepContext(target_model, x, feats, logits, y, 0, 0)
            rows.append(
                {
                    "target": t["name"],
                    "method": m,
                    "cross_entropy": float(F.cross_entropy(logits, y).detach()),
                    "penalty": float(reg.penalty(ctx).detach()),
                }
            )
    out = pd.DataFrame(rows)
    out["penalty / cross-entropy"] = out["penalty"] / out["cross_entropy"]
    return out


def gains_table(runs: pd.DataFrame, baseline: str = "L2") -> pd.DataFrame:
    """One row per target × rate × method × seed with ``gain`` = acc − acc(baseline), paired."""
    base = runs[runs.method == baseline].set_index(["target", "rate", "seed"]).test_acc
    out = runs.copy()
    out["gain"] = [
        acc - float(base.loc[(t, r, s)])
        for t, r, s, acc in zip(out.target, out.rate, out.seed, out.test_acc)
    ]
    return out


def claim_verdicts(
    gains: pd.DataFrame,
    lr_runs: pd.DataFrame | None,
    *,
    near: str,
    far: str,
    tolerance: float = 0.01,
) -> list:
    """The four claims of the reference file, judged by rules fixed here in advance."""
    import numpy as np

    from survey_lib.experiments.verdicts import all_of, greater_than, less_than, not_run

    rates = sorted(gains.rate.unique())
    low, full = rates[0], rates[-1]

    def per_seed(target: str, method: str, rate_values) -> pd.Series:
        sel = gains[
            (gains.target == target) & (gains.method == method) & gains.rate.isin(rate_values)
        ]
        return sel.groupby("seed").gain.mean()

    bss_low = per_seed(near, "BSS", [low])
    bss_full = per_seed(near, "BSS", [full])
    out = [
        all_of(
            "1. BSS ≥ L2 at low sampling rates on a similar target; the gap shrinks at 100 %",
            [
                greater_than("", bss_low.tolist(), 0.0, what=f"BSS − L2 at {low:.0%} ({near})"),
                greater_than(
                    "",
                    (bss_low - bss_full).tolist(),
                    0.0,
                    what=f"(BSS − L2 at {low:.0%}) − (at {full:.0%})",
                ),
            ],
        )
    ]
    out.append(
        all_of(
            "2. L2-SP helps on a similar target and ties or hurts on a less similar one",
            [
                greater_than(
                    "",
                    per_seed(near, "L2-SP", rates).tolist(),
                    0.0,
                    what=f"L2-SP − L2, mean over rates ({near})",
                ),
                less_than(
                    "",
                    per_seed(far, "L2-SP", rates).tolist(),
                    tolerance,
                    what=f"L2-SP − L2, mean over rates ({far})",
                ),
            ],
        )
    )
    regs = [m for m in gains.method.unique() if m != "L2"]
    best = pd.concat([per_seed(far, m, rates).rename(m) for m in regs], axis=1).max(axis=1)
    out.append(
        less_than(
            "3. On a less similar target the transfer regularizers give no gain or a loss",
            best.tolist(),
            tolerance,
            what=f"best regularizer's gain over L2, mean over rates ({far})",
        )
    )
    if lr_runs is None or lr_runs.empty:
        out.append(not_run("4. The best fine-tuning lr grows as similarity falls"))
    else:
        mean_acc = lr_runs.groupby(["target", "seed", "lr"]).test_acc.mean().reset_index()
        best_lr = mean_acc.loc[mean_acc.groupby(["target", "seed"]).test_acc.idxmax()]
        best_lr = best_lr.set_index(["target", "seed"]).lr
        seeds = sorted(set(best_lr.loc[near].index) & set(best_lr.loc[far].index))
        ratio = [float(np.log10(best_lr.loc[(far, s)] / best_lr.loc[(near, s)])) for s in seeds]
        out.append(
            greater_than(
                "4. The best fine-tuning lr grows as similarity falls",
                ratio,
                0.0,
                what="log10(best lr on the far target / best lr on the near one)",
            )
        )
    return out
