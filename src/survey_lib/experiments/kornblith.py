"""Grid cells of the gains-versus-target-size reproduction (Kornblith et al. 2019).

Kornblith, Shlens, Le, "Do Better ImageNet Models Transfer Better?", CVPR 2019,
https://arxiv.org/abs/1805.08974.

For a target of ``k`` examples per class three models are compared: fine-tuning the pretrained
source model (``finetune``), training the same architecture from random initialisation
(``scratch``), and a multinomial logistic regression on the source model's fixed penultimate
features (``linear``, L2 strength chosen on a validation split). The *gain* of transfer is
``acc(finetune) − acc(scratch)``.

Optionally (the paper protocols), ``finetune`` and ``scratch`` choose their learning rate and
weight decay as Kornblith et al. (sec. 3, appendix; spelt out in Chen et al., "A Simple
Framework for Contrastive Learning of Visual Representations", ICML 2020, appendix B.5): every
configuration of a grid is trained on the training part of a stratified validation split,
scored on the validation part, and the best one is refit on the whole training set and tested
(:func:`grid_configs`, :func:`select_and_refit`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pandas as pd
import torch

from survey_lib.data import ImageDataset
from survey_lib.data.protocols import at_most_k_per_class, k_per_class, train_val_split
from survey_lib.experiments import common
from survey_lib.experiments.common import (
    checkpoint_info,
    fit_or_fail,
    load_split,
    new_model,
    test_accuracy,
    test_metrics,
    train_config,
)
from survey_lib.models import TransferModel, dataset_stats, extract_features
from survey_lib.runner import RunFailed, RunOutput
from survey_lib.train import TrainConfig
from survey_lib.train.precision import note_precision
from survey_lib.transfer import linear_probe

METHODS = ("finetune", "scratch", "linear")
K_RULES = ("exactly", "at_most")
"""How a target's ``k_rule`` reads ``k``: ``exactly`` k per class (a smaller class is an error),
or ``at_most`` k (a smaller class keeps all its images: at the largest k, the whole published
training set of a target whose classes differ by a few images, e.g. Pets, Aircraft)."""
GRID_KEYS = ("lr", "weight_decay", "divide_wd_by_lr", "steps")
TARGET_METRICS = ("test_acc", "test_acc_mean_per_class")
"""What a target's optional ``metric`` may name: the recorded metric its comparison with the
published number uses (Kornblith et al. 2019 report mean per-class accuracy on Caltech-101,
Pets, Flowers and Aircraft, top-1 on DTD); absent: ``test_acc``. Every run records both."""


def target_metric(target: Mapping[str, Any]) -> str:
    """The metric of :data:`TARGET_METRICS` that ``target``'s ``metric`` names (default
    ``test_acc``).

    Raises:
        ValueError: a name outside :data:`TARGET_METRICS`.
    """
    metric = target.get("metric", "test_acc")
    if metric not in TARGET_METRICS:
        raise ValueError(f"target {target.get('name')!r}: metric {metric!r}; valid: "
                         f"{', '.join(TARGET_METRICS)}")
    return str(metric)


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
    """``k`` training examples per class (nested in ``k`` for a fixed seed; at most ``k`` with
    ``target["k_rule"] == "at_most"``, see :data:`K_RULES`) and a test set of at most
    ``target["test_per_class"]`` examples per class (seed 0; all when not given).

    When the target's train and test splits are the same split (e.g. glyphs in unseen fonts),
    the test set is every example not drawn for training. Examples are chosen on the native
    images and only the chosen ones are resized (the same pixels as resizing first: the
    resize acts on each image alone)."""
    opts = dict(target.get("options", {}))
    channels = int(target.get("channels", 1))
    train_full = load_split(target["dataset"], target["train_split"], size=None, options=opts)
    rule = target.get("k_rule", "exactly")
    if rule not in K_RULES:
        raise ValueError(f"target {target.get('name')!r}: k_rule {rule!r}; valid: {K_RULES}")
    draw = k_per_class if rule == "exactly" else at_most_k_per_class
    idx = draw(train_full.labels, int(k), seed, num_classes=train_full.num_classes)
    train = train_full.subset(idx)
    if target["test_split"] == target["train_split"]:
        mask = torch.ones(len(train_full), dtype=torch.bool)
        mask[torch.as_tensor(idx)] = False
        test = train_full.subset(torch.nonzero(mask).flatten())
    else:
        test = load_split(target["dataset"], target["test_split"], size=None, options=opts)
    cap = target.get("test_per_class")
    if cap:
        test = test.subset(
            at_most_k_per_class(test.labels, int(cap), 0, num_classes=test.num_classes)
        )
    return train.resized(size, channels), test.resized(size, channels)


def _epochs_for(steps: int, batch_size: int, n: int) -> int:
    return max(1, math.ceil(steps * batch_size / max(n, 1)))


def _probe_limits(probe: Mapping[str, Any] | None) -> dict[str, Any]:
    """The linear probe's optional L-BFGS limits (``probe: {max_iter, tol}``; absent: the
    defaults of :func:`~survey_lib.transfer.linear_probe.linear_probe`)."""
    probe = dict(probe or {})
    unknown = sorted(set(probe) - {"max_iter", "tol"})
    if unknown:
        raise ValueError(f"probe: unknown keys {unknown}; valid: max_iter, tol")
    return probe


def run_cell(params: Mapping[str, Any], seed: int) -> RunOutput:
    """One run: ``params['method']`` on ``params['target']`` with ``params['k']`` per class.

    ``params['probe']`` (optional) limits the linear probe's L-BFGS (``max_iter``, ``tol``).
    Returns ``test_acc`` (top-1) and ``test_acc_mean_per_class`` (mean per-class accuracy,
    Kornblith et al.'s metric on four of their targets) for every method (and ``best_C`` for
    the linear model; the chosen configuration for a method with a ``grid``, see
    :func:`select_and_refit`), with the SHA-256 of the source checkpoint used (if any) in
    ``info``."""
    target, method, k = params["target"], params["method"], int(params["k"])
    source = params["source"]
    epochs = int(params.get("source_epochs", source.get("epochs", 0)))
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
            note_precision("fp32")  # features are extracted in fp32, whatever the source's
            feats[name] = (f.numpy(), ds.labels.numpy())
        # on CUDA the probe's L-BFGS runs there (torch); on the CPU scikit-learn's, as before
        on_gpu = torch.device(device).type == "cuda"
        result = linear_probe(
            *feats["train"],
            *feats["val"],
            num_classes=train.num_classes,
            test_features=feats["test"][0],
            test_labels=feats["test"][1],
            backend="torch" if on_gpu else "sklearn",
            device=device,
            **_probe_limits(params.get("probe")),
        )
        return RunOutput(
            {"test_acc": float(result.test_accuracy),
             "test_acc_mean_per_class": float(result.test_mean_per_class_accuracy),
             "best_C": float(result.best_C)},
            info=checkpoint_info(model),
        )

    if method not in ("finetune", "scratch"):
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    spec = params[method]  # the training protocol of this method
    if spec.get("grid"):
        return select_and_refit(params, train, test, seed)
    model, config = _train_method(params, train, seed, int(spec["steps"]), {})
    return RunOutput(test_metrics(model, test, config), info=checkpoint_info(model))


def _train_method(
    params: Mapping[str, Any],
    train: ImageDataset,
    seed: int,
    steps: int,
    changes: Mapping[str, Any],
) -> tuple[TransferModel, TrainConfig]:
    """Train ``params['method']`` (finetune or scratch) on ``train`` for ``steps`` steps with
    its ``train`` mapping updated by ``changes`` (e.g. ``lr``, ``weight_decay``)."""
    method, source = params["method"], params["source"]
    spec = params[method]
    run_epochs = _epochs_for(steps, int(spec["train"]["batch_size"]), len(train))
    if method == "finetune":
        epochs = int(params.get("source_epochs", source.get("epochs", 0)))
        model, stats = source_model(source, epochs, params["checkpoint_dir"])
        torch.manual_seed(seed)
        model.reset_classifier(train.num_classes)
    else:
        stats = dataset_stats(train)
        model = new_model(source["model"], train.num_classes, int(source.get("channels", 1)), seed)
    config = train_config({**spec["train"], **dict(changes), "epochs": run_epochs}, seed, stats)
    fit_or_fail(model, train, None, config)
    return model, config


def grid_configs(grid: Mapping[str, Any]) -> list[tuple[float, float]]:
    r"""The ``(lr, weight_decay)`` pairs of a hyperparameter grid, lr-major, in the grid's order.

    Kornblith et al. 2019 (sec. 3) select fine-tuning's learning rate and weight decay on a
    validation split; Chen et al. 2020 (appendix B.5) give the grid: 7 log-spaced learning
    rates in :math:`[10^{-4}, 10^{-1}]` times 7 log-spaced weight decays in
    :math:`[10^{-6}, 10^{-3}]` plus 0, each weight decay divided by the learning rate. With
    ``divide_wd_by_lr`` the SGD coefficient is :math:`\lambda = w / \eta` for grid value
    :math:`w`, so the per-step shrinkage :math:`\eta\lambda = w` is the same at every lr.

    Args:
        grid: ``{lr: [...], weight_decay: [...], divide_wd_by_lr: bool (default false),
            steps: int (training steps of each search run; default the method's steps)}``.

    Returns:
        ``len(lr) * len(weight_decay)`` pairs (the weight decay as passed to SGD).

    Raises:
        ValueError: unknown keys, empty or non-numeric lists, lr <= 0 or weight decay < 0.
    """
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise ValueError(f"grid: unknown keys {unknown}; valid: {list(GRID_KEYS)}")
    lists = {}
    for key, low in (("lr", "> 0"), ("weight_decay", ">= 0")):
        values = grid.get(key)
        ok = isinstance(values, (list, tuple)) and len(values) > 0 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and (v > 0 if key == "lr" else v >= 0) for v in values)
        if not ok:
            raise ValueError(f"grid.{key} = {values!r}; valid: a non-empty list of numbers {low}")
        lists[key] = [float(v) for v in values]
    divide = grid.get("divide_wd_by_lr", False)
    if not isinstance(divide, bool):
        raise ValueError(f"grid.divide_wd_by_lr = {divide!r}; valid: true or false")
    return [(lr, wd / lr if divide else wd) for lr in lists["lr"] for wd in lists["weight_decay"]]


def select_and_refit(
    params: Mapping[str, Any], train: ImageDataset, test: ImageDataset, seed: int
) -> RunOutput:
    """Grid search on a validation split, then refit (Kornblith et al. 2019, sec. 3).

    ``train`` is split by class (``params['val_fraction']``, as the linear probe's split, seed
    ``seed``); each configuration of ``grid_configs(spec['grid'])`` is trained on the training
    part for ``grid.steps`` (default ``spec['steps']``) and scored by top-1 accuracy on the
    validation part; the best (the first of equal scores, in grid order) is trained again on
    all of ``train`` for ``spec['steps']`` and tested. A configuration whose loss goes
    non-finite scores as failed; the run fails only when all do.

    Cost: ``len(grid) * grid.steps + steps`` training steps against ``steps`` without a grid
    (the published 8 x 7 grid at 20k steps: 57 times the steps of one run).

    Returns:
        ``test_acc`` and ``test_acc_mean_per_class`` of the refit model, and the choice: ``best_lr``, ``best_weight_decay``
        (as passed to SGD), ``best_val_acc`` and ``grid_failed`` (configurations that diverged).
    """
    spec = params[params["method"]]
    grid = spec["grid"]
    configs = grid_configs(grid)
    search_steps = int(grid.get("steps", spec["steps"]))
    if "val_fraction" not in params:
        raise ValueError("a grid needs params['val_fraction'] (the validation split's fraction)")
    tr_idx, va_idx = train_val_split(
        train.labels, params["val_fraction"], seed, num_classes=train.num_classes
    )
    if len(va_idx) == 0:
        raise ValueError(
            f"grid search needs a validation split: {len(train)} training images "
            f"(k = {params.get('k')}) leave none at val_fraction {params['val_fraction']}; "
            "valid: at least 2 images per class"
        )
    part, val = train.subset(tr_idx), train.subset(va_idx)
    scores = []
    for lr, wd in configs:
        try:
            model, config = _train_method(params, part, seed, search_steps,
                                          {"lr": lr, "weight_decay": wd})
        except RunFailed:
            scores.append(-math.inf)
            continue
        scores.append(test_accuracy(model, val, config))
        del model
    best = max(range(len(configs)), key=lambda i: (scores[i], -i))
    if scores[best] == -math.inf:
        raise RunFailed({"message": f"all {len(configs)} grid configurations diverged"})
    lr, wd = configs[best]
    model, config = _train_method(params, train, seed, int(spec["steps"]),
                                  {"lr": lr, "weight_decay": wd})
    metrics = {**test_metrics(model, test, config), "best_lr": lr,
               "best_weight_decay": wd, "best_val_acc": float(scores[best]),
               "grid_failed": float(sum(v == -math.inf for v in scores))}
    return RunOutput(metrics, info=checkpoint_info(model))


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


CLAIMS = {
    "1": "1. The gain of fine-tuning over random init shrinks as the target grows",
    "2": "2. The gain is larger for targets closer to the source",
    "3": "3. Fine-tuning beats fixed features most where the features fit worst",
    "4": "4. Better source models give better transfer",
}
"""The four claims of published-results.md section 2, keyed by number."""


def slope_per_seed(gains: pd.DataFrame) -> pd.Series:
    """Per seed, the least-squares slope of the gain (points) on log2 k, averaged over targets
    (claim 1): mean over targets t of b_t, where gain ~ a_t + b_t log2(k)."""
    import numpy as np

    slopes = {}
    for seed, g in gains.groupby("seed"):
        per_target = [
            np.polyfit(np.log2(t.k.astype(float)), 100.0 * t.gain, 1)[0]
            for _, t in g.groupby("target")
            if t.k.nunique() > 1
        ]
        if per_target:
            slopes[seed] = float(np.mean(per_target))
    return pd.Series(slopes, dtype=float)


def rank_frames(
    gains: pd.DataFrame, rank: Mapping[str, int], quality: pd.DataFrame | None
) -> dict[str, tuple[pd.DataFrame, dict[str, Any]]]:
    """Per rank claim (2, 3, 4), the frame and the arguments of
    :func:`survey_lib.experiments.rank_stats.rank_correlation`.

    2: ρ(similarity rank, gain averaged over k) over targets; 3: ρ(fixed-feature accuracy,
    finetune − fixed) over targets at the largest k every target has; 4: ρ(source accuracy,
    fixed-feature target accuracy) over source variants, per target, averaged over targets."""
    per_target = gains.groupby(["target", "seed"]).gain.mean().reset_index()
    per_target["rank"] = [rank[t] for t in per_target.target]
    kmax = gains.groupby("target").k.max().min()
    at_kmax = gains[gains.k == kmax][["target", "seed", "linear", "ft_minus_fixed"]]
    out = {
        "2": (per_target, {"x": "rank", "y": "gain", "unit": "target"}),
        "3": (at_kmax, {"x": "linear", "y": "ft_minus_fixed", "unit": "target"}),
    }
    if quality is not None and not quality.empty:
        out["4"] = (quality, {"x": "source_acc", "y": "test_acc", "unit": "source_epochs",
                              "strata": "target"})
    return out


def claim_verdicts(
    gains: pd.DataFrame,
    rank: Mapping[str, int],
    quality: pd.DataFrame | None,
    *,
    sesoi: Mapping[str, Mapping[str, Any]],
) -> list:
    """The four claims of the reference file, judged by rules fixed here in advance.

    Claim 1 (a slope in points per doubling of k) is judged by its t-interval over seeds
    (:func:`~survey_lib.experiments.verdicts.effect`). Claims 2-4 are rank correlations over a
    handful of targets (or source models): judged by a bootstrap over units and seeds, clipped
    to [-1, 1], with an exact permutation p-value that a sign decision must also pass
    (:mod:`survey_lib.experiments.rank_stats`); when even the most extreme arrangement of the
    units cannot reach p < 0.05, more units, not seeds, would decide (``seeds_needed = inf``).

    Args:
        gains: :func:`gains_table` output.
        rank: a-priori similarity rank of each target (1 = closest to the source).
        quality: one row per source variant × target × seed with ``source_acc`` and
            ``test_acc`` of the linear model (claim 4), or ``None`` if not run.
        sesoi: the protocol's SESOI rule per claim number (``"1"`` in points, ``"2"``-``"4"``
            in ρ), for :func:`~survey_lib.experiments.verdicts.sesoi_from_spec`.
    """
    from survey_lib.experiments.rank_stats import rank_correlation
    from survey_lib.experiments.verdicts import (
        ALPHA,
        effect,
        effect_from_interval,
        not_run,
        seed_halves,
        sesoi_from_spec,
        values_and_halves,
    )

    missing = sorted(set(CLAIMS) - {str(k) for k in sesoi})
    if missing:
        raise ValueError(f"sesoi has no rule for claims {missing}; needs keys {sorted(CLAIMS)}")
    vals, halves = values_and_halves(slope_per_seed(gains))
    size, rule = sesoi_from_spec(sesoi["1"])
    out = [effect(CLAIMS["1"], vals, predicted="-", sesoi=size, sesoi_rule=rule,
                  what="the change of the gain per doubling of k", halves=halves)]
    what = {
        "2": "ρ(distance rank, gain) over targets",
        "3": "ρ(fixed-feature accuracy, finetune − fixed) over targets",
        "4": "ρ(source accuracy, target accuracy) over source models, mean over targets",
    }
    predicted = {"2": "-", "3": "-", "4": "+"}
    frames = rank_frames(gains, rank, quality)
    for key in ("2", "3", "4"):
        if key not in frames:
            out.append(not_run(CLAIMS[key], "no source-quality runs"))
            continue
        frame, kwargs = frames[key]
        full = rank_correlation(frame, **kwargs)
        first, second = seed_halves(frame.seed.unique())
        half_intervals = None
        if min(len(first), len(second)) >= 2:
            a = rank_correlation(frame, **kwargs, seeds=first)
            b = rank_correlation(frame, **kwargs, seeds=second)
            half_intervals = ((a.low, a.high, a.n_seeds, a.estimate, a.p_value),
                              (b.low, b.high, b.n_seeds, b.estimate, b.p_value))
        size, rule = sesoi_from_spec(sesoi[key], unit="rho")
        seeds_needed = math.inf if not full.min_p < ALPHA else math.nan
        v = effect_from_interval(
            CLAIMS[key], full.estimate, full.low, full.high, full.n_seeds,
            predicted=predicted[key], sesoi=size, sesoi_rule=rule, what=what[key], unit="rho",
            method="bootstrap (units × seeds) + exact permutation",
            rule=(f"{what[key]} {'<' if predicted[key] == '-' else '>'} 0: exact permutation "
                  f"p < 0.05 over {full.n_units} units ({_permutation_text(full)}); absent if "
                  f"the 95 % bootstrap interval over units and seeds is inside ±{size:g} "
                  f"({rule})"),
            sd=full.per_seed_sd, seeds_needed=seeds_needed, half_intervals=half_intervals,
            p_value=full.p_value,
        )
        if math.isnan(full.min_p):
            v = replace(v, bound_text=v.bound_text + (
                f"; the permutation test is undefined here ({_UNDEFINED_PERMUTATION})"))
        elif not full.min_p < ALPHA:
            v = replace(v, bound_text=v.bound_text + (
                f"; with {full.n_units} units the smallest attainable permutation p is "
                f"{full.min_p:.3f}, so more units (not seeds) would decide it"))
        out.append(v)
    return out


_UNDEFINED_PERMUTATION = "fewer than two units, or x or y the same for every unit"


def _permutation_text(result: Any) -> str:
    """The permutation p and its smallest attainable value in words, or why there is none."""
    if math.isnan(result.p_value) or math.isnan(result.min_p):
        return f"no permutation p: {_UNDEFINED_PERMUTATION}"
    return f"p = {result.p_value:.3f}, smallest attainable {result.min_p:.3f}"


def noise_budgets(gains: pd.DataFrame, n_test: Mapping[str, int]) -> list:
    """Noise budgets (:mod:`survey_lib.experiments.noise`) of claim 1's per-seed slope and of
    each target's gain averaged over k (the inputs of claim 2), with ``n_test[target]`` test
    images. The slope is linear in the gains: b_t = sum_k c_k gain_{t,k} with
    c_k = (x_k − mean x) / sum (x − mean x)², x = log2 k."""
    import numpy as np

    from survey_lib.experiments.noise import noise_budget

    acc = gains.groupby(["target", "k"])[["finetune", "scratch"]].mean()
    targets = sorted(gains.target.unique())
    slope_terms = []
    out = []
    for t in targets:
        ks = sorted(gains[gains.target == t].k.unique())
        x = np.log2(np.asarray(ks, dtype=float))
        c = (x - x.mean()) / ((x - x.mean()) ** 2).sum() if len(ks) > 1 else np.zeros(1)
        m = int(n_test[t])
        for k, ck in zip(ks, c):
            ft, sc = (float(acc.loc[(t, k), col]) for col in ("finetune", "scratch"))
            slope_terms += [(ck / len(targets), ft, m), (-ck / len(targets), sc, m)]
        mean_terms = []
        for k in ks:
            ft, sc = (float(acc.loc[(t, k), col]) for col in ("finetune", "scratch"))
            mean_terms += [(1 / len(ks), ft, m), (-1 / len(ks), sc, m)]
        per_seed = 100.0 * gains[gains.target == t].groupby("seed").gain.mean()
        out.append(noise_budget(f"gain on {t}, mean over k", per_seed.tolist(), mean_terms))
    out.insert(0, noise_budget("1. slope of the gain per doubling of k",
                               slope_per_seed(gains).tolist(), slope_terms))
    return out


def n_test_images(targets, k: int, seed: int, size: int) -> dict[str, int]:
    """Test images per target (as :func:`target_data` draws them)."""
    return {t["name"]: len(target_data(t, k, seed, size)[1]) for t in targets}
