"""Grid cells of the transfer-regularizer comparison (L2, L2-SP, BSS, L2-SP+BSS, DELTA).

Li, Grandvalet, Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional
Networks", ICML 2018; Chen et al., "Catastrophic Forgetting Meets Negative Transfer: Batch
Spectral Shrinkage for Safe Transfer Learning", NeurIPS 2019; Li et al., "DELTA: Deep Learning
Transfer using Feature Map with Attention for Convolutional Networks", ICLR 2019.

Every run fine-tunes the same pretrained source model on a target sampled at a rate (15, 30,
50 or 100 % of its training pool, nested and stratified) with the optimiser's own weight decay
switched off: each method's whole penalty is explicit, so the loss line reads
``cross_entropy + penalty`` for all of them.

Paper options of a cell (absent from the offline grids, so their run ids are unchanged), after
the TLlib benchmark (Jiang et al., https://github.com/thuml/Transfer-Learning-Library,
``examples/task_adaptation/image_classification``: 20 "epochs" of 500 iterations at batch 48,
whatever the sampling rate, the test set evaluated after each and the best reported):
``iterations`` fixes the training length in steps at every rate (:func:`epochs_for_iterations`),
``epoch_metrics`` records the metrics of :mod:`survey_lib.experiments.epoch_metrics` beside
``test_acc``, evaluating the test set about every ``eval_every_iterations`` steps.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F

from survey_lib.data import ImageDataset
from survey_lib.data.protocols import at_most_k_per_class, sampling_rate_subset
from survey_lib.experiments import common, epoch_metrics
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
from survey_lib.train import TrainConfig
from survey_lib.train.context import StepContext

#: DELTA's attention sample size (examples of the target's training set).
ATTENTION_SAMPLES = 256


def source_model(source: Mapping[str, Any], checkpoint_dir: str) -> tuple[TransferModel, tuple]:
    """The pretrained source model (cached) and the normalisation it was trained with."""
    return common.source_model(source, checkpoint_dir)


def target_data(target: Mapping[str, Any], rate: float, seed: int, size: int):
    """The target's pool (``pool_per_class`` per class of split ``pool_split``, default
    ``train``; TLlib's 100 % of FGVC Aircraft is ``trainval``, fixed by ``pool_seed``), sampled at
    ``rate`` with ``seed`` (nested across rates), and its test set (at most ``test_per_class`` per
    class, seed 0; every test image when it is null), with ``target["channels"]`` channels
    (default 1) at ``size`` px. Examples are chosen on the native images and only the chosen
    ones resized."""
    opts = dict(target.get("options", {}))
    channels = int(target.get("channels", 1))
    pool = load_split(
        target["dataset"],
        target.get("pool_split", "train"),
        per_class=target["pool_per_class"],
        seed=target.get("pool_seed", 0),
        size=None,
        options=opts,
    )
    train = pool.subset(
        sampling_rate_subset(pool.labels, float(rate), seed, num_classes=pool.num_classes)
    )
    test = load_split(target["dataset"], "test", size=None, options=opts)
    cap = target.get("test_per_class")
    if cap is not None:  # null: every test image
        test = test.subset(at_most_k_per_class(test.labels, int(cap), 0, num_classes=test.num_classes))
    return train.resized(size, channels), test.resized(size, channels)


def attention_sample(train: ImageDataset, seed: int, size: int = ATTENTION_SAMPLES) -> torch.Tensor:
    """Indices of DELTA's attention sample: about ``size`` training examples, stratified by
    class at random (:func:`~survey_lib.data.protocols.sampling_rate_subset` at rate
    ``size / n``, at least one per class), in a seeded random order; all of ``train`` in its
    own order when it holds at most ``size`` examples.

    The first ``size`` images of a class-sorted subset (what DELTA saw before) covered about
    3 of Oxford-IIIT Pets' 37 classes."""
    n = len(train)
    if n <= size:
        return torch.arange(n)
    idx = sampling_rate_subset(train.labels, size / n, seed, num_classes=train.num_classes)
    order = torch.randperm(len(idx), generator=torch.Generator().manual_seed(int(seed)))
    return torch.as_tensor(idx)[order]


