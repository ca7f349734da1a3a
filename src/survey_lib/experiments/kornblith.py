"""Grid cells of the gains-versus-target-size reproduction (Kornblith et al. 2019).

Kornblith, Shlens, Le, "Do Better ImageNet Models Transfer Better?", CVPR 2019,
https://arxiv.org/abs/1805.08974.

For a target of ``k`` examples per class three models are compared: fine-tuning the pretrained
source model (``finetune``), training the same architecture from random initialisation
(``scratch``), and a multinomial logistic regression on the source model's fixed penultimate
features (``linear``, L2 strength chosen on a validation split). The *gain* of transfer is
``acc(finetune) − acc(scratch)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch

from survey_lib.data import ImageDataset
from survey_lib.data.protocols import k_per_class, train_val_split
from survey_lib.experiments import common
from survey_lib.experiments.common import (
    checkpoint_info,
    fit_or_fail,
    load_split,
    new_model,
    test_accuracy,
    train_config,
)
from survey_lib.models import TransferModel, dataset_stats, extract_features
from survey_lib.runner import RunOutput
from survey_lib.transfer import linear_probe

METHODS = ("finetune", "scratch", "linear")


def source_model(
    source: Mapping[str, Any], epochs: int, checkpoint_dir: str
) -> tuple[TransferModel, tuple]:
    """The pretrained source model after ``epochs`` of training (cached), and its normalisation."""
    return common.source_model(source, checkpoint_dir, epochs)


def source_accuracy(source: Mapping[str, Any], epochs: int, checkpoint_dir: str) -> float:
    """Held-out accuracy of the source model on its own task (its 'ImageNet accuracy')."""
    return common.source_test_accuracy(source, checkpoint_dir, epochs)


def target_data(
    target: Mapping[str, Any], k: int, seed: int, size: int
) -> tuple[ImageDataset, ImageDataset]:
    """``k`` training examples per class (nested in ``k`` for a fixed seed) and a test set.

    When the target's train and test splits are the same split (e.g. glyphs in unseen fonts),
    the test set is every example not drawn for training."""
    opts = dict(target.get("options", {}))
    channels = int(target.get("channels", 1))
    train_full = load_split(
        target["dataset"], target["train_split"], size=size, channels=channels, options=opts
    )
    idx = k_per_class(train_full.labels, int(k), seed, num_classes=train_full.num_classes)
    train = train_full.subset(idx)
    if target["test_split"] == target["train_split"]:
        mask = torch.ones(len(train_full), dtype=torch.bool)
        mask[torch.as_tensor(idx)] = False
        test = train_full.subset(torch.nonzero(mask).flatten())
    else:
        test = load_split(
            target["dataset"], target["test_split"], size=size, channels=channels, options=opts
        )
    cap = target.get("test_per_class")
    if cap:
        counts = torch.bincount(test.labels, minlength=test.num_classes)
        test = test.subset(
            k_per_class(
                test.labels, min(int(cap), int(counts.min())), 0, num_classes=test.num_classes
            )
        )
    return train, test


def _epochs_for(steps: int, batch_size: int, n: int) -> int:
    return max(1, math.ceil(steps * batch_size / max(n, 1)))


def run_cell(params: Mapping[str, Any], seed: int) -> RunOutput:
    """One run: ``params['method']`` on ``params['target']`` with ``params['k']`` per class.

    Returns ``test_acc`` (and ``best_C`` for the linear model), with the SHA-256 of the source
    checkpoint used (if any) in ``info``."""
    target, method, k = params["target"], params["method"], int(params["k"])
    source = params["source"]
    epochs = int(params.get("source_epochs", source["epochs"]))
    train, test = target_data(target, k, seed, source["size"])
    if method == "linear":
        model, stats = source_model(source, epochs, params["checkpoint_dir"])
        tr_idx, va_idx = train_val_split(
            train.labels, params["val_fraction"], seed, num_classes=train.num_classes
        )
        device = train_config({**source["train"], "epochs": 1}, seed, stats).device
        feats = {}
        for name, ds in {
            "train": train.subset(tr_idx),
            "val": train.subset(va_idx),
            "test": test,
        }.items():
            f, _ = extract_features(model, ds, mean=stats[0], std=stats[1], device=device)
            feats[name] = (f.numpy(), ds.labels.numpy())
        result = linear_probe(
            *feats["train"],
            *feats["val"],
            num_classes=train.num_classes,
            test_features=feats["test"][0],
            test_labels=feats["test"][1],
        )
        return RunOutput(
            {"test_acc": float(result.test_accuracy), "best_C": float(result.best_C)},
            info=checkpoint_info(model),
        )

    spec = params[method]  # the training protocol of this method
    run_epochs = _epochs_for(int(spec["steps"]), int(spec["train"]["batch_size"]), len(train))
    if method == "finetune":
        model, stats = source_model(source, epochs, params["checkpoint_dir"])
        torch.manual_seed(seed)
        model.reset_classifier(train.num_classes)
    elif method == "scratch":
        stats = dataset_stats(train)
        model = new_model(source["model"], train.num_classes, int(source.get("channels", 1)), seed)
    else:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    config = train_config({**spec["train"], "epochs": run_epochs}, seed, stats)
    fit_or_fail(model, train, None, config)
    return RunOutput({"test_acc": test_accuracy(model, test, config)}, info=checkpoint_info(model))


def gains_table(runs: pd.DataFrame) -> pd.DataFrame:
    """From one row per run (target, k, method, seed, test_acc) to one row per target × k ×
    seed with the accuracy of each method, ``gain`` = finetune − scratch and ``ft_minus_fixed``
    = finetune − linear (paired by seed)."""
    wide = runs.pivot_table(index=["target", "k", "seed"], columns="method", values="test_acc")
    wide = wide.reset_index()
    wide.columns.name = None
    wide["gain"] = wide["finetune"] - wide["scratch"]
    wide["ft_minus_fixed"] = wide["finetune"] - wide["linear"]
    return wide.sort_values(["target", "k", "seed"]).reset_index(drop=True)


def _spearman(x, y) -> float:
    from scipy.stats import spearmanr

    value = spearmanr(list(x), list(y)).statistic
    return float(value) if value == value else 0.0


def claim_verdicts(
    gains: pd.DataFrame, rank: Mapping[str, int], quality: pd.DataFrame | None
) -> list:
    """The four claims of the reference file, judged by rules fixed here in advance.

    Args:
        gains: :func:`gains_table` output.
        rank: a-priori similarity rank of each target (1 = closest to the source).
        quality: one row per source variant × target × seed with ``source_acc`` and
            ``test_acc`` of the linear model (claim 4), or ``None`` if not run.
    """
    import numpy as np

    from survey_lib.experiments.verdicts import greater_than, less_than, not_run

    out = []
    slopes = []
    for _, g in gains.groupby("seed"):
        per_target = [
            np.polyfit(np.log2(t.k.astype(float)), t.gain, 1)[0]
            for _, t in g.groupby("target")
            if len(t) > 1
        ]
        slopes.append(float(np.mean(per_target)))
    out.append(
        less_than(
            "1. The gain of fine-tuning over random init shrinks as the target grows",
            slopes,
            0.0,
            what="slope of gain per doubling of k, averaged over targets",
        )
    )
    corr = []
    for _, g in gains.groupby("seed"):
        mean_gain = g.groupby("target").gain.mean()
        corr.append(_spearman([rank[t] for t in mean_gain.index], mean_gain.values))
    out.append(
        less_than(
            "2. The gain is larger for targets closer to the source",
            corr,
            0.0,
            what="Spearman(distance rank, mean gain over k)",
        )
    )
    kmax = gains.groupby("target").k.max().min()
    corr = []
    for _, g in gains[gains.k == kmax].groupby("seed"):
        corr.append(_spearman(g.linear, g.ft_minus_fixed))
    out.append(
        less_than(
            "3. Fine-tuning beats fixed features most where the features fit worst",
            corr,
            0.0,
            what=f"Spearman(fixed-feature acc, finetune − fixed) at k={kmax}",
        )
    )
    if quality is None or quality.empty:
        out.append(not_run("4. Better source models give better transfer"))
    else:
        corr = []
        for _, g in quality.groupby("seed"):
            corr.append(
                float(
                    np.mean([_spearman(t.source_acc, t.test_acc) for _, t in g.groupby("target")])
                )
            )
        out.append(
            greater_than(
                "4. Better source models give better transfer",
                corr,
                0.0,
                what="Spearman(source accuracy, fixed-feature target accuracy), mean over targets",
            )
        )
    return out
