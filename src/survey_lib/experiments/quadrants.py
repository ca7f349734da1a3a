"""Grid cells and claim rules of ``notebooks/best_practice_quadrants.md``: the survey's own
best-practice recommendations (Plested and Gedeon 2022, sections 7.1-7.2), tested per quadrant
of its taxonomy (target size × similarity to the source).

Every run fine-tunes one pretrained source model (cached, :mod:`survey_lib.experiments.common`)
on one quadrant's target by a :class:`~survey_lib.recipes.Recipe` (an *arm*), or, for claim 7,
through an intermediate data set, or, for claim 8, fits a linear probe on the frozen, globally
average-pooled output of each unit. Differences are paired by seed (the seed draws the target
subset, the head and the data order), in accuracy points (0.01 accuracy = 1 point).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from survey_lib.data.base import ImageDataset
from survey_lib.data.protocols import train_val_split
from survey_lib.experiments import common
from survey_lib.experiments.common import load_split, test_accuracy
from survey_lib.experiments.verdicts import Verdict, all_of, effect, not_run
from survey_lib.models.features import normalize
from survey_lib.recipes import Recipe, fine_tune
from survey_lib.transfer.linear_probe import linear_probe


def target_data(target: Mapping[str, Any], seed: int, size: int) -> tuple[ImageDataset, ImageDataset]:
    """A quadrant's training set (``per_class`` images per class, a seeded subset; ``None``:
    the whole pool) restricted to ``classes`` if given, and its fixed test set."""
    opts = dict(target.get("options", {}))
    channels = int(target.get("channels", 1))
    classes = target.get("classes")
    train = load_split(target["dataset"], "train", classes=classes, per_class=target.get("per_class"),
                       seed=seed, size=size, channels=channels, options=opts)
    test = load_split(target["dataset"], "test", classes=classes,
                      per_class=target.get("test_per_class"), seed=0, size=size,
                      channels=channels, options=opts)
    return train, test


def _base_train(params: Mapping[str, Any]) -> dict[str, Any]:
    return {**params["train"], "epochs": int(params["target"].get("epochs", params["train"]["epochs"]))}


def run_recipe(params: Mapping[str, Any], seed: int) -> dict[str, float]:
    """Fine-tune the source on ``params['target']`` by ``params['recipe']``."""
    source = params["source"]
    train, test = target_data(params["target"], seed, source["size"])
    pretrained, stats = common.source_model(source, params["checkpoint_dir"])
    model, config = fine_tune(pretrained, stats, train, _base_train(params),
                              Recipe.from_dict(params["recipe"]), seed)
    return {"test_acc": test_accuracy(model, test, config)}


def _intermediate(params: Mapping[str, Any], route: str):
    """The model claim 7 starts the target from: the source (``direct``), the source
    fine-tuned on the intermediate set (``multi``), or a network trained from scratch on the
    intermediate set (``intermediate_only``); the last two cached, seed fixed."""
    source = params["source"]
    pretrained, stats = common.source_model(source, params["checkpoint_dir"])
    if route == "direct":
        return pretrained, stats
    inter = params["intermediate"]
    train, _ = target_data(inter, int(inter.get("seed", 0)), source["size"])
    key = {"what": "intermediate", "route": route, "source": dict(source), "intermediate": dict(inter)}
    base = {**params["train"], "epochs": int(inter["epochs"])}

    def build():
        return common.new_model(source["model"], train.num_classes, int(source.get("channels", 1)),
                                int(inter.get("seed", 0)))

    def train_fn(model) -> None:
        if route == "multi":
            tuned, _ = fine_tune(pretrained, stats, train, base, Recipe(), int(inter.get("seed", 0)))
            model.load_state_dict(tuned.state_dict())
        else:
            cfg = common.train_config({**base, "lr": float(inter.get("scratch_lr", base["lr"]))},
                                      int(inter.get("seed", 0)), stats)
            common.fit_or_fail(model, train, None, cfg)

    if route not in ("multi", "intermediate_only"):
        raise ValueError(f"route must be direct, multi or intermediate_only, got {route!r}")
    return common.cached_model(params["checkpoint_dir"], key, build, train_fn), stats


def run_multistep(params: Mapping[str, Any], seed: int) -> dict[str, float]:
    """Claim 7: fine-tune (plain default) on the target from the route's starting model."""
    start, stats = _intermediate(params, params["route"])
    train, test = target_data(params["target"], seed, params["source"]["size"])
    model, config = fine_tune(start, stats, train, _base_train(params), Recipe(), seed)
    return {"test_acc": test_accuracy(model, test, config)}


