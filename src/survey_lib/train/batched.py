"""``fit_many``: K training runs of one architecture in one computation.

Each run ``k`` minimises its own objective, exactly as :func:`survey_lib.train.fit` would,

.. math::
    \\min_{\\theta_k}\\; \\frac1B \\sum_{i\\in\\mathcal B_k} \\ell_{\\varepsilon_k}\\big(
    h_{\\theta_k}(x_i), y_i\\big) + \\Omega_k(\\theta_k) + \\frac{\\lambda_k}{2}
    \\lVert\\theta_{k,\\mathrm{decay}}\\rVert^2,

and because the K parameter sets are disjoint, one backward pass of
:math:`\\sum_k L_k(\\theta_k)` gives every run its own gradient
:math:`\\nabla_{\\theta_k} L_k`. The K networks are trained as one "wide" network
(:mod:`survey_lib.train.wide`: grouped convolutions, per-run BatchNorm channels, batched matrix
products; HFTA, Wang et al., MLSys 2021, https://arxiv.org/abs/2102.02344).

Why a wide model and not ``torch.func.vmap`` over ``stack_module_state``: batch norm's running
statistics are in-place buffer updates, which ``vmap`` + ``functional_call`` does not support
(``torch.func.replace_all_batch_norm_modules_`` drops them, changing the method); eval mode of
frozen units, the frozen-unit cache and channels-last memory format (1.3x on this CPU) carry
over unchanged to a wide model, which is an ordinary ``nn.Module``; and ``vmap``'s convolution
rule builds the same grouped convolution internally, in NCHW (the issue's measurement: 5,002
images/s for vmap against 5,281 for sequential channels-last).

What is per run: seed (shuffling and augmentation streams, drawn from the run's own
generators exactly as in ``fit``, so run ``k`` sees the same batches as ``fit`` with its
config), data (own images and labels; all runs need equally many training examples and, if
any, validation examples of one shape), initial weights, lr, lr multipliers, schedule,
momentum, weight decay, label smoothing, normalisation (mean/std), augmentation mode, and the
penalty strength. What must agree (:func:`batch_key`): epochs, batch size, Nesterov, device,
precision, memory format, frozen units, eval batch size, ``drop_last``, ``cache_frozen``,
``wd_skip_norm_bias``.

Supported: full fine-tuning; frozen first ``n`` units (eval mode, no gradient, the frozen
cache when every run has ``augment="none"``); penalties ``L2``, ``L2SP`` and ``NoRegularizer``
(objects from :mod:`survey_lib.regularizers` or their bound ``penalty`` methods) or ``None``;
label smoothing; the engine's augmentations; bf16 autocast as in ``fit``; the non-finite loss
check per run: a run whose loss turns non-finite fails alone (``status="failed"``, its
parameters keep their values from before the failing step, its BatchNorm running statistics
are not meaningful); the others go on.

Falls back to sequential ``fit`` (per run, result marked ``batched_runs=1``): runs with any
other penalty (BSS, DELTA, L2-SP-lower, StochNorm, combined regularizers, plain callables)
and any call with a ``feature_hook``; all runs when the architecture cannot be widened.

Dropout (``nn.Dropout`` on 2-D inputs, as in the reproductions' models): each run draws its
masks from its own generator seeded with its seed, as ``fit`` draws from the global one, so on
the CPU run ``k`` gets exactly its sequential masks (:class:`~survey_lib.train.wide.WideDropout`);
on CUDA ``fit``'s fused dropout kernel draws differently (equal in distribution only).
Batched and sequential runs agree to float rounding (grouped vs. ungrouped kernels, a
hand-written SGD step equal to ``torch.optim.SGD``'s formula): the equivalence tests in
``tests/train/test_batched.py`` hold histories and weights to 1e-4.

Timing: ``train_seconds`` of every run is the batch's wall time; ``images_per_second`` is the
run's own images over it (the batch processed ``batched_runs`` times as many).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from survey_lib.data.base import ImageDataset
from survey_lib.regularizers.l2 import L2
from survey_lib.regularizers.l2_sp import L2SP
from survey_lib.regularizers.none import NoRegularizer
from survey_lib.train.augment import augment_batch
from survey_lib.train.config import TrainConfig
from survey_lib.train.engine import (
    _HISTORY_COLUMNS,
    FitResult,
    _cache_frozen,
    _check_model,
    _progress_bar,
    _set_modes,
    _sync,
    fit,
)
from survey_lib.train.evaluate import autocast, normalizer, to_input
from survey_lib.train.optim import num_units
from survey_lib.train.precision import note_precision, resolve_precision
from survey_lib.train.schedule import lr_factor
from survey_lib.train.wide import (
    check_widened,
    per_run,
    set_dropout_generators,
    split_runs,
    store_runs,
    widen,
)

#: TrainConfig fields that must be equal within one batch of runs.
BATCH_FIELDS = (
    "epochs",
    "batch_size",
    "nesterov",
    "device",
    "channels_last",
    "frozen_units",
    "eval_batch_size",
    "drop_last",
    "cache_frozen",
    "wd_skip_norm_bias",
)


def batch_key(config: TrainConfig) -> tuple:
    """Runs whose configs have equal keys (and models of one architecture) batch together."""
    return (
        *(getattr(config, f) for f in BATCH_FIELDS),
        resolve_precision(config.device, config.amp_bf16),
    )


def batchable_penalty(penalty: Any) -> bool:
    """Whether :func:`fit_many` computes ``penalty`` batched (else the run goes to ``fit``)."""
    owner = getattr(penalty, "__self__", penalty)
    if penalty is not None and owner is not penalty:  # a bound method: only .penalty
        if getattr(penalty, "__name__", "") != "penalty":
            return False
    return penalty is None or type(owner) in (L2, L2SP, NoRegularizer)


def fit_many(
    models: Sequence[nn.Module],
    trains: Sequence[ImageDataset],
    vals: Sequence[ImageDataset | None] | None,
    configs: Sequence[TrainConfig],
    *,
    penalties: Sequence[Any] | None = None,
    feature_hook: Callable | None = None,
    progress: bool = True,
) -> list[FitResult]:
    """Train ``models[k]`` on ``trains[k]`` with ``configs[k]``, all in one computation.

    Args:
        models: K :class:`~survey_lib.models.base.TransferModel` s of one class and shapes;
            each is trained in place and left on its config's device in eval mode, as by
            :func:`~survey_lib.train.fit`.
        trains: each run's training set (equal lengths and image shapes).
        vals: ``None`` or one validation set (or ``None``) per run; given sets need equal
            lengths.
        configs: each run's :class:`TrainConfig` (equal :func:`batch_key`).
        penalties: ``None`` or one entry per run: ``None``, an ``L2``/``L2SP``/
            ``NoRegularizer`` (or its ``.penalty``), or anything ``fit`` accepts (that run then
            trains sequentially with ``fit``).
        feature_hook: not batched: with a hook, every run trains with ``fit``.
        progress: a tqdm bar (silenced by ``TQDM_DISABLE=1``).

    Returns:
        One :class:`FitResult` per run, in order.

    Raises:
        ValueError: lengths differ, configs differ in a :data:`BATCH_FIELDS` field, or data
            sizes differ; the message names what differs.
    """
    k = len(models)
    if k == 0:
        raise ValueError("fit_many needs at least one run")
    vals_list = list(vals) if vals is not None else [None] * k
    pens = list(penalties) if penalties is not None else [None] * k
    for name, seq in (("trains", trains), ("vals", vals_list), ("configs", configs),
                      ("penalties", pens)):  # fmt: skip
        if len(seq) != k:
            raise ValueError(f"fit_many: {name} has {len(seq)} entries for {k} models")
    keys = [batch_key(c) for c in configs]
    if any(key != keys[0] for key in keys):
        names = [*BATCH_FIELDS, "precision"]
        differ = sorted({names[i] for key in keys for i, v in enumerate(key) if v != keys[0][i]})
        raise ValueError(f"fit_many: configs differ in {differ}, which must agree in a batch")
    results: list[FitResult | None] = [None] * k
    batched = [i for i in range(k) if feature_hook is None and batchable_penalty(pens[i])]
    if batched:
        try:
            _check_data([trains[i] for i in batched], [vals_list[i] for i in batched])
            out = _fit_wide(
                [models[i] for i in batched], [trains[i] for i in batched],
                [vals_list[i] for i in batched], [configs[i] for i in batched],
                [_unwrap(pens[i]) for i in batched], progress,
            )  # fmt: skip
            for i, result in zip(batched, out):
                results[i] = result
        except _NotWidenable as err:
            warnings.warn(f"{err}; training the runs one after another", stacklevel=2)
            batched = []
    for i in range(k):
        if results[i] is None:
            penalty = pens[i]
            if isinstance(penalty, nn.Module) and callable(getattr(penalty, "penalty", None)):
                penalty = penalty.penalty  # a regularizer object: fit takes its hook
            results[i] = fit(models[i], trains[i], vals_list[i], configs[i],
                             penalty=penalty, feature_hook=feature_hook, progress=progress)  # fmt: skip
    return results  # type: ignore[return-value]


class _NotWidenable(Exception):
    pass


def _unwrap(penalty: Any) -> Any:
    owner = getattr(penalty, "__self__", penalty)
    return None if penalty is None or isinstance(owner, NoRegularizer) else owner


def _check_data(trains: Sequence[ImageDataset], vals: Sequence[ImageDataset | None]) -> None:
    sizes = {(len(t), tuple(t.images.shape[1:])) for t in trains}
    if len(sizes) > 1:
        raise ValueError(f"fit_many: training sets differ in (length, image shape): {sorted(sizes)}")
    given = [v for v in vals if v is not None]
    if given and len(given) != len(vals):
        raise ValueError("fit_many: give a validation set for every run or for none")
    vsizes = {(len(v), tuple(v.images.shape[1:])) for v in given}
    if len(vsizes) > 1:
        raise ValueError(f"fit_many: validation sets differ in (length, shape): {sorted(vsizes)}")
    if given and len(given[0]) == 0:
        raise ValueError("val has no examples; pass vals=None to skip validation")
    if given and given[0].images.shape[1:] != trains[0].images.shape[1:]:
        raise ValueError("fit_many: validation images differ in shape from the training images")


@dataclass
class _Slot:
    """One wide parameter and what each run does with it."""

    param: nn.Parameter
    unit: int
    lr_scale: torch.Tensor  # (K,) base lr * unit multiplier, 0 where the run does not train it
    decay: torch.Tensor  # (K,) coupled weight decay
    has_decay: bool
    momentum_buf: torch.Tensor | None = None


def _fit_wide(models, trains, vals, configs, penalties, progress) -> list[FitResult]:
    c0 = configs[0]
    for model, config in zip(models, configs):
        _check_model(model, config)
    device = torch.device(c0.device)
    precision = resolve_precision(device, c0.amp_bf16)
    note_precision(precision)
    amp, chl = precision == "bf16", c0.channels_last
    n, bs = len(trains[0]), c0.batch_size
    steps_per_epoch = n // bs if c0.drop_last else math.ceil(n / bs)
    if steps_per_epoch == 0:
        raise ValueError(f"no training steps: {n} examples, batch_size={bs}, drop_last=True")
    for model in models:
        model.to(device)
        if chl:
            model.to(memory_format=torch.channels_last)
    try:
        wide = widen(models)
        sample = trains[0].images[:4].to(device).float() / 255.0
        check_widened(wide, models, sample)
    except ValueError as err:
        raise _NotWidenable(str(err)) from err
    if chl:
        wide.to(memory_format=torch.channels_last)
    # fit seeds the global generator with config.seed and dropout draws from it: one stream
    # per run, seeded the same way, gives each run its sequential masks.
    set_dropout_generators(
        wide, [torch.Generator(device=device).manual_seed(int(c.seed)) for c in configs]
    )
    frozen = c0.frozen_units
    n_units = num_units(models[0])
    slots = _slots(wide, models, configs, frozen, device)
    pen = _WidePenalty(wide, models, penalties, device)
    channels = trains[0].images.shape[1]
    norms = [normalizer(c.mean, c.std, channels, device) for c in configs]
    scale = torch.cat([s for s, _ in norms], 1)
    shift = torch.cat([h for _, h in norms], 1)

    def prep(raw: torch.Tensor) -> torch.Tensor:
        return to_input(raw, scale, shift, chl)

    def run_prep(run: int) -> Callable[[torch.Tensor], torch.Tensor]:
        run_scale, run_shift = norms[run]
        return lambda raw: to_input(raw, run_scale, run_shift, chl)

    use_cache = (
        frozen > 0 and c0.cache_frozen and all(c.augment == "none" for c in configs)
        and getattr(models[0], "sequential", False)
    )  # fmt: skip
    run_seeds = [int(c.seed) for c in configs]
    global_seed = int(np.random.SeedSequence(run_seeds).generate_state(1)[0])
    fork = []
    if device.type == "cuda":
        fork = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=fork):
        torch.manual_seed(global_seed)
        results = _loop(wide, models, trains, vals, configs, slots, pen, device, prep,
                        run_prep, amp, use_cache, frozen, n_units - 1, steps_per_epoch,
                        progress)  # fmt: skip
    store_runs(wide, models)
    for model, result in zip(models, results):
        model.eval()
        result.precision = precision
    return results


def _slots(wide, models, configs, frozen, device) -> list[_Slot]:
    k = len(models)
    unit_of = {}
    for index, name in enumerate(models[0].unit_names):
        unit_of[name] = index
    slots = []
    for qual, param in wide.named_parameters():
        unit = unit_of.get(qual.split(".", 1)[0], -1)
        originals = [m.get_parameter(qual) for m in models]
        trains = [p.requires_grad and not (0 <= unit < frozen) for p in originals]
        param.requires_grad_(any(trains))
        if not any(trains):
            continue
        scales, decays = [], []
        for config, p, trained in zip(configs, originals, trains):
            mults = config.lr_multipliers or (1.0,) * max(len(models[0].unit_names), 1)
            mult = mults[unit] if unit >= 0 else 1.0
            scales.append(config.lr * mult if trained else 0.0)
            skip = config.wd_skip_norm_bias and p.ndim <= 1
            decays.append(0.0 if skip else config.weight_decay)
        shape = (k,) + (1,) * (per_run(param, k).ndim - 1)
        slots.append(_Slot(
            param, unit,
            torch.tensor(scales, dtype=torch.float32, device=device).view(shape),
            torch.tensor(decays, dtype=torch.float32, device=device).view(shape),
            any(d > 0 for d in decays),
        ))  # fmt: skip
    if not slots:
        raise ValueError("no trainable parameters: every parameter is frozen")
    return slots


class _WidePenalty:
    """Per-run :math:`\\Omega_k = \\tfrac12\\sum_p c_{k,p}\\lVert\\theta_{k,p} - r_{k,p}\\rVert^2`.

    L2: :math:`c = \\alpha_k` on penalised weights, :math:`r = 0`. L2-SP: :math:`c = \\alpha_k`,
    :math:`r = w^0_k` on transferred weights, :math:`c = \\beta_k`, :math:`r = 0` on the head's.
    """

    def __init__(self, wide, models, penalties, device) -> None:
        k = len(models)
        self.k = k
        self.terms: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
        if all(p is None for p in penalties):
            return
        head = models[0].unit_names[-1]
        for qual, param in wide.named_parameters():
            coef = [0.0] * k
            ref: torch.Tensor | None = None
            for run, reg in enumerate(penalties):
                p = models[run].get_parameter(qual)
                if isinstance(reg, L2) and (not reg.weights_only or p.ndim >= 2):
                    coef[run] = reg.alpha
                elif isinstance(reg, L2SP):
                    if qual in reg.reference_names:
                        coef[run] = reg.alpha
                        if ref is None:
                            ref = torch.zeros_like(param)
                        w0 = reg.reference(qual).to(device)
                        per_run(ref, k)[run].copy_(w0.reshape(per_run(ref, k)[run].shape))
                    elif qual.split(".", 1)[0] == head and p.ndim >= 2:
                        coef[run] = reg.beta
            if any(coef):
                shape = (k,)
                self.terms.append((param, torch.tensor(coef, device=device).view(shape), ref))

    def __call__(self) -> torch.Tensor | None:
        if not self.terms:
            return None
        total = None
        for param, coef, ref in self.terms:
            diff = param if ref is None else param - ref
            sq = per_run(diff, self.k).pow(2).flatten(1).sum(1)
            term = 0.5 * coef * sq
            total = term if total is None else total + term
        return total


def _loop(wide, models, trains, vals, configs, slots, pen, device, prep, run_prep, amp,
          use_cache, frozen, last, steps_per_epoch, progress) -> list[FitResult]:  # fmt: skip
    k, c0 = len(models), configs[0]
    n, bs, chl = len(trains[0]), c0.batch_size, c0.channels_last
    total_steps = c0.epochs * steps_per_epoch
    gens = []
    for config in configs:
        seeds = np.random.SeedSequence(config.seed).generate_state(2)
        gens.append((torch.Generator(device=device).manual_seed(int(seeds[0])),
                     torch.Generator(device=device).manual_seed(int(seeds[1]))))  # fmt: skip
    images = [t.images.to(device) for t in trains]
    labels = torch.stack([t.labels.to(device) for t in trains], 1)  # (N, K)
    smooth = torch.tensor([c.label_smoothing for c in configs], device=device)
    any_smooth = any(c.label_smoothing > 0 for c in configs)
    run_ix = torch.arange(k, device=device)

    t_cache, cache_seconds, val_src, val_h = None, 0.0, None, None
    if vals[0] is not None:
        val_src = torch.cat([v.images.to(device) for v in vals], 1)
        val_labels = torch.stack([v.labels.to(device) for v in vals], 1)
    if use_cache:
        # Each run's frozen units are its own model's (they never train), so each run's cache
        # is computed by that model exactly as fit computes it: bit for bit fit's cache, and
        # faster on the CPU than the wide network, whose grouped convolutions pay off only
        # with a backward pass (forward alone: 0.4-0.8x the K ungrouped ones, benchmarks/).
        t0 = time.perf_counter()
        for model in models:
            _set_modes(model, frozen)
        t_cache = torch.stack([
            _cache_frozen(model, images[r], frozen, c0.eval_batch_size, run_prep(r), amp)
            for r, model in enumerate(models)
        ], 1)  # fmt: skip  # (N, K, ...)
        if val_src is not None:
            val_h = torch.cat([
                _cache_frozen(model, vals[r].images.to(device), frozen, c0.eval_batch_size,
                              run_prep(r), amp)
                for r, model in enumerate(models)
            ], 1)  # fmt: skip
            if chl and val_h.ndim == 4:
                val_h = val_h.contiguous(memory_format=torch.channels_last)
        _sync(device)
        cache_seconds = time.perf_counter() - t0

    rows: list[list[dict]] = [[] for _ in range(k)]
    alive = torch.ones(k, dtype=torch.bool, device=device)
    bad_step = torch.full((k,), -1, dtype=torch.int64, device=device)
    bad_value = torch.zeros(k, device=device)
    failed_epoch: list[int | None] = [None] * k
    step, train_seconds = 0, cache_seconds
    steps_done = [0] * k
    bar = _progress_bar(total_steps, progress, desc=f"fit_many K={k}")
    for epoch in range(c0.epochs):
        _set_modes(wide, frozen)
        _sync(device)
        t0 = time.perf_counter()
        orders = [torch.randperm(n, device=device, generator=g[0]) for g in gens]
        loss_sum = torch.zeros(k, device=device)
        pen_sum = torch.zeros(k, device=device)
        correct = torch.zeros(k, dtype=torch.int64, device=device)
        factors = [1.0] * k
        seen = 0
        for i in range(steps_per_epoch):
            idx = torch.stack([o[i * bs : (i + 1) * bs] for o in orders], 1)  # (B, K)
            factors = [lr_factor(step, c, total_steps, steps_per_epoch) for c in configs]
            yb = labels.gather(0, idx)  # (B, K)
            b = yb.shape[0]
            with autocast(device, amp):
                if use_cache:
                    h = t_cache[idx, run_ix].flatten(1, 2)
                    if chl and h.ndim == 4:
                        h = h.contiguous(memory_format=torch.channels_last)
                    feats = wide.forward_units(h, frozen, last)
                else:
                    raw = torch.cat([
                        augment_batch(images[r][idx[:, r]], configs[r].augment,
                                      padding=configs[r].crop_padding, generator=gens[r][1])
                        for r in range(k)
                    ], 1)  # fmt: skip
                    feats = wide.forward_features(prep(raw))
                logits = wide.forward_head(feats)
            logits = split_runs(logits.float(), k)  # (B, K, C)
            logp = torch.log_softmax(logits, -1)
            nll = -logp.gather(-1, yb.unsqueeze(-1)).squeeze(-1)  # (B, K)
            if any_smooth:
                nll = (1 - smooth) * nll - smooth * logp.mean(-1)
            loss = nll.mean(0)  # (K,)
            p = pen()
            total = loss if p is None else loss + p.float()
            finite = torch.isfinite(total.detach())
            newly = ~finite & alive
            bad_step = torch.where(newly, step, bad_step)
            bad_value = torch.where(newly, total.detach(), bad_value)
            alive = alive & finite
            objective = torch.where(alive, total, torch.zeros_like(total)).sum()
            for slot in slots:
                slot.param.grad = None
            objective.backward()
            # On the CPU reading ``alive`` costs nothing; on CUDA it would sync every step.
            all_alive = device.type == "cpu" and bool(alive.all())
            _sgd_step(slots, factors, configs, alive, k, device, all_alive)
            live = alive.to(loss.dtype)
            loss_sum += loss.detach().nan_to_num() * b * live
            if p is not None:
                pen_sum += p.detach().float().nan_to_num() * b * live
            correct += ((logits.detach().argmax(-1) == yb).sum(0)) * alive
            seen += b
            step += 1
            bar.update(1)
            if device.type == "cpu" and not bool(alive.any()):
                break
        _sync(device)
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        bad = bad_step.tolist()
        for r in range(k):
            if failed_epoch[r] is None and bad[r] >= 0:
                failed_epoch[r] = bad[r] // steps_per_epoch
        val_metrics = None
        if val_src is not None and any(f is None for f in failed_epoch):
            wide.eval()
            val_metrics = _wide_eval(wide, val_h if use_cache else val_src, val_labels, prep,
                                     use_cache, frozen, last, c0.eval_batch_size, amp, k)  # fmt: skip
        ls, ps, cs = loss_sum.tolist(), pen_sum.tolist(), correct.tolist()
        for r in range(k):
            if failed_epoch[r] is not None:
                continue
            steps_done[r] = step
            row = {
                "epoch": epoch, "train_loss": ls[r] / seen, "train_penalty": ps[r] / seen,
                "train_acc": cs[r] / seen, "val_loss": math.nan, "val_acc": math.nan,
                "lr": configs[r].lr * factors[r], "seconds": seconds,
            }  # fmt: skip
            if val_metrics is not None:
                row["val_loss"], row["val_acc"] = val_metrics[r]
            rows[r].append(row)
        if all(f is not None for f in failed_epoch):
            break
    bar.close()
    results = []
    for r in range(k):
        failure = None
        if failed_epoch[r] is not None:
            failure = {"step": bad[r], "epoch": failed_epoch[r], "value": float(bad_value[r])}
            steps_done[r] = bad[r]
        history = pd.DataFrame(rows[r], columns=_HISTORY_COLUMNS)
        final_val = None
        if failure is None and vals[r] is not None:
            final_val = {"loss": rows[r][-1]["val_loss"], "accuracy": rows[r][-1]["val_acc"]}
        done = steps_done[r]
        per_epoch = steps_per_epoch * bs if c0.drop_last else n
        images_done = (done // steps_per_epoch) * per_epoch + (done % steps_per_epoch) * bs
        results.append(FitResult(
            status="failed" if failure else "ok", history=history, final_val=final_val,
            train_seconds=train_seconds,
            images_per_second=images_done / train_seconds if train_seconds > 0 else math.nan,
            steps=done, failure=failure, cached_frozen=use_cache, cache_seconds=cache_seconds,
            config=configs[r].to_dict(), batched_runs=k,
        ))  # fmt: skip
    return results


@torch.no_grad()
def _sgd_step(slots, factors, configs, alive, k, device, all_alive: bool = False) -> None:
    """SGD with coupled weight decay and (Nesterov) momentum, per run, as ``torch.optim.SGD``.

    .. math:: g \\leftarrow \\nabla + \\lambda_k\\theta,\\quad b \\leftarrow \\mu_k b + g
        \\;(b = g \\text{ at the first step}),\\quad
        \\theta \\leftarrow \\theta - \\eta_k\\,(g + \\mu_k b \\text{ if Nesterov else } b)
    """
    factor = torch.tensor(factors, dtype=torch.float32, device=device)
    mom = torch.tensor([c.momentum for c in configs], dtype=torch.float32, device=device)
    nesterov = configs[0].nesterov
    any_mom = any(c.momentum > 0 for c in configs)
    for slot in slots:
        grad = slot.param.grad
        if grad is None:
            continue
        shape = slot.lr_scale.shape
        p = per_run(slot.param.data, k)
        g = per_run(grad, k)
        if slot.has_decay:
            g = g + slot.decay * p
        if any_mom:
            m = mom.view(shape)
            if slot.momentum_buf is None:
                slot.momentum_buf = g.clone()
            else:
                slot.momentum_buf.mul_(m).add_(g)
            g = g + m * slot.momentum_buf if nesterov else slot.momentum_buf
        lr = slot.lr_scale * factor.view(shape)
        if all_alive:  # the usual case: the same update in place, without a select and copy
            p.sub_(lr * g)
        else:
            p.copy_(torch.where(alive.view(shape), p - lr * g, p))


@torch.no_grad()
def _wide_eval(wide, source, labels, prep, use_cache, frozen, last, batch_size, amp, k):
    chunks = []
    with autocast(source.device, amp):
        for i in range(0, source.shape[0], batch_size):
            batch = source[i : i + batch_size]
            if use_cache:
                out = wide.forward_head(wide.forward_units(batch, frozen, last))
            else:
                out = wide(prep(batch))
            chunks.append(split_runs(out.float(), k))
    logits = torch.cat(chunks)  # (N, K, C)
    nll = -torch.log_softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    loss = (nll.sum(0) / max(1, labels.shape[0])).tolist()
    acc = (logits.argmax(-1) == labels).float().mean(0).tolist()
    return list(zip(loss, acc))
