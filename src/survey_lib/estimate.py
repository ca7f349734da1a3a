"""Expected wall time of each notebook at a scale, from its protocol's step counts and measured
step times, without training (``python -m survey_lib.reproduce --scale gpu --estimate``).

.. math::

    T_\\text{notebook} \\approx \\frac{1}{s_w} \\sum_{\\text{training runs } r} n_r \\, t_{c(r)}

:math:`n_r` is run :math:`r`'s optimizer steps (epochs × batches per epoch, or the protocol's
step budget, from the committed ``notebooks/params/<notebook>/<scale>.yaml``); :math:`t_c` the
warm step time of its configuration :math:`c` (model, batch size, frozen units, regularizer);
:math:`s_w` the throughput gain of running :math:`w` workers per device (images/s of all
workers together over one worker's). Feature extraction, the linear probe, evaluation,
DELTA's channel attention and start-up are left out, so this is a lower bound on what is not
training.

Step times come from a committed measurement file, ``results/gpu-check/step_times.json``,
which ``scripts/gpu_check.sh`` writes on a GPU (its ``source`` field says which machine). No
GPU has run it yet: until then the estimate says so, prints each notebook's step counts and
no time (step times measured on a CPU say nothing about a GPU's, so none are substituted).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
MEASUREMENTS = REPO_ROOT / "results" / "gpu-check" / "step_times.json"

#: Training examples per class of the offline datasets (their loaders' default sizes): glyphs
#: Latin train 11,780 / 47 classes, glyphs test fonts 3,162 / 47; Greek + Cyrillic (47 classes)
#: is rendered from fewer fonts, bounded here by the Latin count; Fashion-MNIST 6,000; digits
#: 1,198 / 10 (rounded down).
PER_CLASS = {
    ("glyphs", "train"): 250,
    ("glyphs", "test"): 67,
    ("fashion_mnist", "train"): 6000,
    ("fashion_mnist", "test"): 1000,
    ("digits", "train"): 119,
    ("digits", "test"): 59,
}
CLASSES = {"glyphs": {"latin": 47, "greek": 30, "cyrillic": 17}, "fashion_mnist": 10, "digits": 10}


@dataclass(frozen=True)
class Runs:
    """``count`` training runs of ``steps`` steps each in configuration ``config``."""

    notebook: str
    grid: str
    config: str
    steps: int
    count: int


def _classes(dataset: str, options: Mapping[str, Any] | None) -> int:
    table = CLASSES[dataset]
    if isinstance(table, int):
        return table
    scripts = (options or {}).get("scripts", ["latin"])
    return sum(table[s] for s in scripts)


def _per_class(dataset: str, split: str, cap: int | None) -> int:
    have = PER_CLASS[(dataset, split)]
    return have if cap is None else min(int(cap), have)


def config_key(model: str, batch_size: int, *, frozen: int = 0, method: str = "l2") -> str:
    """Name of one step-time configuration, e.g. ``alexnet_small/b256/frozen4/l2``."""
    return f"{model}/b{int(batch_size)}/frozen{int(frozen)}/{method}"


def _epoch_steps(n: int, batch_size: int, epochs: int) -> int:
    return int(epochs) * max(1, math.ceil(n / int(batch_size)))


def _yosinski(p: Mapping[str, Any]) -> list[Runs]:
    seeds, bs = len(p["seeds"]), int(p["train"]["batch_size"])
    out: list[Runs] = []
    blocks = [("", p["dataset"], p.get("options"), p["train_per_class"], p["splits"])]
    if p.get("many_class"):
        mc = p["many_class"]
        blocks.append(
            ("glyphs_", mc["dataset"], mc.get("options"), mc["train_per_class"], ["random"])
        )
    for prefix, dataset, options, cap, splits in blocks:
        half = _classes(dataset, options) // 2
        n = half * _per_class(dataset, "train", cap)
        steps = _epoch_steps(n, bs, p["train"]["epochs"])
        model = p["model"]
        out.append(Runs("yosinski_layer_transfer", prefix + "base", config_key(model, bs), steps,
                        len(splits) * 2 * seeds))  # fmt: skip
        for n_units in p["n_values"]:
            for frozen in (int(n_units), 0):  # frozen transfer, fine-tuned transfer
                out.append(Runs("yosinski_layer_transfer", prefix + "transfer",
                                config_key(model, bs, frozen=frozen), steps,
                                len(splits) * 2 * seeds))  # fmt: skip
            if not prefix:
                out.append(
                    Runs(
                        "yosinski_layer_transfer",
                        "transfer",
                        config_key(model, bs, frozen=int(n_units)),
                        steps,
                        seeds,
                    )
                )
    return out


def _source_runs(notebook: str, source: Mapping[str, Any], epochs: list[int]) -> list[Runs]:
    if int(source["epochs"]) == 0:
        return []
    cap = source.get("per_class")
    n = _classes(source["dataset"], source.get("options")) * _per_class(
        source["dataset"], "train", cap
    )
    bs = int(source["train"]["batch_size"])
    return [
        Runs(notebook, "source", config_key(source["model"], bs), _epoch_steps(n, bs, ep), 1)
        for ep in sorted(set(epochs))
    ]


def _kornblith(p: Mapping[str, Any]) -> list[Runs]:
    source, seeds = p["source"], len(p["seeds"])
    out = _source_runs(
        "kornblith_gains_vs_size", source, [source["epochs"], *p.get("source_quality_epochs", [])]
    )
    model = source["model"]
    for target in p["targets"]:
        for k in p["ks"]:
            if k > target["max_k"]:
                continue
            n = k * _classes(target["dataset"], target.get("options"))
            for method in ("finetune", "scratch"):
                spec = p[method]
                bs = int(spec["train"]["batch_size"])
                epochs = max(1, math.ceil(int(spec["steps"]) * bs / max(n, 1)))
                out.append(
                    Runs(
                        "kornblith_gains_vs_size",
                        f"gains/{method}",
                        config_key(model, bs),
                        _epoch_steps(n, bs, epochs),
                        seeds,
                    )
                )
    return out


def _method_key(regularizer: str) -> str:
    parts = regularizer.split("+")
    for name in ("delta", "bss", "l2_sp"):
        if any(part.startswith(name) for part in parts):
            return name
    return "l2"


def _l2sp(p: Mapping[str, Any]) -> list[Runs]:
    source, seeds = p["source"], len(p["seeds"])
    out = _source_runs("l2sp_vs_bss", source, [source["epochs"]])
    bs, epochs, model = int(p["train"]["batch_size"]), int(p["train"]["epochs"]), source["model"]
    for target in p["targets"].values():
        pool = _classes(target["dataset"], target.get("options")) * _per_class(
            target["dataset"], "train", target["pool_per_class"]
        )
        for rate in p["rates"]:
            n = max(1, round(pool * float(rate)))
            for spec in p["methods"].values():
                out.append(Runs("l2sp_vs_bss", "regularizers",
                                config_key(model, bs, method=_method_key(spec["regularizer"])),
                                _epoch_steps(n, bs, epochs), seeds))  # fmt: skip
        out.append(Runs("l2sp_vs_bss", "lr_sweep", config_key(model, bs),
                        _epoch_steps(pool, bs, epochs), seeds * len(p["lr_sweep"])))  # fmt: skip
    return out


WORKLOADS = {
    "yosinski_layer_transfer": _yosinski,
    "kornblith_gains_vs_size": _kornblith,
    "l2sp_vs_bss": _l2sp,
}


def training_runs(notebook: str, params: Mapping[str, Any]) -> list[Runs]:
    """Every training run a notebook's protocol asks for, grouped by configuration."""
    if notebook not in WORKLOADS:
        raise ValueError(f"no workload model for {notebook!r}; valid: {', '.join(WORKLOADS)}")
    return WORKLOADS[notebook](params)


