"""Per notebook, every training run its protocol asks for (:mod:`survey_lib.estimate.runs`
states the step-count formula and what is counted). Each function mirrors the grids its
notebook builds, so a change of a protocol file changes the count."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from survey_lib.estimate.runs import (
    FROZEN_ALL,
    Runs,
    WorkloadFn,
    budget_steps,
    classes,
    epoch_steps,
    grid_size,
    method_key,
    per_class,
    source_runs,
    step_config,
)


def yosinski(p: Mapping[str, Any]) -> list[Runs]:
    """Base nets on both halves of every split, frozen and fine-tuned transfer nets from both
    halves at every ``n``, and the random-filter control on the dissimilar split (Yosinski et
    al., NeurIPS 2014); the glyph halves of ``many_class`` likewise (random split only)."""
    nb, seeds, bs = "yosinski_layer_transfer", len(p["seeds"]), int(p["train"]["batch_size"])
    out: list[Runs] = []
    blocks = [("", p["dataset"], p.get("options"), p["train_per_class"], list(p["splits"]))]
    if p.get("many_class"):
        mc = p["many_class"]
        blocks.append(("glyphs_", mc["dataset"], mc.get("options"), mc["train_per_class"],
                       ["random"]))  # fmt: skip
    for prefix, dataset, options, cap, splits in blocks:
        n = (classes(dataset, options) // 2) * per_class(dataset, "train", cap)
        steps = epoch_steps(n, bs, p["train"]["epochs"])

        def step(frozen: int = 0) -> Any:
            return step_config(p["model"], bs, frozen=frozen, size=p.get("size"),
                               channels=p.get("channels", 1))  # fmt: skip

        out.append(Runs(nb, prefix + "base", step(), steps, len(splits) * 2 * seeds))
        for n_units in p["n_values"]:
            for frozen in (int(n_units), 0):  # frozen transfer, fine-tuned transfer
                out.append(Runs(nb, prefix + "transfer", step(frozen), steps,
                                len(splits) * 2 * seeds))  # fmt: skip
            if not prefix and "dissimilar" in splits:  # the random-filter control
                out.append(Runs(nb, "transfer", step(int(n_units)), steps, seeds))
    return out


def kornblith(p: Mapping[str, Any]) -> list[Runs]:
    """Fine-tuning and random-init runs per target and ``k`` (Kornblith et al., CVPR 2019);
    a method's ``grid`` adds one run per configuration on the training part (``1 -
    val_fraction``) and the refit of the chosen one on all ``k``."""
    nb, source, seeds = "kornblith_gains_vs_size", p["source"], len(p["seeds"])
    out = source_runs(nb, source, [source.get("epochs", 0), *p.get("source_quality_epochs", [])])
    for target in p["targets"]:
        for k in p["ks"]:
            if k > target["max_k"]:
                continue
            k_have = per_class(target["dataset"], target.get("train_split", "train"), k)
            n = k_have * classes(target["dataset"], target.get("options"))
            for method in ("finetune", "scratch"):
                spec = p[method]
                bs = int(spec["train"]["batch_size"])
                step = step_config(source["model"], bs, size=source.get("size"),
                                   channels=target.get("channels", source.get("channels", 1)))
                configs = grid_size(spec)
                if configs:
                    n_fit = max(1, round(n * (1.0 - float(p.get("val_fraction", 0.2)))))
                    search = int((spec.get("grid") or {}).get("steps", spec["steps"]))
                    out.append(Runs(nb, f"gains/{method}/grid", step,
                                    budget_steps(n_fit, bs, search), seeds * configs))
                out.append(Runs(nb, f"gains/{method}", step, budget_steps(n, bs, spec["steps"]),
                                seeds))  # fmt: skip
    return out


def l2sp(p: Mapping[str, Any]) -> list[Runs]:
    """Every method at every sampling rate of each target's pool, and the plain-L2 lr sweep
    at 100 % (Li et al., ICML 2018; Chen et al., NeurIPS 2019; Li et al., ICLR 2019)."""
    nb, source, seeds = "l2sp_vs_bss", p["source"], len(p["seeds"])
    out = source_runs(nb, source, [source.get("epochs", 0)])
    bs = int(p["train"]["batch_size"])
    iterations = p.get("iterations")  # TLlib's fixed step count (paper presets), else epochs
    drop_last = bool(p["train"].get("drop_last", False))

    def epochs_at(n: int) -> int:
        if iterations is None:
            return int(p["train"]["epochs"])
        steps = max(1, n // bs if drop_last else math.ceil(n / bs))
        return math.ceil(int(iterations) / steps)  # as l2sp_bss.epochs_for_iterations

    for target in p["targets"].values():
        pool = classes(target["dataset"], target.get("options")) * per_class(
            target["dataset"], target.get("pool_split", "train"), target["pool_per_class"]
        )

        channels = target.get("channels", source.get("channels", 1))
        for rate in p["rates"]:
            n = max(1, round(pool * float(rate)))
            for spec in p["methods"].values():
                step = step_config(source["model"], bs, method=method_key(spec["regularizer"]),
                                   size=source.get("size"), channels=channels)
                out.append(Runs(nb, "regularizers", step, epoch_steps(n, bs, epochs_at(n)), seeds))
        if p.get("lr_sweep"):
            step = step_config(source["model"], bs, size=source.get("size"), channels=channels)
            out.append(Runs(nb, "lr_sweep", step, epoch_steps(pool, bs, epochs_at(pool)),
                            seeds * len(p["lr_sweep"])))  # fmt: skip
    return out


def _zoo_step(p: Mapping[str, Any], entry: Mapping[str, Any], bs: int, frozen: int = 0) -> Any:
    return step_config(entry["model"], bs, frozen=frozen, size=p.get("size"),
                       channels=entry.get("channels", 1), model_kwargs=entry.get("model_kwargs"))


def transferability(p: Mapping[str, Any]) -> list[Runs]:
    """Zoo models trained here (once each), fine-tuning of every zoo model on every target at
    each of ``finetune_ks``, and the choice grid's runs (a ``probe_steps`` probe and a full
    fine-tuning per learning rate; a full fine-tuning per number of transferred layers)."""
    nb, seeds = "transferability_ranking", len(p["seeds"])
    out: list[Runs] = []
    for e in p["zoo_models"]:
        if e.get("kind") == "trained":
            bs = int(p["source_train"]["batch_size"])
            n = classes(e["dataset"], e.get("options")) * per_class(e["dataset"], "train",
                                                                     e.get("per_class"))
            out.append(Runs(nb, "zoo", _zoo_step(p, e, bs), epoch_steps(n, bs, e["epochs"]), 1))
    ft = p["finetune"]
    bs, steps = int(ft["train"]["batch_size"]), int(ft["steps"])

    def n_of(target: Mapping[str, Any], k: int) -> int:
        have = per_class(target["dataset"], target.get("train_split", "train"), k)
        return have * classes(target["dataset"], target.get("options"))

    ks = [int(k) for k in p["ks"]]
    for e in p["zoo_models"]:
        for t in p["targets"]:
            for k in ks:
                if k in [int(x) for x in p["finetune_ks"]]:
                    out.append(Runs(nb, "ranking", _zoo_step(p, e, bs),
                                    budget_steps(n_of(t, k), bs, steps), seeds))  # fmt: skip
    choice = p.get("choice") or {}
    if choice.get("targets"):
        ref = next(e for e in p["zoo_models"] if e["name"] == choice["model"])
        for t in p["targets"]:
            if t["name"] not in choice["targets"]:
                continue
            n = n_of(t, int(choice["k"]))
            full = budget_steps(n, bs, steps)
            out.append(Runs(nb, "choice/layers", _zoo_step(p, ref, bs), full,
                            seeds * len(choice.get("layers", []))))  # fmt: skip
            lrs = len(choice.get("lrs", []))
            out.append(Runs(nb, "choice/lr", _zoo_step(p, ref, bs), full, seeds * lrs))
            out.append(Runs(nb, "choice/lr_probe", _zoo_step(p, ref, bs),
                            budget_steps(n, bs, int(choice["probe_steps"])), seeds * lrs))
    return [r for r in out if r.count > 0]


def quadrants(p: Mapping[str, Any]) -> list[Runs]:
    """Every arm of every quadrant and the advised recipe (Plested and Gedeon 2022, §7), and
    claim 7's routes: the two cached intermediate networks and three target runs per seed."""
    nb, source, seeds = "best_practice_quadrants", p["source"], len(p["seeds"])
    out = source_runs(nb, source, [source.get("epochs", 0)])
    bs = int(p["train"]["batch_size"])

    def n_of(t: Mapping[str, Any]) -> int:
        return classes(t["dataset"], t.get("options"), t.get("classes")) * per_class(
            t["dataset"], "train", t.get("per_class")
        )

    def step(recipe: Mapping[str, Any]) -> Any:
        reg = (recipe.get("regularizer") or {}).get("regularizer", "l2")
        return step_config(source["model"], bs, frozen=FROZEN_ALL if recipe.get("frozen") else 0,
                           method=method_key(reg), size=source.get("size"),
                           channels=source.get("channels", 1))  # fmt: skip

    for q, arms in p["design"].items():
        t = p["targets"][q]
        steps = epoch_steps(n_of(t), bs, int(t.get("epochs", p["train"]["epochs"])))
        for arm in [*arms, "advised"]:  # the advised recipe: charged as plain fine-tuning
            out.append(Runs(nb, "arms", step(p["arms"].get(arm, {})), steps, seeds))
    multi = p.get("multistep")
    if multi:
        inter, target = multi["intermediate"], multi["target"]
        out.append(Runs(nb, "multistep/intermediate", step({}),
                        epoch_steps(n_of(inter), bs, int(inter["epochs"])), 2))  # fmt: skip
        epochs = int(target.get("epochs", p["train"]["epochs"]))
        out.append(Runs(nb, "multistep", step({}), epoch_steps(n_of(target), bs, epochs),
                        3 * seeds))  # fmt: skip
    return out


WORKLOADS: dict[str, WorkloadFn] = {
    "yosinski_layer_transfer": yosinski,
    "kornblith_gains_vs_size": kornblith,
    "l2sp_vs_bss": l2sp,
    "transferability_ranking": transferability,
    "best_practice_quadrants": quadrants,
}


def training_runs(notebook: str, params: Mapping[str, Any]) -> list[Runs]:
    """Every training run a notebook's protocol asks for, grouped by configuration.

    Raises:
        ValueError: a notebook without a workload model (the message lists those with one)."""
    if notebook not in WORKLOADS:
        raise ValueError(f"no workload model for {notebook!r}; valid: {', '.join(WORKLOADS)}")
    return WORKLOADS[notebook](params)


__all__ = ["WORKLOADS", "training_runs", "yosinski", "kornblith", "l2sp", "transferability",
           "quadrants"]  # fmt: skip
