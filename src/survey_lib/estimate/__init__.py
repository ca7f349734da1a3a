r"""Expected GPU time of each notebook at a scale (offline profile) or preset (paper profile),
from its protocol's step counts and step times, without training
(``python -m survey_lib.reproduce --scale gpu --estimate``; ``--profile paper --estimate``
without ``--scale`` prints every paper preset).

.. math::

    T_\text{notebook} \approx \frac{1}{s_w} \sum_{r \in M} n_r \, t_{c(r)}
        + \sum_{r \notin M} n_r \, \hat t_{c(r)}

:math:`n_r` is run :math:`r`'s optimizer steps (:mod:`survey_lib.estimate.notebooks`, from
the resolved ``notebooks/params/<notebook>/<stem>.yaml``); :math:`t_c` the measured warm step
time of its configuration :math:`c` (model, batch size, frozen units, regularizer, image size)
for the runs :math:`M` whose configuration was measured (or one close to it, marked ``~``);
:math:`s_w` the measured throughput gain of :math:`w` workers per device; :math:`\hat t_c`
the stated prior of :mod:`survey_lib.estimate.prior` for every other run (one worker).
Feature extraction, the linear probes, evaluation, DELTA's channel attention and start-up are
left out, so this is a lower bound on what is not training.

Measured step times come from ``results/gpu-check/step_times.json``, which
``scripts/gpu_check.sh`` writes on a GPU (its ``source`` field says which machine). No GPU has
run it yet: until then every number is the prior's, fitted to no measurement, and the output
says so beside each number.

Re-exported from :mod:`survey_lib.estimate.runs` and :mod:`survey_lib.estimate.notebooks`:
``Runs``, ``config_key``, ``OFFLINE_PER_CLASS``, ``OFFLINE_CLASSES``, ``WORKLOADS`` and
``training_runs``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from survey_lib.estimate import prior as stated_prior
from survey_lib.estimate.notebooks import WORKLOADS, training_runs  # training_runs: re-exported
from survey_lib.estimate.prior import PRIOR_SOURCE
from survey_lib.estimate.runs import OFFLINE_CLASSES as OFFLINE_CLASSES
from survey_lib.estimate.runs import OFFLINE_PER_CLASS as OFFLINE_PER_CLASS
from survey_lib.estimate.runs import Runs as Runs
from survey_lib.estimate.runs import config_key as config_key

REPO_ROOT = Path(__file__).resolve().parents[3]
MEASUREMENTS = REPO_ROOT / "results" / "gpu-check" / "step_times.json"
#: Basis of a notebook's number: every run measured, every run from the prior, or both.
BASES = ("measured", "prior", "measured + prior")


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
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    return {
        "source": f"nothing measured: {shown} is missing (no GPU has run scripts/gpu_check.sh)",
        "step_seconds": {},
        "workers_speedup": {"1": 1.0},
    }


def _parts(key: str) -> tuple[str, str, int, str, str | None]:
    model, batch, frozen, method, *size = key.split("/")
    count = frozen.removeprefix("frozen")
    return model, batch, 10**6 if count == "all" else int(count), method, (size or [None])[0]


def _nearest(key: str, table: Mapping[str, float]) -> tuple[float | None, str]:
    """The step time of ``key``, else of the same model and batch (and image size, where both
    keys give one) with the same method and the closest frozen count, else with any method
    (marked ``~`` with the key used); ``(None, "unmeasured")`` when no such key exists."""
    if key in table:
        return float(table[key]), ""
    model, batch, frozen, method, size = _parts(key)
    close = []
    for k in table:
        km, kb, kf, kmethod, ksize = _parts(k)
        if (km, kb) != (model, batch) or (size and ksize and size != ksize):
            continue
        close.append((kmethod != method, abs(kf - frozen), k))
    if not close:
        return None, "unmeasured"
    *_, best = min(close)
    return float(table[best]), f"~{best}"


def estimate(
    notebooks: list[str],
    params: Mapping[str, Mapping[str, Any]],
    measurements: Mapping[str, Any],
    workers: int | None = None,
    *,
    prior: Callable[[Any], float] | None | str = "stated",
) -> dict[str, Any]:
    """Seconds per notebook: measured step times where a configuration was measured, the
    ``prior`` elsewhere (``"stated"``: :func:`survey_lib.estimate.prior.prior_step_seconds`);
    with ``prior=None`` a notebook with an unmeasured configuration gets ``None``.

    Each notebook's row: ``steps``, ``seconds``, ``prior_seconds`` (the part from the prior),
    ``basis`` (one of :data:`BASES`), ``unmeasured`` (configuration -> steps),
    ``approximated`` (configurations timed by a close measured one)."""
    if prior == "stated":
        prior = stated_prior.prior_step_seconds
    speed = {int(k): float(v) for k, v in measurements.get("workers_speedup", {"1": 1.0}).items()}
    w = workers or max(speed, key=lambda k: speed[k])
    gain = speed.get(w, 1.0)
    out: dict[str, Any] = {"source": measurements.get("source"), "workers": w, "notebooks": {},
                           "prior_source": PRIOR_SOURCE if prior is not None else None}
    table = measurements.get("step_seconds", {})
    for name in notebooks:
        if name not in WORKLOADS:  # a notebook whose training runs this module cannot count
            out["notebooks"][name] = {"steps": None, "seconds": None, "prior_seconds": None,
                                      "basis": None, "unmeasured": {}, "approximated": [],
                                      "note": "no workload model for this notebook in "
                                      "survey_lib.estimate"}  # fmt: skip
            continue
        measured, from_prior, steps = 0.0, 0.0, 0
        missing: Counter[str] = Counter()
        approx: Counter[str] = Counter()
        for runs in training_runs(name, params[name]):
            n = runs.steps * runs.count
            steps += n
            t, note = _nearest(runs.config, table)
            if t is None:
                missing[runs.config] += n
                if prior is not None:
                    from_prior += n * prior(runs.step)
                continue
            if note:
                approx[f"{runs.config}{note}"] += 1
            measured += n * t
        seconds = None if (missing and prior is None) else measured / gain + from_prior
        basis = "prior" if missing and not measured else "measured + prior" if missing else "measured"
        out["notebooks"][name] = {"steps": steps, "seconds": seconds,
                                  "prior_seconds": from_prior if missing else 0.0,
                                  "basis": basis, "unmeasured": dict(missing),
                                  "approximated": sorted(approx)}  # fmt: skip
    return out


def _time(seconds: float) -> str:
    return f"{seconds / 3600:9.2f} GPU h" if seconds >= 3600 else f"{seconds / 60:9.1f} min  "


def format_estimate(result: Mapping[str, Any], scale: str, *, profile: str = "offline") -> str:
    """The estimate as text: one line per notebook (steps, time, basis) and the total."""
    where = f"scale={scale}" if profile == "offline" else f"profile={profile} preset={scale}"
    lines = [f"estimated GPU time at {where} (training steps only; {result['workers']} "
             f"worker(s) per device for measured configurations)",
             f"step times from: {result['source']}"]  # fmt: skip
    total: float | None = 0.0
    prior_used = False
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
            shown = f"{_time(row['seconds'])}  ({row['basis']})"
            prior_used = prior_used or row["basis"] != "measured"
        lines.append(f"  {name:<28} {row['steps']:>12,} steps  {shown}")
        lines.extend(f"      unmeasured: {k}" for k in sorted(row["unmeasured"]))
    lines.append(f"  {'total':<28} {'':>18}  " + ("unknown" if total is None else _time(total)))
    if prior_used:
        lines.append(f"  unmeasured configurations: {result['prior_source']}")
    if total is None or prior_used:
        lines.append("  to measure them: run `bash scripts/gpu_check.sh` on the GPU machine and "
                     "commit results/gpu-check/step_times.json")  # fmt: skip
    return "\n".join(lines)


def preset_table(
    notebooks: list[str],
    presets: list[str],
    load: Callable[[str, str], Mapping[str, Any] | None],
    measurements: Mapping[str, Any],
    prior: Callable[[Any], float] | None | str = "stated",
) -> list[dict[str, Any]]:
    """GPU hours per notebook and preset: one row per (notebook, preset) whose protocol
    ``load(notebook, preset)`` returns (``None``: the preset does not exist for it), with
    ``steps``, ``hours`` and ``basis`` (``prior`` as in :func:`estimate`)."""
    out = []
    for preset in presets:
        params = {n: p for n in notebooks if (p := load(n, preset)) is not None}
        result = estimate(list(params), params, measurements, prior=prior)
        for name, row in result["notebooks"].items():
            hours = None if row["seconds"] is None else row["seconds"] / 3600
            out.append({"notebook": name, "preset": preset, "steps": row["steps"],
                        "hours": hours, "basis": row["basis"]})  # fmt: skip
    return out


def _hours(hours: float) -> str:
    return "< 0.1" if hours < 0.05 else f"{hours:,.1f}"


def format_presets(rows: list[dict[str, Any]], measurements: Mapping[str, Any],
                   profile: str = "paper") -> str:  # fmt: skip
    """The preset table as Markdown (notebook | one column per preset), with the basis."""
    presets = list(dict.fromkeys(r["preset"] for r in rows))
    names = list(dict.fromkeys(r["notebook"] for r in rows))
    cell = {(r["notebook"], r["preset"]): r for r in rows}
    head = [f"{profile}-{p}" for p in presets]
    lines = [f"estimated GPU hours per notebook and preset (profile {profile}; training steps "
             "only; estimates, not measurements)", "",
             "| notebook | " + " | ".join(head) + " |", "|---|" + "---|" * len(head)]  # fmt: skip
    bases = set()
    for name in [*names, "total"]:
        shown = []
        for p in presets:
            if name == "total":
                hs = [cell[(n, p)]["hours"] for n in names if (n, p) in cell]
                shown.append("—" if None in hs or not hs else _hours(sum(hs)))
                continue
            r = cell.get((name, p))
            if r is None:
                shown.append("—")
            else:
                bases.add(r["basis"])
                shown.append("unknown" if r["hours"] is None else _hours(r["hours"]))
        lines.append(f"| {name} | " + " | ".join(shown) + " |")
    lines += ["", "— : the preset does not exist for this notebook.",
              f"step times from: {measurements.get('source')}"]  # fmt: skip
    if bases - {"measured"}:
        lines.append(f"unmeasured configurations: {PRIOR_SOURCE}")
    return "\n".join(lines)


__all__ = ["MEASUREMENTS", "BASES", "load_measurements", "estimate", "format_estimate",
           "preset_table", "format_presets"]