def load_measurements(path: Path | None = None) -> dict[str, Any]:
    """The committed step times (``scripts/gpu_check.sh``'s ``step_times.json``): keys
    ``source`` (where they were measured), ``device``, ``step_seconds`` (config -> seconds),
    ``workers_speedup`` (workers per device -> throughput gain). Without the file: an empty
    table whose ``source`` says that nothing was measured."""
    path = MEASUREMENTS if path is None else Path(path)
    if path.is_file():
        data = json.loads(path.read_text())
        if not isinstance(data.get("step_seconds"), dict):
            raise ValueError(f"{path} has no 'step_seconds' mapping of configuration -> seconds")
        data.setdefault("source", str(path))
        return data
    return {
        "source": f"nothing measured: {path} is missing (no GPU has run scripts/gpu_check.sh)",
        "step_seconds": {},
        "workers_speedup": {"1": 1.0},
    }


def _nearest(key: str, table: Mapping[str, float]) -> tuple[float | None, str]:
    """The step time of ``key``, else of the same model and batch with the closest frozen
    count and the same method, else the same model and batch with ``l2`` (marked ``~``)."""
    if key in table:
        return float(table[key]), ""
    model, batch, frozen, method = key.split("/")
    frozen_n = int(frozen.removeprefix("frozen"))
    same = [
        (abs(int(k.split("/")[2].removeprefix("frozen")) - frozen_n), k)
        for k in table
        if k.split("/")[:2] == [model, batch]
        and k.split("/")[3] in (method, "l2")
        and (k.split("/")[3] == method or method == "l2")
    ]
    if not same:
        same = [(0, k) for k in table if k.split("/")[:2] == [model, batch]]
    if not same:
        return None, "unmeasured"
    _, best = min(same)
    return float(table[best]), f"~{best}"


