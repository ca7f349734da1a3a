"""Check a reproduction notebook's parameters before any run starts.

Each notebook has one schema here: the JSON Schema of its parameters (types, ranges, required
keys, checked with :mod:`jsonschema`) plus the checks a schema cannot state: names of datasets
(:func:`survey_lib.data.list_datasets`), splits, models (:func:`survey_lib.models.list_models`
or timm), regularizers and their hyperparameters
(:func:`survey_lib.regularizers.list_regularizers`), every ``train`` mapping
(``TrainConfig.from_dict``), finite numbers everywhere, and the subsets a
notebook's cells can handle (``methods`` must hold the baseline ``L2``; ``targets`` of the
L2-SP/BSS notebook are ``near`` and ``far``; Yosinski needs the ``random`` split; Kornblith needs
two targets and two sizes). Every problem is one line naming the key, the value and what is
valid; :func:`check_parameters` raises them all at once.

The driver (``python -m survey_lib.reproduce``) calls :func:`check_parameters` after applying
``--set`` overrides; every notebook calls it again in its first cell, so a notebook run by hand
is checked too.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema

NOTEBOOK_NAMES = ("yosinski_layer_transfer", "kornblith_gains_vs_size", "l2sp_vs_bss")


class ParameterError(ValueError):
    """One or more bad parameter values; ``problems`` holds one line per problem."""

    def __init__(self, notebook: str, problems: list[str]) -> None:
        self.notebook = notebook
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{notebook}: {len(problems)} bad parameter value(s):\n{lines}")


def _int(minimum: int = 0, what: str = "") -> dict:
    return {"type": "integer", "minimum": minimum, "description": what or f"an integer >= {minimum}"}


def _obj(properties: dict, required: list[str], what: str, extra: bool = True) -> dict:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": required,
        "description": what,
    }
    if not extra:
        schema["additionalProperties"] = False
    return schema


_SEEDS = {
    "type": "array",
    "minItems": 1,
    "uniqueItems": True,
    "items": _int(0, "a seed: an integer >= 0"),
    "description": "a non-empty list of distinct integer seeds, e.g. [0, 1, 2]",
}
_BATCH_RUNS = _int(1, "an integer >= 1: runs trained at once by fit_many (1: one after another)")
_WORKERS = {
    "anyOf": [{"type": "integer", "minimum": 1}, {"const": "auto"}],
    "description": "an integer >= 1 or 'auto'",
}
_INT_OR_ALL = {
    "anyOf": [{"type": "null"}, {"type": "integer", "minimum": 1}],
    "description": "examples per class >= 1, or null for every test example",
}
_SESOI = {
    "type": "object",
    "additionalProperties": {
        "anyOf": [
            {"type": "object", "required": ["published", "fraction", "source"]},
            {"type": "object", "required": ["fixed", "why"]},
        ]
    },
    "description": "a mapping claim -> {published, fraction, source} or {fixed, why} "
    "(survey_lib.experiments.verdicts.sesoi_from_spec)",
}
_FAILED_FRACTION = {
    "type": "number",
    "exclusiveMinimum": 0,
    "maximum": 1,
    "description": "a number in (0, 1]: the failed-run rule's fraction of (median - chance)",
}
_OPTIONS = {"type": "object", "description": "a mapping of dataset options (may be {})"}
# Metrics over a run's epochs (survey_lib.experiments.epoch_metrics; kept in sync by a test).
_EPOCH_METRIC_NAMES = ("test_acc_best_epoch", "test_acc_top10_mean")
_EPOCH_METRICS = {
    "type": "array",
    "uniqueItems": True,
    "items": {"enum": list(_EPOCH_METRIC_NAMES)},
    "description": "a list of distinct metrics over epochs from "
    + ", ".join(_EPOCH_METRIC_NAMES) + " (may be empty)",
}
_METRIC = {
    "enum": ["test_acc", *_EPOCH_METRIC_NAMES],
    "description": "the metric the verdicts use: test_acc (final epoch) or one of "
    "epoch_metrics",
}
_ITERATIONS = {
    "anyOf": [{"type": "null"}, {"type": "integer", "minimum": 1}],
    "description": "null, or a number of optimisation steps >= 1",
}
_TRAIN = {"type": "object", "description": "a mapping of TrainConfig fields (epochs, lr, ...)"}
_SOURCE = _obj(
    {
        "dataset": {"type": "string", "description": "a dataset name"},
        "options": _OPTIONS,
        "model": {"type": "string", "description": "a model name"},
        "size": _int(8, "an image size in pixels >= 8"),
        "channels": _int(1, "a channel count >= 1"),
        "epochs": _int(0, "source epochs >= 0 (0: use the given weights)"),
        "seed": _int(0),
        "per_class": _int(1, "examples per class >= 1"),
        "weights": {"type": "string", "description": "'pretrained' or a local weights file"},
        "train": _TRAIN,
    },
    ["dataset", "model", "size", "epochs", "seed", "train"],
    "a mapping with dataset, model, size, epochs, seed, train",
)
_RATE = {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "a rate in (0, 1]"}
_LR = {
    "type": "number",
    "exclusiveMinimum": 0,
    "description": "a learning rate > 0 (an lr of 0 trains nothing)",
}

_GRID = _obj(
    {
        "lr": {"type": "array", "minItems": 1, "items": _LR,
               "description": "a non-empty list of learning rates > 0"},
        "weight_decay": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "number", "minimum": 0, "description": "a weight decay >= 0"},
            "description": "a non-empty list of weight decays >= 0",
        },
        "divide_wd_by_lr": {"type": "boolean", "description": "true (SGD gets wd / lr) or false"},
        "steps": _int(1, "training steps of each search run >= 1"),
    },
    ["lr", "weight_decay"],
    "a mapping {lr: [...], weight_decay: [...], divide_wd_by_lr: bool, steps: n} "
    "(survey_lib.experiments.kornblith.grid_configs)",
    extra=False,
)
_METHOD_SPEC = _obj(
    {"steps": _int(1, "training steps >= 1"), "train": _TRAIN, "grid": _GRID},
    ["steps", "train"],
    "a mapping {steps: n, train: {...}, grid: {...} (optional)}",
)

SCHEMAS: dict[str, dict] = {
    "l2sp_vs_bss": _obj(
        {
            "source": _SOURCE,
            "targets": _obj(
                {
                    key: _obj(
                        {
                            "name": {"type": "string", "description": "a target name"},
                            "dataset": {"type": "string", "description": "a dataset name"},
                            "options": _OPTIONS,
                            "channels": _int(1, "a channel count >= 1"),
                            "pool_per_class": _int(1, "examples per class >= 1"),
                            "pool_seed": _int(0),
                            "pool_split": {"type": "string", "description": "a split name"},
                            "test_per_class": _INT_OR_ALL,
                        },
                        ["name", "dataset", "pool_per_class", "test_per_class"],
                        "a mapping with name, dataset, pool_per_class, test_per_class",
                    )
                    for key in ("near", "far")
                },
                ["near", "far"],
                "a mapping with exactly the keys near and far (the similar and the less "
                "similar target)",
                extra=False,
            ),
            "rates": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": _RATE,
                "description": "a non-empty list of distinct sampling rates in (0, 1]",
            },
            "methods": {
                "type": "object",
                "required": ["L2"],
                "additionalProperties": _obj(
                    {"regularizer": {"type": "string", "description": "a regularizer name"}},
                    ["regularizer"],
                    "a mapping {regularizer: name, <hyperparameter>: value, ...}",
                ),
                "description": "a mapping of method names to regularizer specs that includes "
                "L2 (the baseline of every gain and the lr sweep)",
            },
            "train": _TRAIN,
            "lr_sweep": {
                "type": "array",
                "uniqueItems": True,
                "items": _LR,
                "description": "a list of distinct learning rates > 0 (may be empty)",
            },
            "seeds": _SEEDS,
            "workers": _WORKERS,
            "batch_runs": _BATCH_RUNS,
            "sesoi": _SESOI,
            "failed_fraction": _FAILED_FRACTION,
            "iterations": {
                **_ITERATIONS,
                "description": "null (train.epochs), or the steps of every run at every rate "
                "(TLlib: 10000); then train has no epochs",
            },
            "eval_every_iterations": {
                **_ITERATIONS,
                "description": "null (every epoch), or the steps between test evaluations for "
                "epoch_metrics (TLlib: 500)",
            },
            "epoch_metrics": _EPOCH_METRICS,
            "metric": _METRIC,
        },
        ["source", "targets", "rates", "methods", "train", "lr_sweep", "seeds"],
        "the notebook's parameters",
    ),
    "kornblith_gains_vs_size": _obj(
        {
            "source": _SOURCE,
            "targets": {
                "type": "array",
                "minItems": 2,
                "items": _obj(
                    {
                        "name": {"type": "string", "description": "a target name"},
                        "dataset": {"type": "string", "description": "a dataset name"},
                        "options": _OPTIONS,
                        "channels": _int(1, "a channel count >= 1"),
                        "train_split": {"type": "string", "description": "a split name"},
                        "test_split": {"type": "string", "description": "a split name"},
                        "max_k": _int(1, "examples per class >= 1"),
                        "test_per_class": {
                            "anyOf": [{"type": "null"}, _int(1)],
                            "description": "null (all) or examples per class >= 1",
                        },
                        "rank": _int(1, "a similarity rank >= 1 (1 = closest)"),
                        "k_rule": {
                            "enum": ["exactly", "at_most"],
                            "description": "'exactly' (k per class) or 'at_most' (a smaller "
                            "class keeps all its images)",
                        },
                        "metric": {
                            "type": "string",
                            "description": "the metric compared with the published number "
                            "(survey_lib.experiments.kornblith.TARGET_METRICS)",
                        },
                    },
                    ["name", "dataset", "train_split", "test_split", "max_k", "rank"],
                    "a mapping with name, dataset, train_split, test_split, max_k, rank",
                ),
                "description": "a list of at least two targets (claim 2 correlates gain with "
                "rank)",
            },
            "ks": {
                "type": "array",
                "minItems": 2,
                "uniqueItems": True,
                "items": _int(1, "examples per class >= 1"),
                "description": "at least two distinct sizes k >= 1 (claim 1 fits a slope)",
            },
            "finetune": _METHOD_SPEC,
            "scratch": _METHOD_SPEC,
            "val_fraction": {
                "type": "number",
                "exclusiveMinimum": 0,
                "exclusiveMaximum": 1,
                "description": "a fraction in (0, 1)",
            },
            "source_quality_epochs": {
                "type": "array",
                "items": _int(1, "source epochs >= 1"),
                "description": "a list of source epoch counts >= 1 (may be empty)",
            },
            "quality_k": _int(1, "examples per class >= 1"),
            "seeds": _SEEDS,
            "workers": _WORKERS,            "sesoi": _SESOI,
            "failed_fraction": _FAILED_FRACTION,
        },
        ["source", "targets", "ks", "finetune", "scratch", "val_fraction", "seeds"],
        "the notebook's parameters",
    ),
    "yosinski_layer_transfer": _obj(
        {
            "dataset": {"type": "string", "description": "a dataset name"},
            "options": _OPTIONS,
            "model": {"type": "string", "description": "a model name"},
            "size": _int(8, "an image size in pixels >= 8"),
            "channels": _int(1, "a channel count >= 1"),
            "train_per_class": _int(1, "examples per class >= 1"),
            "test_per_class": _INT_OR_ALL,
            "n_values": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": _int(1, "a number of transferred units >= 1"),
                "description": "a non-empty list of distinct unit counts >= 1",
            },
            "splits": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "contains": {"const": "random"},
                "items": {"enum": ["random", "dissimilar"]},
                "description": "a list of distinct splits from random, dissimilar that "
                "includes random (claims 1-4 use it)",
            },
            "train": _TRAIN,
            "seeds": _SEEDS,
            "workers": _WORKERS,
            "batch_runs": _BATCH_RUNS,
            "sesoi": _SESOI,
            "failed_fraction": _FAILED_FRACTION,
            "frozen_dropout": {
                "type": "boolean",
                "description": "true or false: dropout stays active in frozen units (Yosinski "
                "et al.'s Caffe nets; needs alexnet_small)",
            },
            "both_directions": {
                "type": "array",
                "uniqueItems": True,
                "items": {"enum": ["random", "dissimilar"]},
                "description": "a list of distinct splits (of splits) also run from B to A",
            },
            "epoch_metrics": _EPOCH_METRICS,
            "metric": _METRIC,
            "many_class": {
                "anyOf": [
                    {"type": "null"},
                    _obj(
                        {
                            "dataset": {"type": "string"},
                            "options": _OPTIONS,
                            "train_per_class": _int(1),
                            "test_per_class": _INT_OR_ALL,
                            "model_kwargs": {"type": "object"},
                        },
                        ["dataset", "train_per_class", "test_per_class"],
                        "",
                    ),
                ],
                "description": "null, or a mapping with dataset, train_per_class, "
                "test_per_class (and options, model_kwargs)",
            },
        },
        ["dataset", "model", "size", "channels", "train_per_class", "test_per_class",
         "n_values", "splits", "train", "seeds"],
        "the notebook's parameters",
    ),
}


def _path(parts: Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(parameters)"


def _schema_problems(schema: dict, params: Mapping[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(dict(params)), key=lambda e: list(e.path)):
        valid = error.schema.get("description") if isinstance(error.schema, dict) else None
        if error.validator in ("required", "additionalProperties") and isinstance(
            error.instance, dict
        ):
            value = f"keys {sorted(error.instance)}"
        else:
            value = repr(error.instance)
        message = error.message if len(error.message) < 160 else error.message[:157] + "..."
        problems.append(
            f"{_path(error.absolute_path)} = {value}: {message}"
            + (f"; valid: {valid}" if valid else "")
        )
    return problems


def _non_finite(value: Any, where: str) -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{where} = {value!r}: not a finite number; valid: a finite number"]
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _non_finite(v, f"{where}.{k}")]
    if isinstance(value, (list, tuple)):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{where}[{i}]")]
    return []


def _dataset(name: Any, where: str, split_keys: Mapping[str, Any] | None = None) -> list[str]:
    from survey_lib.data import dataset_info, list_datasets

    valid = list_datasets()
    if not isinstance(name, str) or name not in valid:
        return [f"{where} = {name!r}: unknown dataset; valid: {', '.join(valid)}"]
    splits = dataset_info(name).splits
    return [
        f"{key} = {split!r}: unknown split of {name!r}; valid: {', '.join(splits)}"
        for key, split in (split_keys or {}).items()
        if split not in splits
    ]


def _model(name: Any, where: str) -> list[str]:
    from survey_lib.models import list_models

    if isinstance(name, str) and name in list_models():
        return []
    if isinstance(name, str):
        import timm

        if timm.is_model(name.partition(".")[0]):
            return []
    return [
        f"{where} = {name!r}: unknown model; valid: {', '.join(list_models())} or a timm "
        "architecture or weight tag (timm.list_models(), timm.list_pretrained())"
    ]


def _train(train: Any, where: str, epochs: Any = 1) -> list[str]:
    """``train`` checked by :class:`TrainConfig`; ``epochs`` fills in a missing ``epochs`` (the
    source's own count, or the count a notebook derives from ``steps``)."""
    from survey_lib.train import TrainConfig

    if not isinstance(train, Mapping):
        return []  # the schema reports it
    try:
        TrainConfig.from_dict({"device": "cpu", "epochs": epochs, **dict(train), "seed": 0})
    except (ValueError, TypeError) as exc:
        return [f"{where} = {dict(train)!r}: {exc}"]
    return []


#: hyperparameters a notebook fills in itself (never in a protocol file)
_FILLED_BY_NOTEBOOK = {"attention_data"}


def _regularizer(spec: Any, where: str) -> list[str]:
    from survey_lib.regularizers import list_regularizers
    from survey_lib.regularizers.registry import SEPARATOR, hyperparameters

    if not isinstance(spec, Mapping) or not isinstance(spec.get("regularizer"), str):
        return []  # the schema reports it
    name = spec["regularizer"]
    parts = [p.strip() for p in name.split("+")]
    valid = list_regularizers()
    bad = [p for p in parts if p not in valid]
    if bad:
        return [
            f"{where}.regularizer = {name!r}: unknown regularizer {', '.join(map(repr, bad))}; "
            f"valid: {', '.join(valid)} (combine with '+', e.g. 'l2_sp+bss')"
        ]
    if len(set(parts)) != len(parts):
        return [f"{where}.regularizer = {name!r}: names one method twice"]
    problems = []
    accepted = {
        (f"{p}{SEPARATOR}{k}" if len(parts) > 1 else k): default
        for p in parts
        for k, default in hyperparameters(p).items()
    }
    hparams = {k: v for k, v in spec.items() if k != "regularizer"}
    for key, value in hparams.items():
        if key not in accepted:
            problems.append(
                f"{where}.{key} = {value!r}: not a hyperparameter of {name!r}; valid: "
                f"{', '.join(sorted(k for k in accepted if k.split(SEPARATOR)[-1] not in _FILLED_BY_NOTEBOOK)) or '(none)'}"
            )
        elif isinstance(value, bool):
            continue
        elif isinstance(value, (int, float)) and value < 0:
            problems.append(f"{where}.{key} = {value!r}: must be >= 0")
        elif isinstance(value, str):
            problems.append(f"{where}.{key} = {value!r}: must be a number, not a string")
    for key, default in accepted.items():
        bare = key.split(SEPARATOR)[-1]
        if default is inspect.Parameter.empty and key not in hparams and bare not in _FILLED_BY_NOTEBOOK:
            problems.append(f"{where}.{key} is missing: {name!r} needs it")
    return problems


def _source(source: Any) -> list[str]:
    if not isinstance(source, Mapping):
        return []
    problems = _model(source.get("model"), "source.model")
    if source.get("epochs", 1) != 0:  # a trained source: its dataset must exist
        problems += _dataset(source.get("dataset"), "source.dataset")
    epochs = source.get("epochs")
    problems += _train(
        source.get("train"), "source.train", epochs if isinstance(epochs, int) and epochs else 1
    )
    return problems


def _check_l2sp(p: Mapping[str, Any]) -> list[str]:
    problems = _source(p.get("source")) + _train(p.get("train"), "train")
    targets = p.get("targets")
    if isinstance(targets, Mapping):
        for key, t in targets.items():
            if isinstance(t, Mapping):
                problems += _dataset(
                    t.get("dataset"),
                    f"targets.{key}.dataset",
                    {f"targets.{key}.pool_split": t["pool_split"]} if "pool_split" in t else None,
                )
        names = [t.get("name") for t in targets.values() if isinstance(t, Mapping)]
        if len(names) == 2 and names[0] == names[1]:
            problems.append(f"targets: both targets are named {names[0]!r}; valid: two names")
    methods = p.get("methods")
    if isinstance(methods, Mapping):
        for m, spec in methods.items():
            problems += _regularizer(spec, f"methods.{m}")
    train = p.get("train")
    if isinstance(train, Mapping):
        if p.get("iterations") and "epochs" in train:
            problems.append(
                f"train.epochs = {train['epochs']!r}: not read when iterations = "
                f"{p['iterations']!r} is set; valid: one of train.epochs or iterations"
            )
        elif not p.get("iterations") and "epochs" not in train:
            problems.append("train.epochs is missing: valid: train.epochs, or iterations")
    if p.get("eval_every_iterations") and not p.get("epoch_metrics"):
        problems.append(
            f"eval_every_iterations = {p['eval_every_iterations']!r}: read only with "
            "epoch_metrics; valid: null, or a non-empty epoch_metrics"
        )
    return problems + _metric_problems(p)


def _metric_problems(p: Mapping[str, Any]) -> list[str]:
    from survey_lib.experiments.epoch_metrics import metric_problems

    return metric_problems(p.get("metric", "test_acc"), p.get("epoch_metrics", []))


def _check_kornblith(p: Mapping[str, Any]) -> list[str]:
    problems = _source(p.get("source"))
    for key in ("finetune", "scratch"):
        spec = p.get(key)
        if isinstance(spec, Mapping):
            problems += _train(spec.get("train"), f"{key}.train")
    targets = p.get("targets")
    ks = [k for k in p.get("ks") or [] if isinstance(k, int)]
    if isinstance(targets, list):
        names = [t.get("name") for t in targets if isinstance(t, Mapping)]
        dupes = sorted({n for n in names if names.count(n) > 1}, key=str)
        if dupes:
            problems.append(f"targets: names {dupes} appear twice; valid: distinct names")
        for i, t in enumerate(targets):
            if not isinstance(t, Mapping):
                continue
            where = f"targets[{i}]"
            if "metric" in t:
                from survey_lib.experiments.kornblith import target_metric

                try:
                    target_metric(t)
                except ValueError as err:
                    problems.append(f"{where}.metric: {err}")
            problems += _dataset(
                t.get("dataset"),
                f"{where}.dataset",
                {f"{where}.{s}": t[s] for s in ("train_split", "test_split") if s in t},
            )
            if ks and isinstance(t.get("max_k"), int) and not any(k <= t["max_k"] for k in ks):
                problems.append(
                    f"{where}.max_k = {t['max_k']!r}: smaller than every k in ks {ks}; valid: "
                    "at least one k <= max_k"
                )
    return problems


def _check_yosinski(p: Mapping[str, Any]) -> list[str]:
    from survey_lib.experiments.yosinski import DISSIMILAR, FROZEN_DROPOUT_MODELS

    problems = _dataset(p.get("dataset"), "dataset") + _model(p.get("model"), "model")
    problems += _train(p.get("train"), "train")
    splits = p.get("splits") or []
    if isinstance(splits, list) and "dissimilar" in splits and p.get("dataset") not in DISSIMILAR:
        problems.append(
            f"splits = {splits!r}: no dissimilar split is defined for {p.get('dataset')!r}; "
            f"valid: ['random'], or a dataset from {sorted(DISSIMILAR)}"
        )
    many = p.get("many_class")
    if isinstance(many, Mapping):
        problems += _dataset(many.get("dataset"), "many_class.dataset")
    both = p.get("both_directions") or []
    if isinstance(both, list) and isinstance(splits, list):
        extra = [s for s in both if s not in splits]
        if extra:
            problems.append(f"both_directions = {both!r}: {extra} not in splits {splits!r}; "
                            "valid: a subset of splits")
    if p.get("frozen_dropout") is True and p.get("model") not in FROZEN_DROPOUT_MODELS:
        problems.append(
            f"frozen_dropout = True: model {p.get('model')!r} has no dropout outside its units; "
            f"valid: false, or model from {list(FROZEN_DROPOUT_MODELS)}"
        )
    return problems + _metric_problems(p)


_CHECKS: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {
    "l2sp_vs_bss": _check_l2sp,
    "kornblith_gains_vs_size": _check_kornblith,
    "yosinski_layer_transfer": _check_yosinski,
}


def parameter_problems(notebook: str, params: Mapping[str, Any]) -> list[str]:
    """Every problem with ``params`` (a notebook's parameters), one line each; ``[]`` if fine.

    Keys the schema does not know (e.g. ``scale``, ``results_dir``) are ignored here; the driver
    rejects names the notebook does not declare. A notebook without a schema in
    :data:`SCHEMAS` (a new experiment) has nothing checked: add its schema here."""
    if notebook not in SCHEMAS:
        return []
    known = SCHEMAS[notebook]["properties"]
    relevant = {k: v for k, v in params.items() if k in known}
    problems = [p for k, v in relevant.items() for p in _non_finite(v, k)]
    problems += _schema_problems(SCHEMAS[notebook], relevant)
    problems += _CHECKS[notebook](relevant)  # guarded: they skip what the schema reports
    return list(dict.fromkeys(problems))


def check_parameters(notebook: str, params: Mapping[str, Any]) -> None:
    """Raise :class:`ParameterError` listing every problem with ``params``; return if fine.

    ``params`` may be a notebook's ``globals()``: only the schema's keys are read."""
    problems = parameter_problems(notebook, params)
    if problems:
        raise ParameterError(notebook, problems)


__all__ = ["SCHEMAS", "ParameterError", "check_parameters", "parameter_problems"]
