r"""Which transferability measure predicts transfer? Grid cells and analysis of the zoo study.

For every source model of a zoo (:mod:`survey_lib.experiments.zoo`) and every target, one run
(seeded) draws ``k`` target images per class (nested: the small size is a subset of the large
one), measures the **ground truth** — fine-tuned test accuracy and fixed-feature test accuracy
(logistic regression on standardised penultimate features, fixed ``C``) — and scores every
**measure** of :mod:`survey_lib.transferability` on the target training images under four
settings: ``base`` (large size, penultimate features, every image), ``size`` (small size),
``layer`` (the pooled output of an earlier unit) and ``probe`` (a seeded ``probe_fraction`` of
the images of each class). The source model's accuracy on its own task is a tenth, baseline
measure (``source_acc``; Kornblith et al., CVPR 2019, "better ImageNet models transfer
better").

Across the zoo, per target and seed, each measure is compared with the ground truth by the
weighted Kendall :math:`\tau` of Vigna ("A weighted correlation index for rankings with ties",
WWW 2015; ``scipy.stats.weightedtau``, hyperbolic weights :math:`1/(r+1)` on the rank
:math:`r`, averaged over the two rankings), the statistic of SFDA (Shao et al., ECCV 2022) and
of Agostinelli et al. ("How stable are transferability metrics evaluations?", ECCV 2022); the
interval is the 95 % t-interval over seeds. **Top-1 regret** is the ground truth of the best
model minus that of the measure's favourite (points). **Setup stability** is
:math:`\tau_{\text{setting}} - \tau_{\text{base}}` and how often the best measure changes.

The open question of the survey (§7.1, question 6) — can a measure also choose *how many layers
to transfer* and *the learning rate*? — is a second grid over one reference model: for ``n``
transferred units the measure scores the pooled output of unit ``n``; for a learning rate it
scores the features after ``probe_steps`` of fine-tuning at that rate; the measured best is
the fine-tuned accuracy of each candidate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import weightedtau
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from survey_lib.data import ImageDataset
from survey_lib.experiments import zoo
from survey_lib.experiments.common import fit_or_fail, new_model, test_accuracy, train_config
from survey_lib.experiments.kornblith import target_data
from survey_lib.experiments.verdicts import (
    Verdict,
    effect,
    equivalent,
    not_run,
    values_and_halves,
)
from survey_lib.stats import t_interval
from survey_lib.transfer import transfer_units
from survey_lib.transferability import get_metric

SETTINGS = ("base", "size", "layer", "probe")
BASELINE = "source_acc"
LABELS = {
    "hscore": "H-score",
    "hscore_shrinkage": "shrinkage H-score",
    "nce": "NCE",
    "leep": "LEEP",
    "logme": "LogME",
    "knn": "kNN",
    "linear": "linear probe",
    "transrate": "TransRate",
    "gbc": "GBC",
    BASELINE: "source accuracy",
}


# --------------------------------------------------------------------------- runs


def _epochs_for(steps: int, batch_size: int, n: int) -> int:
    return max(1, math.ceil(steps * batch_size / max(n, 1)))


def _target(params: Mapping[str, Any], k: int, seed: int) -> tuple[ImageDataset, ImageDataset]:
    entry = params["entry"]
    t = {**dict(params["target"]), "channels": int(entry.get("channels", 1))}
    return target_data(t, k, seed, int(params["size"]))


def _device() -> str:
    from survey_lib.experiments.common import default_device

    return default_device()


def score_measures(
    measures: Sequence[str],
    features: np.ndarray,
    probs: np.ndarray | None,
    labels: np.ndarray,
    num_classes: int,
) -> dict[str, float]:
    """Every named measure on one target sample (probability measures only when ``probs``)."""
    out: dict[str, float] = {}
    for name in measures:
        spec = get_metric(name)
        if spec.input == "probabilities":
            if probs is None:
                continue
            out[name] = float(spec(probs, labels, num_classes=num_classes))
        else:
            out[name] = float(spec(features, labels, num_classes=num_classes))
    return out


def fixed_feature_accuracy(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], C: float
) -> float:
    """Test accuracy of an L2 logistic regression (``C``) on standardised fixed features."""
    scaler = StandardScaler().fit(train[0])
    clf = LogisticRegression(C=float(C), max_iter=2000)
    clf.fit(scaler.transform(train[0]), train[1])
    return float(np.mean(clf.predict(scaler.transform(test[0])) == test[1]))


def _finetune(
    model: Any, train: ImageDataset, test: ImageDataset, spec: Mapping[str, Any], stats, seed: int
) -> float:
    epochs = _epochs_for(int(spec["steps"]), int(spec["train"]["batch_size"]), len(train))
    config = train_config({**dict(spec["train"]), "epochs": epochs}, seed, stats)
    fit_or_fail(model, train, None, config)
    return test_accuracy(model, test, config)


def _probe_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(10_000 + seed)
    keep = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        keep.extend(rng.permutation(rows)[: max(3, int(round(fraction * rows.size)))])
    return np.sort(np.asarray(keep))


def run_cell(params: Mapping[str, Any], seed: int) -> dict[str, float]:
    """One (zoo model, target, seed): ground truth at each size and every measure per setting.

    Metrics: ``finetune_acc@<k>`` (for ``finetune_ks``), ``fixed_acc@<k>`` (every ``k``) and
    ``<measure>@<setting>``. NumPy/scikit-learn run on one BLAS thread: the matrices are small
    and threads only contend (a 25x slower logistic regression was seen on a busy 2-core
    machine)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _run_cell(params, seed)