def estimate(
    notebooks: list[str],
    params: Mapping[str, Mapping[str, Any]],
    measurements: Mapping[str, Any],
    workers: int | None = None,
) -> dict[str, Any]:
    """Seconds per notebook (``None`` when a configuration was never measured)."""
    speed = {int(k): float(v) for k, v in measurements.get("workers_speedup", {"1": 1.0}).items()}
    w = workers or max(speed, key=lambda k: speed[k])
    gain = speed.get(w, 1.0)
    out: dict[str, Any] = {"source": measurements.get("source"), "workers": w, "notebooks": {}}
    table = measurements.get("step_seconds", {})
    for name in notebooks:
        if name not in WORKLOADS:  # a notebook whose training runs this module cannot count yet
            out["notebooks"][name] = {
                "steps": None,
                "seconds": None,
                "unmeasured": {},
                "approximated": [],
                "note": "no workload model for this notebook in survey_lib.estimate",
            }
            continue
        total, missing, approx = 0.0, Counter(), Counter()
        steps = 0
        for runs in training_runs(name, params[name]):
            t, note = _nearest(runs.config, table)
            steps += runs.steps * runs.count
            if t is None:
                missing[runs.config] += runs.steps * runs.count
                continue
            if note:
                approx[f"{runs.config}{note}"] += 1
            total += runs.steps * runs.count * t
        out["notebooks"][name] = {
            "steps": steps,
            "seconds": None if missing else total / gain,
            "unmeasured": dict(missing),
            "approximated": sorted(approx),
        }
    return out


def format_estimate(result: Mapping[str, Any], scale: str) -> str:
    lines = [
        f"estimated wall time at scale={scale} (training steps only; {result['workers']} "
        f"worker(s) per device)",
        f"step times from: {result['source']}",
    ]
    total: float | None = 0.0
    for name, row in result["notebooks"].items():
        if row["steps"] is None:
            total = None
            lines.append(f"  {name:<28} {'':>16}  unknown: {row['note']}")
            continue
        if row["seconds"] is None:
            total = None
            shown = f"unknown: {len(row['unmeasured'])} configuration(s) never measured"
        else:
            total = None if total is None else total + row["seconds"]
            shown = f"{row['seconds'] / 60:8.1f} min"
        lines.append(f"  {name:<28} {row['steps']:>10,} steps  {shown}")
        lines.extend(f"      unmeasured: {k}" for k in sorted(row["unmeasured"]))
    lines.append(
        f"  {'total':<28} {'':>16}  " + ("unknown" if total is None else f"{total / 60:8.1f} min")
    )
    if total is None:
        lines.append(
            "  no estimate: run `bash scripts/gpu_check.sh` on the GPU machine and commit "
            "results/gpu-check/step_times.json"
        )
    return "\n".join(lines)