def on_model_device(model: TransferModel, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``tensors`` moved to ``survey_lib.experiments.common.model_device`` of ``model``."""
    device = model_device(model)
    return tuple(t.to(device) for t in tensors)


def steps_per_epoch(n: int, batch_size: int, drop_last: bool) -> int:
    """Optimisation steps of one pass over ``n`` examples (the engine's count)."""
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def epochs_for_iterations(iterations: int, n: int, batch_size: int, drop_last: bool) -> int:
    """Whole epochs that take at least ``iterations`` steps on ``n`` examples:

    .. math:: E = \\left\\lceil \\frac{T}{s} \\right\\rceil, \\qquad
        s = \\lfloor n / B \\rfloor \\text{ (drop\\_last) or } \\lceil n / B \\rceil

    TLlib trains :math:`T` = 20 × 500 = 10k iterations at every sampling rate (its data
    iterator cycles), so the lower rates see their examples more often; the engine counts in
    epochs, so the run ends at the first epoch boundary at or after :math:`T` steps (at most
    :math:`s - 1` steps more), with its step schedule's fractional milestones relative to
    that length.

    Raises:
        ValueError: no step per epoch (``drop_last`` with fewer than ``batch_size`` examples).
    """
    s = steps_per_epoch(n, batch_size, drop_last)
    if s < 1:
        raise ValueError(f"no training steps: {n} examples, batch_size={batch_size}, drop_last")
    return max(1, math.ceil(int(iterations) / s))


def _run_train_spec(params: Mapping[str, Any], n_train: int) -> dict[str, Any]:
    """The run's ``train`` mapping: the lr override, and epochs from ``iterations``."""
    spec = {**params["train"], **({"lr": params["lr"]} if params.get("lr") is not None else {})}
    if params.get("iterations"):
        spec["epochs"] = epochs_for_iterations(
            int(params["iterations"]), n_train, int(spec.get("batch_size", 128)),
            bool(spec.get("drop_last", False)),
        )  # fmt: skip
    return spec


@dataclass
class PreparedRun:
    """One fine-tuning run of the grid, ready to train: what :func:`prepare_run` returns."""

    pretrained: TransferModel
    target_model: TransferModel
    train: ImageDataset
    test: ImageDataset
    config: TrainConfig
    regularizer: torch.nn.Module


def prepare_run(params: Mapping[str, Any], seed: int) -> PreparedRun:
    """Everything :func:`run_cell` does before training: the target's data at the run's rate
    and seed, the source network, the target network (the whole source with a new head drawn
    from the seed), the training config and the regularizer (DELTA's attention batch on the
    run's device). Used by :func:`run_cell` and by the batched cells
    (:mod:`survey_lib.experiments.l2sp_bss_batched`), so both prepare a run identically."""
    source = params["source"]
    spec = dict(params["spec"] if "spec" in params else params["methods"][params["method"]])
    train, test = target_data(params["target"], params["rate"], seed, source["size"])
    pretrained, stats = source_model(source, params["checkpoint_dir"])
    config = train_config(_run_train_spec(params, len(train)), seed, stats)
    pretrained.to(config.device)
    # the whole pretrained network (any input channels, timm backbones included), with a new
    # head drawn from the run's seed
    target_model = copy.deepcopy(pretrained)
    torch.manual_seed(int(seed))
    target_model.reset_classifier(train.num_classes)
    name = spec.pop("regularizer")
    if "delta" in name.split("+"):
        # on the run's device, in its memory format and autocast (DELTA's attention forwards)
        prefix = "delta__" if "+" in name else ""
        idx = attention_sample(train, seed)
        x = normalize(train.images[idx], stats[0], stats[1]).to(config.device)
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        spec[prefix + "attention_data"] = (x, train.labels[idx].to(config.device))
        spec[prefix + "attention_amp"] = bool(config.amp_bf16 and x.device.type == "cuda")
    torch.manual_seed(seed)
    reg = create_regularizer(name, source_model=pretrained, target_model=target_model, **spec)
    return PreparedRun(pretrained, target_model, train, test, config, reg)


def run_cell(params: Mapping[str, Any], seed: int) -> RunOutput:
    """Fine-tune the source on ``params['target']`` at ``params['rate']`` with the penalty
    ``params['spec']`` (``{"regularizer": name, **hparams}``; the method's name is
    ``params['method']``; older grids give ``params['methods'][params['method']]`` instead).
    ``params['lr']``, when given, overrides the learning rate (an lr of 0 is passed on, and
    rejected by :class:`~survey_lib.train.TrainConfig`). The source model and every tensor given
    to the regularizer (DELTA's attention batch) live on the run's device; the run record keeps
    the source checkpoint's SHA-256. With ``params['iterations']`` the epochs follow from it;
    with ``params['epoch_metrics']`` the metrics asked for are returned beside ``test_acc``."""
    run = prepare_run(params, seed)
    target_model, train, test, config = run.target_model, run.train, run.test, run.config
    names = epoch_metrics.recorded(params)
    extra: dict[str, float] = {}
    if names:
        every = epoch_metrics.eval_every_epochs(
            params.get("eval_every_iterations"),
            steps_per_epoch(len(train), config.batch_size, config.drop_last),
        )
        result = fit_or_fail(target_model, train, None, config, penalty=run.regularizer.penalty,
                             eval_sets={"test": test}, eval_every=every)
        extra = epoch_metrics.from_history(result.history, names)
    else:
        fit_or_fail(target_model, train, None, config, penalty=run.regularizer.penalty)
    return RunOutput(
        {"test_acc": test_accuracy(target_model, test, config), **extra},
        info=checkpoint_info(run.pretrained),
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
        extra = {}
        if "bss__eta" in methods.get("BSS", {}):  # any subset of methods works
            bss = methods["BSS"]
            extra["BSS term alone"] = {
                "regularizer": "bss",
                "eta": bss["bss__eta"],
                "k": bss.get("bss__k", 1),
            }
        for m, spec in {**methods, **extra}.items():
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


CLAIMS = {
    "1": "1. BSS ≥ L2 at low sampling rates on a similar target; the gap shrinks at 100 %",
    "2": "2. L2-SP helps on a similar target and ties or hurts on a less similar one",
    "3": "3. On a less similar target the transfer regularizers give no gain or a loss",
    "4": "4. The best fine-tuning lr grows as similarity falls",
}
"""The four claims of published-results.md section 3, keyed by number."""

SESOI_KEYS = ("1a", "1b", "2a", "2b", "3", "4")
"""The protocol's SESOI entries: one per part of claims 1 and 2, one each for 3 and 4."""


def best_lr_ratio(lr_runs: pd.DataFrame, near: str, far: str) -> pd.Series:
    """Per seed, log10(best lr on the far target / best lr on the near one) (claim 4)."""
    import numpy as np

    mean_acc = lr_runs.groupby(["target", "seed", "lr"]).test_acc.mean().reset_index()
    best = mean_acc.loc[mean_acc.groupby(["target", "seed"]).test_acc.idxmax()]
    best = best.set_index(["target", "seed"]).lr
    seeds = sorted(set(best.loc[near].index) & set(best.loc[far].index))
    return pd.Series({s: float(np.log10(best.loc[(far, s)] / best.loc[(near, s)]))
                      for s in seeds}, dtype=float)


def claim_values(gains: pd.DataFrame, *, near: str, far: str) -> dict[str, pd.Series]:
    """Per claim part, the per-seed quantity (points), indexed by seed: 1a BSS − L2 at the
    lowest rate (near); 1b that gap minus the gap at 100 %; 2a L2-SP − L2 mean over rates
    (near); 2b the same on the far target; 3 the best regularizer's gain over L2 on the far
    target (per seed, the largest of the methods' mean gains over rates)."""
    rates = sorted(gains.rate.unique())
    low, full = rates[0], rates[-1]

    def per_seed(target: str, method: str, rate_values) -> pd.Series:
        sel = gains[
            (gains.target == target) & (gains.method == method) & gains.rate.isin(rate_values)
        ]
        return 100.0 * sel.groupby("seed").gain.mean()

    regs = [m for m in gains.method.unique() if m != "L2"]
    best = pd.concat([per_seed(far, m, rates).rename(m) for m in regs], axis=1).max(axis=1)
    out = {
        "1a": per_seed(near, "BSS", [low]),
        "1b": per_seed(near, "BSS", [low]) - per_seed(near, "BSS", [full]),
        "2a": per_seed(near, "L2-SP", rates),
        "2b": per_seed(far, "L2-SP", rates),
        "3": best,
    }
    return {k: v.dropna() for k, v in out.items()}


def claim_verdicts(
    gains: pd.DataFrame,
    lr_runs: pd.DataFrame | None,
    *,
    near: str,
    far: str,
    sesoi: Mapping[str, Mapping[str, Any]],
) -> list:
    """The four claims of the reference file, judged by rules fixed here in advance.

    Claims 1 and 2 have two parts each, combined by
    :func:`~survey_lib.experiments.verdicts.all_of`. "Helps" parts are directional
    (:func:`~survey_lib.experiments.verdicts.effect`); "ties or hurts" / "no gain" parts (2b,
    3) are one-sided equivalence tests (:func:`~survey_lib.experiments.verdicts.no_gain`);
    claim 4 is directional in log10 lr. ``sesoi`` holds the protocol's rule per key of
    :data:`SESOI_KEYS`.
    """
    from survey_lib.experiments.verdicts import (
        all_of,
        effect,
        no_gain,
        not_run,
        sesoi_from_spec,
        values_and_halves,
    )

    missing = sorted(set(SESOI_KEYS) - {str(k) for k in sesoi})
    if missing:
        raise ValueError(f"sesoi has no rule for {missing}; needs keys {list(SESOI_KEYS)}")
    rates = sorted(gains.rate.unique())
    low, full = rates[0], rates[-1]
    values = claim_values(gains, near=near, far=far)

    def judge(key: str, rule, what: str, unit: str = "points", claim: str = "", **kw):
        vals, halves = values_and_halves(values[key])
        size, words = sesoi_from_spec(sesoi[key], unit=unit)
        return rule(claim, vals, sesoi=size, sesoi_rule=words, what=what, unit=unit,
                    halves=halves, **kw)

    out = [
        all_of(CLAIMS["1"], [
            judge("1a", effect, f"BSS − L2 at {low:.0%} ({near})", predicted="+"),
            judge("1b", effect, f"the shrink of BSS − L2 from {low:.0%} to {full:.0%} ({near})",
                  predicted="+"),
        ]),
        all_of(CLAIMS["2"], [
            judge("2a", effect, f"L2-SP − L2, mean over rates ({near})", predicted="+"),
            judge("2b", no_gain, f"L2-SP − L2, mean over rates ({far})"),
        ]),
    ]
    out.append(judge("3", no_gain, f"the best regularizer's gain over L2, mean over rates ({far})",
                     claim=CLAIMS["3"]))
    if lr_runs is None or lr_runs.empty:
        out.append(not_run(CLAIMS["4"], "no learning-rate sweep"))
    else:
        values["4"] = best_lr_ratio(lr_runs, near, far)
        out.append(judge("4", effect, "log10(best lr far / best lr near)", unit="log10 lr",
                         claim=CLAIMS["4"], predicted="+"))
    return out


def noise_budgets(gains: pd.DataFrame, *, near: str, far: str,
                  n_test: Mapping[str, int]) -> list:
    """Noise budgets (:mod:`survey_lib.experiments.noise`) of the per-seed quantities of claim
    parts 1a-3, with ``n_test[target]`` test images (claim 3 with the method whose mean gain
    is the largest)."""
    from survey_lib.experiments.noise import noise_budget

    rates = sorted(gains.rate.unique())
    low, full = rates[0], rates[-1]
    acc = gains.groupby(["target", "method", "rate"]).test_acc.mean()

    def diff(target: str, method: str, rate_values, sign: float = 1.0) -> list:
        w = sign / len(rate_values)
        m = int(n_test[target])
        return ([(w, float(acc.loc[(target, method, r)]), m) for r in rate_values]
                + [(-w, float(acc.loc[(target, "L2", r)]), m) for r in rate_values])

    regs = [m for m in gains.method.unique() if m != "L2"]
    best = max(regs, key=lambda m: gains[(gains.target == far) & (gains.method == m)].gain.mean())
    terms = {
        "1a": diff(near, "BSS", [low]),
        "1b": diff(near, "BSS", [low]) + diff(near, "BSS", [full], -1.0),
        "2a": diff(near, "L2-SP", rates),
        "2b": diff(far, "L2-SP", rates),
        "3": diff(far, best, rates),
    }
    values = claim_values(gains, near=near, far=far)
    values["3"] = 100.0 * gains[(gains.target == far) & (gains.method == best)].groupby(
        "seed").gain.mean()
    names = {"1a": f"1a. BSS − L2 at {low:.0%} ({near})",
             "1b": f"1b. shrink of BSS − L2 from {low:.0%} to {full:.0%}",
             "2a": f"2a. L2-SP − L2 ({near})", "2b": f"2b. L2-SP − L2 ({far})",
             "3": f"3. {best} − L2 ({far})"}
    return [noise_budget(names[k], values[k].tolist(), t) for k, t in terms.items()]


def n_test_images(targets: Mapping[str, Mapping[str, Any]], size: int) -> dict[str, int]:
    """Test images per target (as :func:`target_data` draws them)."""
    return {t["name"]: len(target_data(t, 1.0, 0, size)[1]) for t in targets.values()}