def _run_cell(params: Mapping[str, Any], seed: int) -> dict[str, float]:
    entry, measures = params["entry"], list(params["measures"])
    k_small, k_large = (int(k) for k in params["ks"])
    device = _device()
    model, stats = zoo.zoo_model(entry, size=int(params["size"]), train=params["source_train"],
                                 checkpoint_dir=params["checkpoint_dir"])  # fmt: skip
    out: dict[str, float] = {}
    feats: dict[int, tuple] = {}
    for k in (k_small, k_large):
        train, test = _target(params, k, seed)
        f_tr, p_tr = zoo.embed(model, train, stats=stats, device=device)
        f_te, _ = zoo.embed(model, test, stats=stats, device=device)
        y_tr, y_te = train.labels.numpy(), test.labels.numpy()
        feats[k] = (f_tr, p_tr, y_tr, train)
        out[f"fixed_acc@{k}"] = fixed_feature_accuracy(
            (f_tr, y_tr), (f_te, y_te), params["fixed_C"]
        )
        if k in [int(x) for x in params["finetune_ks"]]:
            torch.manual_seed(seed)
            tuned = zoo.copy_model(model)
            tuned.reset_classifier(train.num_classes)
            out[f"finetune_acc@{k}"] = _finetune(
                tuned, train, test, params["finetune"], stats, seed
            )
    f_l, p_l, y_l, train_l = feats[k_large]
    c = train_l.num_classes
    settings: dict[str, dict[str, float]] = {
        "base": score_measures(measures, f_l, p_l, y_l, c),
        "size": score_measures(
            measures, feats[k_small][0], feats[k_small][1], feats[k_small][2], c
        ),
    }
    if getattr(model, "sequential", False):
        unit = len(zoo.feature_units(model)) + int(params["layer_offset"])
        f_u, _ = zoo.embed(model, train_l, stats=stats, units=unit, device=device)
        settings["layer"] = score_measures(measures, f_u, None, y_l, c)
    rows = _probe_subset(y_l, float(params["probe_fraction"]), seed)
    settings["probe"] = score_measures(measures, f_l[rows], p_l[rows], y_l[rows], c)
    for setting, values in settings.items():
        out.update({f"{m}@{setting}": v for m, v in values.items()})
    return out