def pooled_unit_features(model, data: ImageDataset, stats: tuple, *, batch_size: int = 512) -> list[torch.Tensor]:
    """Global-average-pooled output of every feature unit (all but the head), in eval mode:
    one ``(N, channels_u)`` tensor per unit."""
    model = model.cpu().eval()
    n_feature_units = len(model.unit_names) - 1
    outs: list[list[torch.Tensor]] = [[] for _ in range(n_feature_units)]
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            x = normalize(data.images[start:start + batch_size], stats[0], stats[1])
            for u in range(n_feature_units):
                x = model.forward_units(x, u, u + 1)
                outs[u].append(x.mean(dim=(2, 3)) if x.ndim == 4 else x)
    return [torch.cat(o).float() for o in outs]


def run_probe(params: Mapping[str, Any], seed: int) -> dict[str, float]:
    """Claim 8: linear-probe test accuracy of each unit's frozen pooled features (the L2
    strength chosen on a seeded quarter of the training set, then refit on all of it)."""
    source = params["source"]
    pretrained, stats = common.source_model(source, params["checkpoint_dir"])
    train, test = target_data(params["target"], seed, source["size"])
    tr_idx, va_idx = train_val_split(train.labels, 0.25, seed, num_classes=train.num_classes)
    f_train = pooled_unit_features(pretrained, train, stats)
    f_test = pooled_unit_features(pretrained, test, stats)
    out = {}
    for name, a, b in zip(pretrained.unit_names, f_train, f_test):
        res = linear_probe(a[tr_idx], train.labels[tr_idx], a[va_idx], train.labels[va_idx],
                           num_classes=train.num_classes, test_features=b, test_labels=test.labels,
                           l2_grid=np.logspace(-4, 3, 8))
        out[f"probe_{name}"] = float(res.test_accuracy)
    return out


def run_cell(params: Mapping[str, Any], seed: int) -> dict[str, float]:
    """One run: ``params['kind']`` is ``recipe``, ``multistep`` or ``probe``."""
    kind = params.get("kind", "recipe")
    runners = {"recipe": run_recipe, "multistep": run_multistep, "probe": run_probe}
    if kind not in runners:
        raise ValueError(f"unknown cell kind {kind!r}; valid: {', '.join(runners)}")
    return runners[kind](params, seed)


# --------------------------------------------------------------------------- claims


def paired(runs: pd.DataFrame, quadrant: str, arm: str, base: str = "default") -> pd.Series:
    """Per-seed ``acc(arm) − acc(base)`` in points on one quadrant."""
    sel = runs[runs.quadrant == quadrant].pivot_table(index="seed", columns="arm", values="test_acc")
    if arm not in sel or base not in sel:
        return pd.Series(dtype=float)
    return ((sel[arm] - sel[base]) * 100).dropna()


def _halves(values: pd.Series):
    seeds = sorted(values.index)
    if len(seeds) < 4:
        return None
    a, b = seeds[0::2], seeds[1::2]
    return values.loc[a].tolist(), values.loc[b].tolist()


def _effect(claim: str, values: pd.Series, rule: Mapping[str, Any], what: str, unit: str = "points") -> Verdict:
    return effect(claim, values.tolist(), predicted=rule.get("predicted", "+"), sesoi=float(rule["sesoi"]),
                  sesoi_rule=rule["sesoi_rule"], what=what, unit=unit, halves=_halves(values))


def best_lr_shift(runs: pd.DataFrame, near: str, far: str, arms: Mapping[str, float]) -> pd.Series:
    """Per seed, log10(best lr factor on ``far``) − log10(best lr factor on ``near``), the best
    being the arm of highest test accuracy among ``arms`` (arm → lr factor)."""
    sel = runs[runs.arm.isin(list(arms))]
    out = {}
    for seed, g in sel.groupby("seed"):
        best = {}
        for q in (near, far):
            gq = g[g.quadrant == q]
            if gq.arm.nunique() < len(arms):
                break
            best[q] = np.log10(arms[gq.loc[gq.test_acc.idxmax(), "arm"]])
        if len(best) == 2:
            out[seed] = best[far] - best[near]
    return pd.Series(out, dtype=float)


