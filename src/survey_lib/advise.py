"""Advice for your data: which quadrant of the survey's taxonomy it falls in, and its recipe.

Usage::

    python -m survey_lib.advise --dataset image_folder --option root=my_images \\
        [--source glyphs_latin_resnet_small | --source timm:resnet18.a1_in1k] \\
        [--check --seeds 0 1 2] [--json]

Plested and Gedeon, "Deep transfer learning for image classification: a survey", 2022,
https://arxiv.org/abs/2205.09904, organise their recommendations (section 7.2) by target size ×
similarity to the source. This module measures both for a target and a source model:

* **size**: the median number of training images per class; *small* below
  :data:`SMALL_MAX_PER_CLASS` (the survey gives no number; its small targets, e.g. Caltech-101
  with 30 and Flowers-102 with 10 training images per class, lie below it, its larger ones,
  CIFAR with 500-5 000, above);
* **similarity**: LogME (You et al., "LogME: Practical Assessment of Pre-trained Models for
  Transfer Learning", ICML 2021, https://arxiv.org/abs/2102.11005), the per-example log
  evidence of a Bayesian linear model on the source's frozen penultimate features, over a
  class-balanced sample of at most ``max_n`` images of the whole training split (see
  :func:`measure`). *Similar* when LogME is at least
  the threshold calibrated on the similarity ladder (``results/similarity_ladder/ladder.csv``):
  the midpoint between the lowest mean LogME of the ladder's similar rungs (rank ≤ 2: Latin in
  unseen typefaces, Greek, Cyrillic) and the highest of its less similar ones (rank ≥ 3:
  digits, Fashion-MNIST). That calibration holds for the ladder's source (a small ResNet
  trained on Latin glyphs); for other sources it is a rule of thumb and the report says so.

The advice is :data:`survey_lib.recipes.RECOMMENDED` for the quadrant: a ready
:class:`~survey_lib.train.TrainConfig` and regularizer spec, each setting with its survey passage
and, where ``notebooks/best_practice_quadrants.md`` tested it, the committed verdict.
``--check`` fine-tunes the advised recipe and the plain default (every layer at the default lr,
no transfer regularizer) for a few seeds and reports ``advised − default`` in accuracy points
with its 95 % t-interval.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from tqdm.auto import tqdm

from survey_lib.data.protocols import k_per_class
from survey_lib.experiments import common
from survey_lib.models.features import extract_features
from survey_lib.recipes import PLAIN_DEFAULT, RECOMMENDED, Recipe, fine_tune
from survey_lib.stats import t_interval
from survey_lib.transferability import logme

REPO_ROOT = Path(__file__).resolve().parents[2]
LADDER_CSV = REPO_ROOT / "results" / "similarity_ladder" / "ladder.csv"
NOTEBOOK = "best_practice_quadrants"
SMALL_MAX_PER_CLASS = 100
"""A target with a median below this many training images per class is *small*."""
SCORE = "logme"

_GLYPH_SOURCE = {"dataset": "glyphs", "options": {"scripts": ["latin"]}, "model": "resnet_small",
                 "size": 32, "seed": 0,
                 "train": {"lr": 0.05, "batch_size": 128, "weight_decay": 0.0005,
                           "schedule": "cosine", "augment": "crop"}}  # fmt: skip
SOURCES: dict[str, dict[str, Any]] = {
    "glyphs_latin_resnet_small": {**_GLYPH_SOURCE, "epochs": 15},
    "glyphs_latin_resnet_small_smoke": {
        **_GLYPH_SOURCE, "epochs": 2, "per_class": 60,
        "train": {**_GLYPH_SOURCE["train"], "augment": "none"},
    },
}
"""Registered offline source checkpoints (trained once on Latin glyphs and cached; the first is
the source of the cpu-scale reproductions). ``timm:<name>`` selects a timm model with its own
pretrained weights instead."""

DEFAULT_TRAIN = {"epochs": 6, "lr": 0.01, "batch_size": 64, "weight_decay": 0.0005,
                 "schedule": "cosine", "augment": "crop"}  # fmt: skip
"""The plain default fine-tuning the advice starts from and is checked against."""


def source_spec(source: str | Mapping[str, Any]) -> dict[str, Any]:
    """A source mapping (as in the notebooks) from a registered name, ``timm:<name>[@weights]``
    or a mapping given as is."""
    if isinstance(source, Mapping):
        return dict(source)
    if source in SOURCES:
        return dict(SOURCES[source])
    if Path(source).suffix in (".yaml", ".yml", ".json") and Path(source).is_file():
        loaded = yaml.safe_load(Path(source).read_text())
        if not isinstance(loaded, dict) or "model" not in loaded:
            raise ValueError(f"{source} must hold a source mapping with at least 'model'")
        return loaded
    if source.startswith("timm:"):
        name, _, weights = source[5:].partition("@")
        return {"model": name, "epochs": 0, "weights": weights or "pretrained", "channels": 3,
                "size": 224}
    raise ValueError(
        f"unknown source {source!r}; valid: {', '.join(SOURCES)}, timm:<model name>[@weights] "
        "or a .yaml/.json file holding a source mapping"
    )


@dataclass(frozen=True)
class Threshold:
    """The near/far cut on the transferability score and how it was calibrated."""

    score: str
    value: float
    near_min: float
    far_max: float
    rule: str


def ladder_threshold(path: str | Path = LADDER_CSV, score: str = SCORE) -> Threshold:
    """Calibrate the near/far threshold of ``score`` on the similarity ladder (module doc).

    Raises:
        FileNotFoundError: the ladder's table is missing.
        ValueError: the score is not in the table, or the ladder's similar and less similar
            rungs overlap on it (no threshold separates them).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no similarity ladder at {path}; it is committed with the repo")
    table = pd.read_csv(path)
    rows = table[table.measure == score]
    if rows.empty:
        raise ValueError(f"score {score!r} not in {path}; measures: {sorted(table.measure.unique())}")
    means = rows.groupby(["rung", "rank"]).value.mean().reset_index()
    near, far = means[means["rank"] <= 2], means[means["rank"] >= 3]
    near_min, far_max = float(near.value.min()), float(far.value.max())
    if near_min <= far_max:
        raise ValueError(f"{score} does not separate the ladder: near min {near_min} <= far max {far_max}")
    value = (near_min + far_max) / 2
    rule = (f"{score} >= {value:.3f}: midpoint between the lowest mean over seeds of the ladder's "
            f"similar rungs ({near.loc[near.value.idxmin(), 'rung']}, {near_min:.3f}) and the "
            f"highest of its less similar rungs ({far.loc[far.value.idxmax(), 'rung']}, "
            f"{far_max:.3f}); {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
    return Threshold(score, value, near_min, far_max, rule)


@dataclass(frozen=True)
class Measurement:
    """What was measured on the target."""

    dataset: str
    options: dict[str, Any]
    classes: int
    train_images: int
    images_per_class: float
    min_per_class: int
    score: str
    score_value: float
    score_n: int
    checksum: str


def measure(
    dataset: str,
    options: Mapping[str, Any],
    source: Mapping[str, Any],
    checkpoint_dir: str | Path,
    *,
    per_class: int | None = None,
    max_n: int = 2000,
    seed: int = 0,
) -> Measurement:
    """Size and LogME of the target's training split for ``source`` (module doc).

    ``per_class`` caps the training split (a seeded subset, as the notebook draws its small
    targets): the *size* is measured on that subset. The *similarity* is measured on a
    class-balanced sample of at most ``max_n`` images of the whole split, as on the ladder
    (599-2 000 images per rung): LogME's per-example evidence shrinks with fewer examples, so a
    score from a few dozen images would not be comparable with the calibrated threshold. For
    your own folder both are the same images unless ``per_class`` is given."""
    pool = common.load_split(dataset, "train", size=None, options=options)  # bad input first
    train = common.load_split(dataset, "train", per_class=per_class, seed=seed, size=None,
                              options=options)
    model, stats = common.source_model(source, checkpoint_dir)
    counts = torch.bincount(train.labels, minlength=train.num_classes)
    pool_counts = torch.bincount(pool.labels, minlength=pool.num_classes)
    sample = pool
    if len(pool) > max_n:
        k = max(1, min(max_n // pool.num_classes, int(pool_counts.min())))
        sample = pool.subset(k_per_class(pool.labels, k, seed, num_classes=pool.num_classes))
    sample = sample.resized(int(source["size"]), int(source.get("channels", 1)))
    feats, _ = extract_features(model, sample, mean=stats[0], std=stats[1],
                                device=common.default_device())
    value = logme(feats, sample.labels, num_classes=sample.num_classes)
    return Measurement(dataset, dict(options), train.num_classes, len(train),
                       float(statistics.median(counts.tolist())), int(counts.min()), SCORE,
                       float(value), len(sample), train.checksum)


def quadrant_of(m: Measurement, threshold: Threshold, small_max: int = SMALL_MAX_PER_CLASS) -> str:
    size = "small" if m.images_per_class < small_max else "large"
    similarity = "similar" if m.score_value >= threshold.value else "less similar"
    return f"{size}, {similarity}"


def committed_verdicts() -> dict[int, str]:
    """Claim number → verdict of the committed notebook results (empty when absent)."""
    from survey_lib.experiments.verdicts import read_verdicts
    from survey_lib.reproduce import committed_results_dir

    folder = committed_results_dir(NOTEBOOK)
    if folder is None or not (folder / "verdicts.csv").exists():
        return {}
    table = read_verdicts(folder / "verdicts.csv")
    out = {}
    for claim, verdict in zip(table.claim, table.verdict):
        head = str(claim).split(".", 1)[0]
        if head.isdigit():
            out[int(head)] = str(verdict)
    return out


@dataclass
class Advice:
    """The report: measurement, threshold, quadrant, recipe and its sources."""

    source: dict[str, Any]
    measurement: Measurement
    threshold: Threshold
    small_max_per_class: int
    quadrant: str
    recipe: dict[str, Any]
    train_config: dict[str, Any]
    regularizer: dict[str, Any] | None
    settings: list[dict[str, Any]]
    caveats: list[str] = field(default_factory=list)
    check: dict[str, Any] | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def advise(
    dataset: str,
    options: Mapping[str, Any] | None = None,
    source: str | Mapping[str, Any] = "glyphs_latin_resnet_small",
    *,
    checkpoint_dir: str | Path = REPO_ROOT / "results" / "advise" / "checkpoints",
    base_train: Mapping[str, Any] | None = None,
    per_class: int | None = None,
    small_max: int = SMALL_MAX_PER_CLASS,
    ladder: str | Path = LADDER_CSV,
    verdicts: Mapping[int, str] | None = None,
) -> Advice:
    """Measure the target, place it in a quadrant and return the survey's recipe for it."""
    spec = source_spec(source)
    threshold = ladder_threshold(ladder)
    m = measure(dataset, dict(options or {}), spec, checkpoint_dir, per_class=per_class)
    quadrant = quadrant_of(m, threshold, small_max)
    rec = RECOMMENDED[quadrant]
    base = dict(base_train or DEFAULT_TRAIN)
    model, stats = common.source_model(spec, checkpoint_dir)
    n_units = len(model.unit_names)
    config = rec.recipe.config(base, 0, stats, n_units).to_dict()
    verdicts = committed_verdicts() if verdicts is None else dict(verdicts)
    settings = [
        {**asdict(s), "verdict": (verdicts.get(s.claim, "not yet run") if s.claim else "not tested")}
        for s in rec.settings
    ]
    caveats = []
    if m.score_n < 500:
        caveats.append(f"{SCORE} was computed on {m.score_n} images, fewer than the ladder's "
                       "599-2000: it is biased low against the calibrated threshold")
    if not (spec.get("dataset") == "glyphs" and spec.get("model") == "resnet_small"):
        caveats.append("the near/far threshold was calibrated for the ladder's glyph source; "
                       "for this source it is a rule of thumb")
    if abs(m.score_value - threshold.value) < 0.1 * (threshold.near_min - threshold.far_max):
        caveats.append(f"{SCORE} lies within 10 % of the near/far gap of the threshold: the "
                       "similarity call is marginal")
    return Advice(spec, m, threshold, small_max, quadrant, rec.recipe.to_dict(), config,
                  None if rec.recipe.regularizer is None else dict(rec.recipe.regularizer),
                  settings, caveats)


def check(
    advice: Advice,
    seeds: Sequence[int],
    *,
    checkpoint_dir: str | Path,
    base_train: Mapping[str, Any] | None = None,
    per_class: int | None = None,
    test_per_class: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Fine-tune the advised recipe and the plain default for every seed; the paired
    ``advised − default`` test accuracy in points with its 95 % t-interval."""
    spec = advice.source
    m = advice.measurement
    pretrained, stats = common.source_model(spec, checkpoint_dir)
    base = dict(base_train or DEFAULT_TRAIN)
    size, channels = int(spec["size"]), int(spec.get("channels", 1))
    test = common.load_split(m.dataset, "test", per_class=test_per_class, seed=0, size=size,
                             channels=channels, options=m.options)
    recipes = {"advised": Recipe.from_dict(advice.recipe), "default": PLAIN_DEFAULT}
    acc: dict[str, dict[int, float]] = {k: {} for k in recipes}
    bar = tqdm(total=len(seeds) * 2, desc="advise --check", disable=not progress)
    for seed in seeds:
        train = common.load_split(m.dataset, "train", per_class=per_class, seed=int(seed),
                                  size=size, channels=channels, options=m.options)
        for name, recipe in recipes.items():
            model, config = fine_tune(pretrained, stats, train, base, recipe, int(seed))
            acc[name][int(seed)] = common.test_accuracy(model, test, config)
            bar.update(1)
    bar.close()
    diffs = [100 * (acc["advised"][s] - acc["default"][s]) for s in acc["advised"]]
    mean, low, high, n = t_interval(diffs)
    return {"seeds": list(map(int, seeds)), "advised": acc["advised"], "default": acc["default"],
            "difference_points": mean, "ci_low": low, "ci_high": high, "n": n,
            "advice_won": bool(n > 1 and low > 0), "advice_lost": bool(n > 1 and high < 0)}


def report(advice: Advice) -> str:
    """The advice as a short text report."""
    m, t = advice.measurement, advice.threshold
    lines = [
        f"target: {m.dataset} {m.options or ''}  (checksum {m.checksum})",
        f"source: {advice.source.get('model')} "
        f"({advice.source.get('dataset', advice.source.get('weights'))})",
        f"size: {m.classes} classes, {m.train_images} training images, median "
        f"{m.images_per_class:g} per class -> "
        f"{'small' if m.images_per_class < advice.small_max_per_class else 'large'} "
        f"(small: < {advice.small_max_per_class} per class)",
        f"similarity: {m.score} = {m.score_value:.3f} on {m.score_n} images -> "
        f"{'similar' if m.score_value >= t.value else 'less similar'} ({t.rule})",
        f"quadrant: {advice.quadrant}",
        "",
        "recommended (survey section 7.2):",
    ]
    for s in advice.settings:
        lines.append(f"  {s['what']}: {s['value']}")
        lines.append(f"      survey {s['section']}: \"{s['passage']}\"")
        lines.append(f"      tested: {('claim ' + str(s['claim']) + ' -> ') if s['claim'] else ''}{s['verdict']}")
    lines += ["", "TrainConfig: " + json.dumps(
        {k: advice.train_config[k] for k in ("epochs", "lr", "momentum", "schedule",
                                             "step_milestones", "gamma", "weight_decay",
                                             "frozen_units", "lr_multipliers")}),
              f"regularizer: {json.dumps(advice.regularizer)}",
              f"recipe: {json.dumps(advice.recipe)}"]
    lines += [f"caveat: {c}" for c in advice.caveats]
    if advice.check:
        c = advice.check
        verdict = "advice won" if c["advice_won"] else ("advice lost" if c["advice_lost"] else "undecided")
        half = (c["ci_high"] - c["ci_low"]) / 2 if c["n"] > 1 else math.nan
        lines += ["", f"check over seeds {c['seeds']}: advised − default = "
                  f"{c['difference_points']:+.2f} ± {half:.2f} points "
                  f"(95 % t-interval [{c['ci_low']:+.2f}, {c['ci_high']:+.2f}], n={c['n']}): {verdict}"]
    return "\n".join(lines)


def _parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--option expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m survey_lib.advise", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, help="registered data set name, e.g. image_folder")
    parser.add_argument("--option", action="append", default=[], help="loader option KEY=VALUE (YAML value)")
    parser.add_argument("--source", default="glyphs_latin_resnet_small",
                        help=f"one of {', '.join(SOURCES)}, timm:<model>[@weights], or a YAML source mapping")
    parser.add_argument("--per-class", type=int, default=None, help="cap the training split per class")
    parser.add_argument("--test-per-class", type=int, default=None, help="cap the test split per class")
    parser.add_argument("--checkpoint-dir", default=str(REPO_ROOT / "results" / "advise" / "checkpoints"))
    parser.add_argument("--train", default=None, help="base train mapping as YAML (default: DEFAULT_TRAIN)")
    parser.add_argument("--check", action="store_true", help="train advised vs plain default")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    try:
        options = _parse_options(args.option)
        base = {**DEFAULT_TRAIN, **(yaml.safe_load(args.train) if args.train else {})}
        advice = advise(args.dataset, options, args.source, checkpoint_dir=args.checkpoint_dir,
                        base_train=base, per_class=args.per_class)
        if args.check:
            advice.check = check(advice, args.seeds, checkpoint_dir=args.checkpoint_dir, base_train=base,
                                 per_class=args.per_class, test_per_class=args.test_per_class)
    except (ValueError, FileNotFoundError) as exc:
        print(f"advise: {exc}", file=sys.stderr)
        return 2
    print(advice.to_json() if args.json else report(advice))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