def run_choice(params: Mapping[str, Any], seed: int) -> dict[str, float]:
    """One candidate setting on one target for the reference model: fine-tuned accuracy and
    the feature measures of that setting (``params['choice']``: ``{"kind": "layers", "n": n}``
    or ``{"kind": "lr", "lr": lr}``)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _run_choice(params, seed)


def _run_choice(params: Mapping[str, Any], seed: int) -> dict[str, float]:
    entry, measures = params["entry"], list(params["measures"])
    k = int(params["k"])
    device = _device()
    source, stats = zoo.zoo_model(entry, size=int(params["size"]), train=params["source_train"],
                                  checkpoint_dir=params["checkpoint_dir"])  # fmt: skip
    train, test = _target(params, k, seed)
    y = train.labels.numpy()
    choice, spec = params["choice"], dict(params["finetune"])
    feature_only = [m for m in measures if get_metric(m).input == "features"]
    if choice["kind"] == "layers":
        n = int(choice["n"])
        f, _ = zoo.embed(source, train, stats=stats, units=n, device=device)
        scores = score_measures(feature_only, f, None, y, train.num_classes)
        target = new_model(entry["model"], train.num_classes, int(entry.get("channels", 1)),
                           seed, **dict(entry.get("model_kwargs", {})))  # fmt: skip
        transfer_units(source, target, n, seed=seed)
        acc = _finetune(target, train, test, spec, stats, seed)
    elif choice["kind"] == "lr":
        spec["train"] = {**dict(spec["train"]), "lr": float(choice["lr"])}
        probe = zoo.copy_model(source)
        torch.manual_seed(seed)
        probe.reset_classifier(train.num_classes)
        _finetune(probe, train, test, {**spec, "steps": int(params["probe_steps"])}, stats, seed)
        f, _ = zoo.embed(probe, train, stats=stats, device=device)
        scores = score_measures(feature_only, f, None, y, train.num_classes)
        tuned = zoo.copy_model(source)
        torch.manual_seed(seed)
        tuned.reset_classifier(train.num_classes)
        acc = _finetune(tuned, train, test, spec, stats, seed)
    else:
        raise ValueError(f"choice kind must be 'layers' or 'lr', got {choice['kind']!r}")
    return {"finetune_acc": acc, **scores}


# --------------------------------------------------------------------------- tables


def _name(value: Any) -> str:
    return (json.loads(value) if isinstance(value, str) else value)["name"]


def long_table(tidy: pd.DataFrame, source_acc: Mapping[str, float]) -> pd.DataFrame:
    """One row per (model, target, seed, metric) with ``measure``/``setting`` split out; the
    baseline ``source_acc`` is added as a measure with the same value in every setting."""
    df = pd.DataFrame({
        "model": [_name(e) for e in tidy["entry"]],
        "target": [_name(t) for t in tidy["target"]],
        "seed": tidy["seed"].astype(int),
        "metric": tidy["metric"],
        "value": tidy["value"].astype(float),
    })  # fmt: skip
    parts = df["metric"].str.split("@", n=1, expand=True)
    df["measure"], df["setting"] = parts[0], parts[1]
    extra = []
    scored = df[~df["measure"].isin(["finetune_acc", "fixed_acc"])]
    for (model, target, seed, setting), _ in scored.groupby(["model", "target", "seed", "setting"]):
        extra.append({"model": model, "target": target, "seed": seed, "value": source_acc[model],
                      "measure": BASELINE, "setting": setting,
                      "metric": f"{BASELINE}@{setting}"})  # fmt: skip
    return pd.concat([df, pd.DataFrame(extra)], ignore_index=True)


def truth_table(long: pd.DataFrame) -> pd.DataFrame:
    """Ground truth: one row per (model, target, seed, truth, k) with ``acc``."""
    gt = long[long["measure"].isin(["finetune_acc", "fixed_acc"])].copy()
    gt["k"] = gt["setting"].astype(int)
    gt["truth"] = gt["measure"].str.replace("_acc", "", regex=False)
    return gt.rename(columns={"value": "acc"})[["model", "target", "seed", "truth", "k", "acc"]]


def weighted_tau(truth: Sequence[float], score: Sequence[float]) -> float:
    """``scipy.stats.weightedtau`` (hyperbolic weights, both rankings averaged); NaN when
    either side is constant."""
    t, s = np.asarray(truth, float), np.asarray(score, float)
    if t.size < 3 or np.ptp(t) == 0 or np.ptp(s) == 0:
        return float("nan")
    return float(weightedtau(t, s).statistic)


def tau_table(long: pd.DataFrame, truth: str, k_truth: dict[str, int]) -> pd.DataFrame:
    """τ per (target, seed, measure, setting) against ground truth ``truth`` at the size of
    each setting (``k_truth``: setting → k), plus top-1 regret in points."""
    gt = truth_table(long)
    gt = gt[gt["truth"] == truth]
    scores = long[~long["measure"].isin(["finetune_acc", "fixed_acc"])]
    rows = []
    for (target, seed, measure, setting), grp in scores.groupby(
        ["target", "seed", "measure", "setting"]
    ):
        ref = gt[(gt["target"] == target) & (gt["seed"] == seed) & (gt["k"] == k_truth[setting])]
        merged = grp.merge(ref[["model", "acc"]], on="model")
        if len(merged) < 3:
            continue
        pick = merged.loc[merged["value"].idxmax()]
        rows.append({"target": target, "seed": seed, "measure": measure, "setting": setting,
                     "truth": truth, "k": k_truth[setting], "n_models": len(merged),
                     "tau": weighted_tau(merged["acc"], merged["value"]),
                     "regret": 100.0 * (merged["acc"].max() - pick["acc"]),
                     "pick": pick["model"]})  # fmt: skip
    return pd.DataFrame(rows)


def summarise(per_seed: pd.DataFrame, value: str, by: list[str]) -> pd.DataFrame:
    """Mean, 95 % t-interval and n over seeds (NaN values dropped) of ``value`` per ``by``."""
    rows = []
    for key, grp in per_seed.groupby(by):
        mean, low, high, n = t_interval(grp[value].dropna().tolist())
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True)),
                     "mean": mean, "ci_low": low, "ci_high": high, "n": n})  # fmt: skip
    return pd.DataFrame(rows)


def pooled_by_seed(per_seed: pd.DataFrame, value: str, by: list[str]) -> pd.DataFrame:
    """``value`` averaged over targets within each seed (one number per seed and ``by``)."""
    return per_seed.groupby([*by, "seed"], as_index=False)[value].mean()


def stability_table(taus: pd.DataFrame) -> pd.DataFrame:
    """Per (target, seed, measure, setting ≠ base): Δτ = τ(setting) − τ(base), and whether the
    best measure (highest τ) of that target and seed changes with the setting."""
    base = taus[taus["setting"] == "base"].set_index(["target", "seed", "measure"])["tau"]
    best_base = (taus[taus["setting"] == "base"].dropna(subset=["tau"])
                 .sort_values("tau").groupby(["target", "seed"])["measure"].last())  # fmt: skip
    rows = []
    for (target, seed, setting), grp in taus[taus["setting"] != "base"].groupby(
        ["target", "seed", "setting"]
    ):
        g = grp.dropna(subset=["tau"])
        best = g.sort_values("tau")["measure"].iloc[-1] if len(g) else None
        for _, row in grp.iterrows():
            key = (target, seed, row["measure"])
            rows.append({"target": target, "seed": seed, "setting": setting,
                         "measure": row["measure"],
                         "delta_tau": row["tau"] - base.get(key, float("nan")),
                         "winner_changed": best != best_base.get((target, seed))})  # fmt: skip
    return pd.DataFrame(rows)


def choice_table(tidy: pd.DataFrame, measures: Sequence[str]) -> pd.DataFrame:
    """Per (target, kind, seed, measure): regret (points) of the measure's pick among the
    candidate settings against the measured best, and whether it picked the best."""
    rows = []
    df = tidy.copy()
    df["target"] = [_name(t) for t in df["target"]]
    df["choice"] = df["choice"].map(lambda c: c if isinstance(c, str) else json.dumps(c))
    wide = df.pivot_table(index=["target", "choice", "seed"], columns="metric", values="value")
    wide = wide.reset_index()
    wide["kind"] = wide["choice"].map(lambda c: json.loads(c)["kind"])
    for (target, kind, seed), grp in wide.groupby(["target", "kind", "seed"]):
        best = grp["finetune_acc"].max()
        for m in measures:
            if m not in grp or grp[m].isna().all():
                continue
            pick = grp.loc[grp[m].idxmax()]
            rows.append({"target": target, "kind": kind, "seed": seed, "measure": m,
                         "pick": pick["choice"], "regret": 100.0 * (best - pick["finetune_acc"]),
                         "picked_best": bool(pick["finetune_acc"] == best)})  # fmt: skip
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- verdicts

TAU_SESOI = 0.1
TAU_SESOI_RULE = ("0.1 in weighted τ: about one swapped pair among the top five of a ranking, "
                  "the smallest difference between measures that changes a choice")  # fmt: skip
REGRET_SESOI = 1.0
REGRET_SESOI_RULE = "1 accuracy point, the spread between seeds of one fine-tuning run here"


def _diff_by_seed(taus: pd.DataFrame, a: str, b: str) -> pd.Series:
    base = taus[taus["setting"] == "base"]
    pooled = base.groupby(["measure", "seed"])["tau"].mean().unstack("measure")
    return (pooled[a] - pooled[b]).dropna()


def claim_verdicts(
    taus: pd.DataFrame, choice: pd.DataFrame | None, measures: Sequence[str]
) -> list[Verdict]:
    """Verdicts on the published claims tested here, each from per-seed values (τ averaged over
    targets, or regret averaged over targets)."""
    have = set(taus["measure"]) if len(taus) else set()
    claims = [
        ("You et al. 2021 (LogME): LogME ranks pre-trained models better than LEEP", "logme",
         "leep"),
        ("You et al. 2021 (LogME): LogME ranks pre-trained models better than NCE", "logme",
         "nce"),
        ("Nguyen et al. 2020 (LEEP): LEEP predicts transfer better than NCE", "leep", "nce"),
        ("Ibrahim et al. 2022: the shrinkage H-score ranks models better than the H-score",
         "hscore_shrinkage", "hscore"),
        ("Huang et al. 2022 (TransRate): TransRate ranks models better than LogME", "transrate",
         "logme"),
        ("Pándy et al. 2022 (GBC): GBC ranks models better than LogME", "gbc", "logme"),
        ("Kornblith et al. 2019: source accuracy predicts which model transfers best "
         "(τ of source accuracy > 0)", BASELINE, None),
    ]  # fmt: skip
    out: list[Verdict] = []
    for claim, a, b in claims:
        if a not in have or (b is not None and b not in have):
            out.append(not_run(claim, f"{a} or {b} not measured"))
            continue
        if b is None:
            base = taus[(taus["setting"] == "base") & (taus["measure"] == a)]
            series = base.groupby("seed")["tau"].mean().dropna()
            what = f"weighted τ of {LABELS[a]} with fine-tuned accuracy, mean over targets"
        else:
            series = _diff_by_seed(taus, a, b)
            what = f"τ({LABELS[a]}) − τ({LABELS[b]}), mean over targets"
        values, halves = values_and_halves(series)
        out.append(effect(claim, values, predicted="+", sesoi=TAU_SESOI,
                          sesoi_rule=TAU_SESOI_RULE, what=what, unit="tau",
                          halves=halves))  # fmt: skip
    for kind, words in (("layers", "how many layers to transfer"), ("lr", "the learning rate")):
        claim = (
            f"Survey §7.1 Q6 (open): the best measure also picks {words} "
            "(regret of its pick within 1 point of the measured best)"
        )
        if choice is None or not len(choice) or kind not in set(choice["kind"]):
            out.append(not_run(claim, "no candidate settings in this protocol"))
            continue
        best = _best_measure(taus, [m for m in measures if m in set(choice["measure"])])
        sub = choice[(choice["kind"] == kind) & (choice["measure"] == best)]
        series = sub.groupby("seed")["regret"].mean()
        values, halves = values_and_halves(series)
        out.append(equivalent(claim + f" [measure: {LABELS.get(best, best)}]", values,
                              sesoi=REGRET_SESOI, sesoi_rule=REGRET_SESOI_RULE,
                              what=f"regret of {LABELS.get(best, best)}'s pick, mean over targets",
                              unit="points", halves=halves))  # fmt: skip
    return out


def _best_measure(taus: pd.DataFrame, candidates: Sequence[str]) -> str:
    base = taus[(taus["setting"] == "base") & taus["measure"].isin(list(candidates))]
    return str(base.groupby("measure")["tau"].mean().idxmax())