def claim_verdicts(runs: pd.DataFrame, multistep: pd.DataFrame, probes: pd.DataFrame,
                   rules: Mapping[str, Mapping[str, Any]]) -> list[Verdict]:
    """The eight claims, each judged by the rule fixed for it in the params file (``rules``:
    claim id → contrast names, predicted sign, SESOI and the SESOI's rule)."""
    out: list[Verdict] = []

    def has(values: pd.Series) -> bool:
        return len(values) > 0

    r = rules["c1"]
    parts = [_effect("", -paired(runs, q, "frozen"), r, f"fine-tune − frozen ({q})") for q in r["quadrants"]]
    out.append(all_of("1. Fine-tuning beats freezing the transferred layers (except possibly small, very similar)", parts)
               if all(p.n for p in parts) else not_run("1. Fine-tuning beats freezing", "arms missing"))

    r = rules["c2"]
    shift = best_lr_shift(runs, r["near"], r["far"], r["lr_arms"])
    out.append(_effect("2. The best fine-tuning lr is lower for similar targets than for less similar ones",
                       shift, r, f"log10(best lr, {r['far']}) − log10(best lr, {r['near']})", unit="log10 lr")
               if has(shift) else not_run("2. Best lr lower for similar targets", "lr arms missing"))

    r = rules["c3"]
    diffs = []
    for small, large in r["pairs"]:
        diffs.append(paired(runs, small, "fast_decay") - paired(runs, large, "fast_decay"))
    dd = pd.concat(diffs, axis=1).mean(axis=1).dropna() if diffs else pd.Series(dtype=float)
    out.append(_effect("3. A faster lr decay is better for small targets than for large ones", dd, r,
                       "(fast − default | small) − (fast − default | large), mean over similarities")
               if has(dd) else not_run("3. Faster decay better for small targets", "arms missing"))

    r = rules["c4"]
    help_small = pd.concat([paired(runs, r["helps_on"], a) for a in r["arms"]], axis=1).mean(axis=1).dropna()
    gain_far = pd.concat([paired(runs, r["no_help_on"], a) for a in r["arms"]], axis=1).mean(axis=1).dropna()
    if has(help_small) and has(gain_far):
        no_help = {**r, "predicted": "+"}
        out.append(all_of("4. Transfer regularizers help on small similar targets and not on large, less similar ones", [
            _effect("", help_small, r, f"mean(regularizer − default) ({r['helps_on']})"),
            _effect("", float(r["sesoi"]) - gain_far, no_help,
                    f"SESOI − mean(regularizer − default) ({r['no_help_on']}): gain below the SESOI"),
        ]))
    else:
        out.append(not_run("4. Transfer regularizers help small similar, not large less similar", "arms missing"))

    r = rules["c5"]
    reinit = pd.concat([paired(runs, r["quadrant"], a) for a in r["arms"]], axis=1).mean(axis=1).dropna()
    out.append(_effect("5. Re-initialising more of the top layers helps on less similar targets", reinit, r,
                       f"mean over {r['arms']} of (re-initialised − default) ({r['quadrant']})")
               if has(reinit) else not_run("5. Re-initialising top layers helps", "arms missing"))

    r = rules["c6"]
    q = r["quadrant"]
    a, b = paired(runs, q, r["lower"], r["sp_all"]), paired(runs, q, r["lower"], r["l2_all"])
    out.append(all_of("6. L2-SP on lower layers + L2 above beats either alone on a less similar target", [
        _effect("", a, r, f"l2_sp_lower − L2-SP everywhere ({q})"),
        _effect("", b, r, f"l2_sp_lower − L2 everywhere ({q})"),
    ]) if has(a) and has(b) else not_run("6. l2_sp_lower beats either alone", "arms missing"))

    r = rules["c7"]
    if multistep is None or multistep.empty:
        out.append(not_run("7. A multi-step transfer through a more related set helps a small, less similar target"))
    else:
        piv = multistep.pivot_table(index="seed", columns="route", values="test_acc") * 100
        out.append(all_of("7. A multi-step transfer through a more related set helps a small, less similar target", [
            _effect("", (piv["multi"] - piv["direct"]).dropna(), r, "source→intermediate→target − source→target"),
            _effect("", (piv["multi"] - piv["intermediate_only"]).dropna(), r,
                    "source→intermediate→target − intermediate→target"),
        ]))

    r = rules["c8"]
    if probes is None or probes.empty:
        out.append(not_run("8. Fixed lower-layer features beat top-layer features on a small, less similar target"))
    else:
        vals = ((probes[f"probe_{r['lower']}"] - probes[f"probe_{r['top']}"]) * 100)
        vals.index = probes.seed
        out.append(_effect("8. Fixed lower-layer features beat top-layer features on a small, less similar target",
                           vals, r, f"probe({r['lower']}) − probe({r['top']})"))
    return out


def advice_table(runs: pd.DataFrame, quadrants: Mapping[str, str], rule: Mapping[str, Any]) -> list[Verdict]:
    """Per offline pair, ``advised − default`` (the ``advise --check`` contrast) as a verdict;
    ``quadrants`` maps each pair to the quadrant advise measured for it."""
    return [_effect(f"advice beats the plain default on {pair} (measured: {quadrants[pair]})",
                    paired(runs, pair, "advised"), rule, f"advised − default ({pair})")
            for pair in quadrants]
