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

from survey_lib.data.protocols import sampling_rate_subset
from survey_lib.experiments import common
from survey_lib.experiments.common import (
    fit_or_fail,
    load_split,
    test_accuracy,
    train_config,
)
from survey_lib.models import TransferModel
from survey_lib.models.features import normalize
from survey_lib.regularizers import create_regularizer


def source_model(source: Mapping[str, Any], checkpoint_dir: str) -> tuple[TransferModel, tuple]:
    """The pretrained source model (cached) and the normalisation it was trained with."""
    return common.source_model(source, checkpoint_dir)


def target_data(target: Mapping[str, Any], rate: float, seed: int, size: int):
    """The target's pool (``pool_per_class`` per class of split ``pool_split``, default
    ``train``; TLlib's 100 % of FGVC Aircraft is ``trainval``, fixed by ``pool_seed``), sampled at
    ``rate`` with ``seed`` (nested across rates), and its test set, with ``target["channels"]``
    channels (default 1) at ``size`` px."""
    opts = dict(target.get("options", {}))
    channels = int(target.get("channels", 1))
    pool = load_split(
        target["dataset"],
        target.get("pool_split", "train"),
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


def run_cell(params: Mapping[str, Any], seed: int) -> dict[str, float]:
    """Fine-tune the source on ``params['target']`` at ``params['rate']`` with the penalty
    ``params['spec']`` (``{"regularizer": name, **hparams}``; the method's name is
    ``params['method']``; older grids give ``params['methods'][params['method']]`` instead).
    ``params['lr']``, when given, overrides the learning rate (an lr of 0 is passed on, and
    rejected by :class:`~survey_lib.train.TrainConfig`)."""
    source = params["source"]
    spec = dict(params["spec"] if "spec" in params else params["methods"][params["method"]])
    train, test = target_data(params["target"], params["rate"], seed, source["size"])
    pretrained, stats = source_model(source, params["checkpoint_dir"])
    # the whole pretrained network (any input channels, timm backbones included), with a new
    # head drawn from the run's seed
    target_model = copy.deepcopy(pretrained)
    torch.manual_seed(int(seed))
    target_model.reset_classifier(train.num_classes)
    config = train_config(
        {**params["train"], **({"lr": params["lr"]} if params.get("lr") is not None else {})}, seed, stats
    )
    name = spec.pop("regularizer")
    if "delta" in name.split("+"):
        x = normalize(train.images[:256], stats[0], stats[1])
        spec[("delta__" if "+" in name else "") + "attention_data"] = (x, train.labels[:256])
    torch.manual_seed(seed)
    reg = create_regularizer(name, source_model=pretrained, target_model=target_model, **spec)
    fit_or_fail(target_model, train, None, config, penalty=reg.penalty)
    return {"test_acc": test_accuracy(target_model, test, config)}


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
