"""Small helpers that keep the book's chapters thin.

Chapters read data files (``book/data/*.csv``: numbers taken from the survey and the papers it
cites, each row with a ``source``), published results (``results/published/*.csv``) and our own
results (``results/<experiment>/``), show them as tables and figures, and glue numbers into the
prose with :func:`glue_number`. Nothing here trains a model.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from survey_lib.experiments.verdicts import OUTCOMES, has_estimate, normalise_verdicts
from survey_lib.provenance import code_version, is_presentation_module
from survey_lib.stats import t_errorbar


def _find_root() -> Path:
    """The book root: the nearest folder above the working directory holding ``_toc.yml``
    (chapters execute in ``book/``), else the repository this file belongs to."""
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "_toc.yml").is_file() and (folder / "book").is_dir():
            return folder
    return Path(__file__).resolve().parents[2]


REPO_ROOT = _find_root()
"""The repository root (the book root)."""


SCALES_BY_PREFERENCE = ("gpu", "cpu")
"""Committed result scales, best first: the book shows ``gpu`` results where they exist."""


def results_dir() -> Path:
    """The folder of the committed results the book shows.

    ``$RESULTS_DIR`` if set; else ``<repo>/results/gpu`` when it holds at least one executed
    notebook (``*/executed.ipynb``); else ``<repo>/results/cpu``.
    """
    env = os.environ.get("RESULTS_DIR")
    if env:
        return Path(env).resolve()
    root = REPO_ROOT / "results"
    for scale in SCALES_BY_PREFERENCE:
        if any((root / scale).glob("*/executed.ipynb")):
            return root / scale
    return root / SCALES_BY_PREFERENCE[-1]


def experiment_dir(name: str) -> Path:
    """The folder holding experiment ``name``'s committed results.

    With ``$RESULTS_DIR`` set: ``$RESULTS_DIR/<name>``. Otherwise the first of
    ``results/gpu/<name>`` and ``results/cpu/<name>`` that holds ``executed.ipynb`` (as
    :func:`survey_lib.reproduce.committed_results_dir`). Results that have no scale
    (``results/similarity_ladder``) are found at ``results/<name>`` in both cases. Else
    ``results_dir() / name``, which may not exist: callers then show :func:`missing_results`.
    """
    root = REPO_ROOT / "results"
    unscaled = root / name
    if os.environ.get("RESULTS_DIR"):
        chosen = results_dir() / name
    else:
        chosen = next(
            (
                root / scale / name
                for scale in SCALES_BY_PREFERENCE
                if (root / scale / name / "executed.ipynb").is_file()
            ),
            results_dir() / name,
        )
    if not chosen.is_dir() and unscaled.is_dir() and not (unscaled / "executed.ipynb").exists():
        if name not in (*SCALES_BY_PREFERENCE, "smoke", "published"):
            return unscaled
    return chosen


def read_driver(name: str) -> dict[str, Any] | None:
    """The ``driver.json`` written by ``make reproduce`` for experiment ``name`` (its scale,
    resolved ``parameters``, wall ``seconds`` and status), or ``None`` if absent."""
    path = experiment_dir(name) / "driver.json"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def relative(path: Path) -> str:
    """``path`` relative to the repository root when it lies inside it (for captions)."""
    path = Path(path)
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)


def _check_source(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    if "source" not in df.columns:
        raise ValueError(f"{path}: every data file needs a 'source' column, got {list(df.columns)}")
    if df["source"].isna().any() or (df["source"].astype(str).str.strip() == "").any():
        raise ValueError(f"{path}: some rows have an empty 'source'")
    return df


def _read_cited_csv(folder: Path, name: str, what: str) -> pd.DataFrame:
    path = folder / f"{name}.csv"
    if not path.is_file():
        valid = sorted(p.stem for p in folder.glob("*.csv"))
        raise ValueError(f"no {what} {path.name!r}; valid names: {valid}")
    return _check_source(pd.read_csv(path), path)


def read_data(name: str) -> pd.DataFrame:
    """Read ``book/data/<name>.csv`` and check every row cites its ``source``."""
    return _read_cited_csv(REPO_ROOT / "book" / "data", name, "data file")


def read_published(name: str) -> pd.DataFrame:
    """Read ``results/published/<name>.csv`` (numbers from papers, never ours)."""
    return _read_cited_csv(REPO_ROOT / "results" / "published", name, "published table")


def load_results(name: str, root: str | os.PathLike[str] | None = None) -> pd.DataFrame | None:
    """Our tidy results of experiment ``name``, or ``None`` when none are committed.

    An experiment folder ``<root>/<name>`` holds one or more grids written by
    :func:`survey_lib.runner.run_grid`: either ``runs/`` directly or sub-folders
    ``<grid>/runs/`` (``stale/`` and ``corrupt/`` folders are skipped). Each is read with :func:`survey_lib.runner.results.load_results`; the
    tables are stacked with a ``grid`` column naming the sub-folder (``""`` for the top level).
    The table is long-form: one row per run × metric with ``run_id``, the grid parameters,
    ``seed``, ``metric`` and ``value``. Without ``root`` the folder is :func:`experiment_dir`.
    """
    folder = Path(root) / name if root is not None else experiment_dir(name)
    grids = sorted(
        p.parent for p in folder.glob("**/runs")
        if p.is_dir() and not {"stale", "corrupt"} & set(p.relative_to(folder).parts[:-1])
    )  # records moved aside (survey_lib.runner.grid) are no grid's results
    if not grids:
        return None
    from survey_lib.runner.results import load_results as _load

    frames = []
    for grid in grids:
        df = _load(grid)
        if len(df):
            frames.append(df.assign(grid=str(grid.relative_to(folder)).replace(".", "")))
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)


def read_result_file(name: str, filename: str) -> pd.DataFrame | None:
    """A CSV written by experiment ``name`` (e.g. ``per_seed.csv``), or ``None`` if absent.

    The file is looked up in :func:`experiment_dir` (``results/<scale>/<name>/<filename>``, or
    ``results/similarity_ladder/ladder.csv`` for the ladder).
    """
    path = experiment_dir(name) / filename
    return pd.read_csv(path) if path.is_file() else None


def glue_number(name: str, value: Any, digits: int | None = None) -> None:
    """Glue ``value`` (cast to a Python ``float``) under ``name`` for ``{glue}`` in the prose.

    Args:
        name: the glue key the Markdown refers to with the `glue:text` role.
        value: a number (NumPy scalars are cast to ``float``).
        digits: round to this many decimals first, if given; pass the decimals the page shows
            for values that can be near zero, so the page never shows ``-0.0``.

    Returns nothing, so a call ending a cell prints no output.
    """
    from myst_nb import glue

    number = float(value)
    if digits is not None:
        number = round(number, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    glue(name, number, display=False)


def glue_text(name: str, text: str) -> None:
    """Glue a short string (e.g. a dataset name picked by code)."""
    from myst_nb import glue

    glue(name, str(text), display=False)


def rank_column(
    values: Iterable[float], *, ascending: bool = False, method: str = "min"
) -> pd.Series:
    """Ranks of ``values`` (1 = largest when ``ascending`` is False); ties share the ``min`` rank.

    Args:
        values: the numbers to rank.
        ascending: rank the smallest value 1 instead of the largest.
        method: how ties are ranked, as in :meth:`pandas.Series.rank` (``min``, ``dense``, ...).

    Returns:
        Integer ranks, in the order of ``values``.
    """
    valid = ("average", "min", "max", "first", "dense")
    if method not in valid:
        raise ValueError(f"method must be one of {valid}, got {method!r}")
    s = pd.Series(list(values), dtype=float)
    ranks = s.rank(ascending=ascending, method=method)
    return ranks.round().astype("Int64") if method != "average" else ranks


def rank_check(
    df: pd.DataFrame, value: str, printed: str, *, ascending: bool = False
) -> pd.DataFrame:
    """Recompute the ranks of ``df[value]`` and set them beside the ``printed`` ones.

    Adds ``rank (recomputed)``, ``tied`` (the value occurs more than once) and ``agrees``.
    """
    out = df.copy()
    out["rank (recomputed)"] = rank_column(out[value], ascending=ascending).to_numpy()
    out["tied"] = out[value].duplicated(keep=False).to_numpy()
    out["agrees"] = (
        out["rank (recomputed)"].astype("Int64") == out[printed].astype("Int64")
    ).to_numpy()
    return out


def table_from_csv(
    data: pd.DataFrame | str | os.PathLike[str],
    columns: Sequence[str] | None = None,
    *,
    rename: dict[str, str] | None = None,
    precision: int = 2,
    caption: str | None = None,
):
    """A styled HTML table (index hidden, floats to ``precision`` places) for a chapter.

    Args:
        data: a DataFrame or the path of a CSV file.
        columns: the columns to show, in order (all when ``None``).
        rename: display names for columns.
        precision: decimals shown for float columns.
        caption: an optional caption inside the table.

    Returns:
        A :class:`pandas.io.formats.style.Styler`.
    """
    df = data if isinstance(data, pd.DataFrame) else pd.read_csv(data)
    if columns is not None:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"columns {missing} not in the table; valid: {list(df.columns)}")
        df = df[list(columns)]
    if rename:
        df = df.rename(columns=rename)
    styler = df.style.hide(axis="index").format(precision=precision, na_rep="")
    if caption:
        styler = styler.set_caption(caption)
    return styler


def torchvision_imagenet_table(tag: str = "IMAGENET1K_V1") -> pd.DataFrame:
    """ImageNet-1K top-1 and parameter count of every torchvision model with ``tag`` weights.

    The numbers are the metadata torchvision ships with its weights (``Weights.meta``:
    ``num_params`` and ``_metrics['ImageNet-1K']['acc@1']``), so this table is rebuilt offline.

    Returns:
        Columns ``model``, ``family``, ``weights``, ``params_millions``, ``top1``,
        ``image_size``, ``source``.
    """
    import torchvision
    from torchvision.models import get_model_weights, list_models

    rows = []
    for model in list_models(module=torchvision.models):
        for weights in get_model_weights(model):
            if weights.name != tag:
                continue
            meta = weights.meta
            metrics = meta.get("_metrics", {}).get("ImageNet-1K")
            if not metrics:
                continue
            family = model.split("_")[0].rstrip("0123456789")
            rows.append(
                {
                    "model": model,
                    "family": family,
                    "weights": weights.name,
                    "params_millions": meta["num_params"] / 1e6,
                    "top1": float(metrics["acc@1"]),
                    "image_size": int(weights.transforms().crop_size[0]),
                    "source": f"marcel2010torchvision (torchvision {torchvision.__version__} "
                    f"weights metadata, {weights.name})",
                }
            )
    if not rows:
        raise ValueError(f"no torchvision weights tagged {tag!r} with ImageNet-1K metrics")
    return pd.DataFrame(rows).sort_values("params_millions").reset_index(drop=True)


def aggregate_metric(df: pd.DataFrame, by: Sequence[str], metric: str) -> pd.DataFrame:
    """Mean, 95 % t-interval and n of ``metric`` per group, via :func:`survey_lib.runner.aggregate`."""
    from survey_lib.runner.aggregate import aggregate

    if metric not in set(df["metric"]):
        valid = sorted(df["metric"].unique())
        raise ValueError(f"no rows with metric {metric!r}; valid metrics: {valid}")
    return aggregate(df, list(by), metric=metric)


def package_versions(names: Iterable[str]) -> pd.DataFrame:
    """Installed version of each distribution in ``names`` ("not installed" if missing)."""
    rows = []
    for name in names:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        rows.append({"package": name, "version": version})
    return pd.DataFrame(rows)


def _read_json(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _device(record: dict[str, Any]) -> str:
    """``"<GPU names>"`` when CUDA devices are recorded, else ``"<cpu> (<n> cores)"``."""
    device = record.get("device") or {}
    if not isinstance(device, dict):
        return str(device)
    cuda = device.get("cuda") or []
    if cuda:
        names = [str(c.get("name", c)) if isinstance(c, dict) else str(c) for c in cuda]
        return ", ".join(sorted(set(names)))
    cores = device.get("cpu_count")
    return f"{device.get('cpu', 'CPU')}" + (f" ({cores} cores)" if cores else "")


def _commit(record: dict[str, Any]) -> str:
    git = record.get("git") or {}
    sha = str(git.get("commit") or "")[:10]
    return f"{sha}{' (dirty)' if git.get('dirty') else ''}" if sha else ""


def _join(values: Iterable[Any]) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values if v not in (None, "")))


def library_changes(commits: Iterable[str], codes: Iterable[str], *,
                    current: str | None = None, repo: Path | None = None) -> str:
    """Which computing modules of ``survey_lib`` changed since results were computed.

    ``codes`` are the code versions the results' grids recorded and ``commits`` their git
    commits. When every code version is the current one (``current``, default
    :func:`survey_lib.provenance.code_version`) the answer is ``"none"``. Otherwise it lists the
    files under ``src/survey_lib/`` that differ between those commits and the working tree,
    except presentation modules (which never enter a code version), from ``git diff
    --name-only``; where git or the commits are missing it says only that the code version
    differs. The results stay what the code at their commit computed; ``make reproduce`` would
    compute them again, since a run's id holds the code version.
    """
    current = code_version() if current is None else current
    codes = {c for c in codes if c}
    if codes and codes <= {current}:
        return "none"
    repo = REPO_ROOT if repo is None else repo
    changed: set[str] = set()
    for commit in {c.split(" ")[0] for c in commits if c}:
        try:
            out = subprocess.run(
                ["git", "-C", str(repo), "diff", "--name-only", commit, "--", "src/survey_lib"],
                capture_output=True, text=True, timeout=20, check=True,
            ).stdout  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return f"code version differs from the current {current} (no git history to say how)"
        for line in out.splitlines():
            rel = line.removeprefix("src/survey_lib/")
            if rel.endswith(".py") and not is_presentation_module(rel):
                changed.add(rel)
    if not changed:
        return f"code version differs from the current {current}"
    names = sorted(changed)
    more = f" and {len(names) - 6} more" if len(names) > 6 else ""
    return ", ".join(names[:6]) + more


def experiment_provenance(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """One summary row for an experiment folder written by ``make reproduce``.

    Reads ``<folder>/driver.json`` (scale, wall time of the whole notebook) and every
    ``<folder>/<grid>/provenance.json`` written by :func:`survey_lib.runner.run_grid` (device,
    versions, git commit, code version, runs).

    Returns:
        ``experiment``, ``scale``, ``wall time (s)``, ``device``, ``torch``, ``git commit``,
        ``code version``, ``library changed since`` (:func:`library_changes`), ``runs``
        (finished runs over all grids), ``grids`` and ``finished``.
    """
    folder = Path(folder)
    driver = _read_json(folder / "driver.json") if (folder / "driver.json").is_file() else {}
    grids = [_read_json(p) for p in sorted(folder.glob("*/provenance.json"))]
    if not driver and not grids:
        raise ValueError(f"{folder}: no driver.json and no <grid>/provenance.json")
    first = grids[0] if grids else {}
    wall = driver.get("seconds")
    if wall is None:
        wall = sum(float(g.get("wall_seconds") or 0.0) for g in grids)
    return {
        "experiment": folder.name,
        "scale": str(driver.get("scale", driver.get("parameters", {}).get("scale", ""))),
        "wall time (s)": float(wall),
        "device": _device(first),
        "torch": str((first.get("packages") or {}).get("torch", "")),
        "git commit": _join(_commit(g) for g in grids),
        "code version": _join(g.get("code_version") for g in grids),
        "library changed since": library_changes(
            [str((g.get("git") or {}).get("commit") or "") for g in grids],
            [str(g.get("code_version") or "") for g in grids],
        ),
        "runs": int(sum(int(g.get("runs_finished") or 0) for g in grids)),
        "grids": _join(str(g.get("experiment", "")) for g in grids),
        "finished": str(driver.get("finished", first.get("finished", ""))),
    }


def ladder_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The :func:`experiment_provenance` row of a similarity-ladder sidecar
    (``results/similarity_ladder/ladder.provenance.json``: one source model per seed)."""
    path = Path(path)
    record = _read_json(path)
    params = record.get("params") or {}
    return {
        "experiment": path.parent.name,
        "scale": "own protocol",
        "wall time (s)": float(record.get("wall_seconds") or 0.0),
        "device": _device(record),
        "torch": str((record.get("packages") or {}).get("torch", "")),
        "git commit": _commit(record),
        "code version": str(record.get("code_version", "")),
        "library changed since": library_changes(
            [str((record.get("git") or {}).get("commit") or "")],
            [str(record.get("code_version") or "")],
        ),
        "runs": len(record.get("runs") or params.get("seeds") or []),
        "grids": "source model per seed",
        "finished": str(record.get("finished", "")),
    }


def build_status(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Where and with what every committed result was computed: one row per experiment.

    Reads each experiment shown by the book (``<results>/<scale>/<name>/driver.json`` and
    ``.../<grid>/provenance.json``, choosing ``gpu`` over ``cpu`` per experiment as
    :func:`experiment_dir` does) and ``<results>/similarity_ladder/*.provenance.json``.
    ``root`` is the ``results`` folder (default ``<repo>/results``; with ``$RESULTS_DIR`` set,
    the experiments are read from there).

    Returns:
        The columns of :func:`experiment_provenance`; an empty frame with those columns when
        nothing is committed.
    """
    base = Path(root) if root is not None else REPO_ROOT / "results"
    if root is None and os.environ.get("RESULTS_DIR"):
        folders = sorted(p.parent for p in results_dir().glob("*/driver.json"))
    else:
        chosen: dict[str, Path] = {}
        for scale in reversed(SCALES_BY_PREFERENCE):  # later (better) scales overwrite
            for driver in sorted((base / scale).glob("*/driver.json")):
                chosen[driver.parent.name] = driver.parent
        folders = [chosen[name] for name in sorted(chosen)]
    rows = [experiment_provenance(folder) for folder in folders]
    rows += [ladder_provenance(p) for p in sorted((base / "similarity_ladder").glob("*.json"))]
    columns = [
        "experiment",
        "scale",
        "wall time (s)",
        "device",
        "torch",
        "git commit",
        "code version",
        "library changed since",
        "runs",
        "grids",
        "finished",
    ]
    return pd.DataFrame(rows, columns=columns)


def image_grid(
    images: np.ndarray | Any, labels: Sequence[str], *, ncols: int = 10, ax_size: float = 0.9
):
    """Plot ``images`` ((N, C, H, W) uint8) in a grid with ``labels`` as titles; return the figure."""
    import matplotlib.pyplot as plt

    arr = np.asarray(images)
    if arr.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {arr.shape}")
    n = arr.shape[0]
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * ax_size, nrows * (ax_size + 0.25)))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if i >= n:
            continue
        img = arr[i].transpose(1, 2, 0)
        ax.imshow(
            img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None
        )
        ax.set_title(str(labels[i])[:12], fontsize=7)
    fig.tight_layout()
    return fig


RUN_COLUMNS = ("run_id", "seed", "metric", "value", "code_version")


def param_columns(df: pd.DataFrame) -> list[str]:
    """The grid-parameter columns of a tidy results table (all but run_id, seed, metric, value)."""
    return [c for c in df.columns if c not in RUN_COLUMNS]


def pick_metric(df: pd.DataFrame, preferred: Sequence[str]) -> str:
    """The first of ``preferred`` present in ``df['metric']``; else the first metric containing
    ``'acc'``. Raises ``ValueError`` listing the metrics when none fits."""
    metrics = list(pd.unique(df["metric"]))
    for name in preferred:
        if name in metrics:
            return name
    for name in metrics:
        if "acc" in str(name):
            return str(name)
    raise ValueError(f"none of {list(preferred)} among the metrics {metrics}")


def summarise(df: pd.DataFrame, metric: str, by: Sequence[str] | None = None) -> pd.DataFrame:
    """Mean, 95 % t-interval and n of ``metric`` per parameter cell (default: all parameters)."""
    if by is None:
        by = [
            c
            for c in param_columns(df)
            if df[c].astype(str).nunique() > 1 and not any(k in c for k in ("dir", "path"))
        ]
    by = list(by)
    filled = df.copy()
    for col in by:
        if filled[col].isna().any():
            filled[col] = filled[col].astype(object).where(filled[col].notna(), "")
    return aggregate_metric(filled, by, metric)


def missing_results(name: str, what: str) -> Any:
    """A Markdown admonition saying the results of ``name`` are not committed yet."""
    from IPython.display import Markdown

    folder = experiment_dir(name)
    return Markdown(
        ":::{admonition} Results not yet committed\n:class: warning\n\n"
        f"No results were found in `{relative(folder)}`"
        f". {what} Run `make reproduce` to produce them; this page shows only published numbers "
        "until then.\n:::\n"
    )


def t_summary(df: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """Mean, 95 % Student-t interval and n of ``df[value]`` per group of ``by`` columns.

    Uses :func:`survey_lib.stats.t_interval` (one value per seed, so n is the number of seeds).

    Returns:
        The ``by`` columns, then ``mean``, ``ci_low``, ``ci_high`` and ``n``.
    """
    from survey_lib.stats import t_interval

    missing = [c for c in [*by, value] if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the table; valid: {list(df.columns)}")
    rows = []
    for key, group in df.groupby(list(by), sort=True):
        mean, low, high, n = t_interval(group[value])
        keys = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, keys)), "mean": mean, "ci_low": low, "ci_high": high, "n": n})
    return pd.DataFrame(rows, columns=[*by, "mean", "ci_low", "ci_high", "n"])


def verdict_styler(verdicts: pd.DataFrame, digits: int = 1):
    """A verdict table (either format of ``verdicts*.csv``, see :func:`normalise_verdicts`) for
    a page.

    Shows ``claim``, ``verdict``, the estimate with its 95 % t-interval in the table's unit
    (accuracy differences in percentage points), ``n`` (seeds), the effect bound and seeds
    needed (``—`` for tables written before they existed) and the decision ``rule``, with the
    verdict cell coloured.

    Args:
        verdicts: a verdict table.
        digits: decimals shown for point estimates (correlations and log-lrs get two).

    Returns:
        A :class:`pandas.io.formats.style.Styler`.
    """
    table = normalise_verdicts(verdicts)
    unknown = sorted(set(table["verdict"]) - set(OUTCOME_COLOURS))
    if unknown:
        raise ValueError(f"unknown verdicts {unknown}; valid: {sorted(OUTCOME_COLOURS)}")

    def places(unit: Any) -> int:
        return 2 if str(unit) in ("rho", "log10 lr") else digits

    shown = pd.DataFrame(
        {
            "claim": table["claim"],
            "verdict": table["verdict"],
            "estimate [95 % interval]": [
                fmt_interval(m, lo, hi, places(u), "" if str(u) == "nan" else str(u))
                if int(n) > 0
                else "not run"
                for m, lo, hi, u, n in zip(
                    table["mean"], table["ci_low"], table["ci_high"], table["unit"], table["n"]
                )
            ],
            "n": table["n"].astype(int),
            "bound": [b if isinstance(b, str) and b else DASH for b in table["bound_text"]],
            "seeds needed": [_seeds(v) for v in table["seeds_needed"]],
            "rule": table["rule"],
        }
    )
    return (
        shown.style.hide(axis="index")
        .map(lambda v: f"background-color: {OUTCOME_COLOURS.get(v, '')}", subset=["verdict"])
        .set_properties(subset=["rule"], **{"font-size": "0.8em"})
    )


def glue_verdicts(prefix: str, verdicts: pd.DataFrame) -> None:
    """Glue each claim's verdict word and estimate (in the table's unit) for the prose.

    For claim ``i`` (1-based, in file order) glues ``<prefix>_v<i>`` (the verdict word, see
    :data:`OUTCOMES`) and ``<prefix>_v<i>_mean``, ``_lo``, ``_hi`` (floats in the unit of
    :func:`normalise_verdicts`: points for accuracy differences), ``<prefix>_v<i>_bound`` (the
    effect bound in words, e.g. "the effect lies between 0.2 and 1.1 points", or "no bound" for
    tables written before bounds existed); the counts
    ``<prefix>_n_<word>`` for every word of :data:`OUTCOMES` (spaces as ``_``) and
    ``<prefix>_n_claims``.
    """
    table = normalise_verdicts(verdicts)
    for i, row in enumerate(table.itertuples(index=False), start=1):
        digits = 2 if str(row.unit) in ("rho", "log10 lr") else 1
        glue_text(f"{prefix}_v{i}", row.verdict)
        glue_number(f"{prefix}_v{i}_mean", row.mean, digits)
        glue_number(f"{prefix}_v{i}_lo", row.ci_low, digits)
        glue_number(f"{prefix}_v{i}_hi", row.ci_high, digits)
        bound = row.bound_text if isinstance(row.bound_text, str) and row.bound_text else ""
        glue_text(f"{prefix}_v{i}_bound", bound.rstrip(".") or "no bound")
    for word, count in verdict_counts(table).items():
        glue_number(f"{prefix}_n_{word.replace(' ', '_')}", count)
    glue_number(f"{prefix}_n_claims", len(table))


def facts_admonition(title: str, facts: dict[str, str], *, note: str = "") -> Any:
    """A Markdown ``note`` admonition listing ``facts`` (label: value), e.g. the data and
    protocol a result used, built from the experiment's ``driver.json``."""
    from IPython.display import Markdown

    lines = [f":::{{admonition}} {title}", ":class: note", ""]
    lines += [f"- **{label}:** {value}" for label, value in facts.items()]
    if note:
        lines += ["", note]
    lines.append(":::")
    return Markdown("\n".join(lines) + "\n")


EXPERIMENT_SECTIONS = {
    "yosinski_layer_transfer": "sec-yosinski-ours",
    "kornblith_gains_vs_size": "sec-taxonomy-ours",
    "l2sp_vs_bss": "sec-l2sp-vs-bss-ours",
}
"""The book section (MyST label) that shows each reproduction's results and verdicts."""


def claim_verdicts(refs: str) -> pd.DataFrame:
    """The committed verdicts named by ``refs``, e.g. ``"l2sp_vs_bss:3;kornblith_gains_vs_size:2"``.

    Each reference is ``<experiment>:<claim number>``; the claim is the row of the experiment's
    ``verdicts.csv`` whose ``claim`` starts with ``"<number>."``.

    Returns:
        One row per reference: ``experiment``, ``claim_no``, ``section`` (the label in
        :data:`EXPERIMENT_SECTIONS`), and ``claim``, ``verdict``, ``mean``, ``ci_low``,
        ``ci_high``, ``n`` (NaN / ``"results not yet committed"`` when the file is absent).

    Raises:
        ValueError: a malformed reference, an unknown experiment, or a claim number that the
            committed ``verdicts.csv`` does not contain.
    """
    rows = []
    for ref in [r.strip() for r in str(refs).split(";") if r.strip()]:
        experiment, sep, number = ref.partition(":")
        if not sep or not number.isdigit():
            raise ValueError(f"claim reference {ref!r} must look like '<experiment>:<number>'")
        if experiment not in EXPERIMENT_SECTIONS:
            raise ValueError(
                f"unknown experiment {experiment!r}; valid: {sorted(EXPERIMENT_SECTIONS)}"
            )
        row: dict[str, Any] = {
            "experiment": experiment,
            "claim_no": int(number),
            "section": EXPERIMENT_SECTIONS[experiment],
            "claim": "",
            "verdict": "results not yet committed",
            "mean": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "n": 0,
            "unit": "",
        }
        verdicts = read_verdicts(experiment)
        if verdicts is not None:
            match = verdicts[verdicts["claim"].astype(str).str.startswith(f"{number}.")]
            if len(match) != 1:
                raise ValueError(
                    f"{experiment}/verdicts.csv has no claim {number}; claims: "
                    f"{[str(c).split('.')[0] for c in verdicts['claim']]}"
                )
            found = match.iloc[0]
            row.update(
                {
                    k: found[k]
                    for k in ("claim", "verdict", "mean", "ci_low", "ci_high", "n", "unit")
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# One palette for the whole book (chapters and reproduction notebooks)
# --------------------------------------------------------------------------------------------

PALETTE: dict[str, str] = {
    # Yosinski et al. (2014) layer-transfer conditions
    "baseB": "#4d4d4d",
    "BnB": "#1f77b4",
    "BnB+": "#6baed6",
    "AnB": "#d62728",
    "AnB+": "#ff7f0e",
    "random": "#969696",
    # fine-tuning regularisers (L2-SP, BSS, DELTA, ...)
    "L2": "#4d4d4d",
    "L2-SP": "#2ca02c",
    "BSS": "#9467bd",
    "L2-SP+BSS": "#8c564b",
    "DELTA": "#e377c2",
    "StochNorm": "#bcbd22",
    "Co-Tuning": "#17becf",
    "ERM (L2)": "#4d4d4d",
    "none": "#7f7f7f",
    # Kornblith et al. (2019) settings
    "finetune": "#2ca02c",
    "fine_tuned": "#2ca02c",
    "linear": "#1f77b4",
    "logistic_regression": "#1f77b4",
    "scratch": "#d62728",
    "random_init": "#d62728",
    # targets of the offline similarity ladder, nearest to farthest from the Latin-glyph source
    "latin_train_fonts": "#08306b",
    "latin_unseen_fonts": "#2171b5",
    "greek": "#6a51a3",
    "greek_cyrillic": "#6a51a3",
    "cyrillic": "#9e9ac8",
    "digits": "#e6550d",
    "fashion_mnist": "#a63603",
    # targets of the paper profile (survey Table 2 order: nearest to farthest from ImageNet)
    "caltech101": "#08519c",
    "oxford_pets": "#3182bd",
    "flowers102": "#31a354",
    "dtd": "#756bb1",
    "fgvc_aircraft": "#e6550d",
    # the four quadrants of the survey's taxonomy (size × similarity)
    "small_near": "#6baed6",
    "large_near": "#08519c",
    "small_far": "#fd8d3c",
    "large_far": "#a63603",
}
"""The colour of every condition, method and target the book plots, on every page.

Chapters and notebooks pass it to seaborn as ``palette=PALETTE`` (seaborn ignores keys a plot
does not use) or look single colours up with :func:`colour`, so AnB, L2-SP or a ladder target
has the same colour in a chapter and in the reproduction notebook it comes from.
"""


def colour(name: str) -> str:
    """The :data:`PALETTE` colour of condition, method or target ``name``.

    Raises:
        ValueError: ``name`` has no colour; the message lists the names that have one.
    """
    if name not in PALETTE:
        raise ValueError(f"no book colour for {name!r}; names with a colour: {sorted(PALETTE)}")
    return PALETTE[name]


OTHER_COLOURS: tuple[str, ...] = (
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
)
"""Colours for names :data:`PALETTE` lacks (a method or target added by ``--set``), in order of
first appearance, so a notebook run with new names still draws every line distinctly."""


def palette_for(names: Iterable[str], *, others: bool = False) -> dict[str, str]:
    """``{name: colour(name)}`` for each of ``names`` (for seaborn's ``palette=``).

    Args:
        names: conditions, methods or targets (repeats are ignored).
        others: give names without a book colour the next of :data:`OTHER_COLOURS` instead of
            raising (reproduction notebooks, whose protocols may name new methods or targets).

    Raises:
        ValueError: a name has no book colour and ``others`` is false.
    """
    unique = [str(n) for n in dict.fromkeys(names)]
    if not others:
        return {n: colour(n) for n in unique}
    spare = iter(OTHER_COLOURS * (1 + len(unique) // len(OTHER_COLOURS)))
    return {n: PALETTE[n] if n in PALETTE else next(spare) for n in unique}


def clip_band(low: Any, high: Any, *, lower: float | None = None, upper: float | None = None):
    """Clip a confidence band to the values the quantity can take (e.g. accuracy in [0, 1]).

    Returns:
        ``(low, high)`` as NumPy arrays, each clipped to ``[lower, upper]``.
    """
    lo = np.clip(np.asarray(low, dtype=float), lower, upper)
    hi = np.clip(np.asarray(high, dtype=float), lower, upper)
    return lo, hi


def bounded_errorbar(
    lower: float | None = None, upper: float | None = None
) -> Callable[[Iterable[float]], tuple[float, float]]:
    """seaborn's ``errorbar=``: the 95 % t-interval of the mean (:func:`survey_lib.stats.t_errorbar`)
    clipped to ``[lower, upper]``, the values the plotted quantity can take (:func:`clip_band`).

    E.g. a difference of accuracies ``acc - baseB`` (fractions) lies in
    ``[-max(baseB), 1 - min(baseB)]``; a t-interval of a few seeds can reach past that.
    """

    def errorbar(values: Iterable[float]) -> tuple[float, float]:
        low, high = t_errorbar(values)
        lo, hi = clip_band(low, high, lower=lower, upper=upper)
        return float(lo), float(hi)

    return errorbar


def log_ticks(ax: Any, values: Iterable[float], *, axis: str = "x") -> list[float]:
    """Put a log axis's ticks at the ``values`` a figure plots, labelled plainly (``20``,
    ``0.003``), and drop matplotlib's minor-tick labels (``2×10¹ 3×10¹ …``), which overlap
    when the axis spans less than about two decades.

    Args:
        ax: a matplotlib ``Axes``; its ``axis`` is set to log scale.
        values: the positions (positive), e.g. the target sizes or learning rates run.
        axis: ``"x"`` or ``"y"``.

    Returns:
        The tick positions, sorted.

    Raises:
        ValueError: ``axis`` is not ``"x"`` or ``"y"``, or a value is not positive.
    """
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    ticks = sorted({float(v) for v in values})
    if not ticks or ticks[0] <= 0 or not all(math.isfinite(t) for t in ticks):
        raise ValueError(f"log ticks need finite positive values, got {ticks}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(FixedLocator(ticks))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())
    (ax.set_xticklabels if axis == "x" else ax.set_yticklabels)([f"{t:g}" for t in ticks])
    return ticks


def overlapping_labels(ax: Any, *, axis: str = "x") -> list[tuple[str, str]]:
    """The pairs of visible tick labels (major and minor) of ``ax``'s ``axis`` whose drawn
    boxes overlap, so a chapter can fail its build with :func:`check_claim` when they do.

    Draws the figure once to measure the labels.
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    target = ax.xaxis if axis == "x" else ax.yaxis
    labels = [
        t
        for t in (*target.get_majorticklabels(), *target.get_minorticklabels())
        if t.get_visible() and t.get_text().strip()
    ]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
    return [
        (a, b)
        for i, (a, box_a) in enumerate(boxes)
        for b, box_b in boxes[i + 1 :]
        if box_a.overlaps(box_b)
    ]


# --------------------------------------------------------------------------------------------
# Numbers and words for pages: one unit per quantity, no "nan", no "-0.0"
# --------------------------------------------------------------------------------------------

DASH = "—"
"""What a page shows for a value that does not exist (never ``nan``)."""


def fmt_number(value: Any, digits: int = 1, *, thousands: bool = False) -> str:
    """``value`` with ``digits`` decimals, ``—`` for missing values, never ``-0.0``.

    Integers that are whole (image counts) print without decimals, with thin-space-free
    comma separators when ``thousands`` is set. Booleans print as ``yes`` / ``no``.
    """
    if value is None or value is pd.NA or (isinstance(value, str) and value.strip() == ""):
        return DASH
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return value
    number = float(value)
    if math.isnan(number):
        return DASH
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    if thousands and number == round(number):
        return f"{int(round(number)):,}"
    text = f"{number:.{digits}f}"
    if float(text) == 0.0:
        text = text.lstrip("-")
    return text.replace("-", "−")


def _cell_text(value: Any, digits: int, whole: bool) -> str:
    """A table cell for a page: yes/no for booleans, ``—`` for missing values, numbers by
    :func:`fmt_number` (whole-number columns without decimals, with thousands separators)."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if value is None or value is pd.NA or value is pd.NaT:
        return DASH
    if isinstance(value, (int, float, np.integer, np.floating)):
        return fmt_number(value, digits, thousands=whole)
    text = str(value)
    words = {"True": "yes", "False": "no", "nan": DASH, "NaN": DASH, "None": DASH, "": DASH}
    return words.get(text.strip(), text)


def _label_text(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if not math.isfinite(number) or number == round(number):
            return fmt_number(number, 0, thousands=True)
        return f"{number:.4g}".replace("-", "−")  # 0.15, 0.003, 0.8123: as plain as it gets
    return _cell_text(value, 0, True)


def _significant_text(value: Any, figures: int = 3) -> str:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    ) and math.isfinite(float(value)):
        text = f"{float(value):.{figures}g}"
        return text.lstrip("-") if float(text) == 0.0 else text.replace("-", "−")
    return _cell_text(value, figures, True)


def frame_view(
    df: pd.DataFrame,
    digits: int | dict[str, int] = 3,
    *,
    significant: Sequence[Any] = (),
    index: bool | None = None,
):
    """A DataFrame as a notebook shows it: no ``nan``, no ``True``/``False``, no ``-0.0``, no
    ``1280000.00``.

    Every cell goes through :func:`fmt_number`: a numeric column whose values are all whole
    numbers prints as integers with thousands separators, any other with ``digits`` decimals;
    missing values print ``—``, booleans ``yes``/``no``. Index and column labels are formatted
    the same way (floats as ``0.15``). The data are not changed, only their display.

    Args:
        df: the table.
        digits: decimals of non-whole numeric columns, one number or ``{column: decimals}``
            (columns not named get 3).
        significant: columns shown with 3 significant figures instead (quantities that span
            orders of magnitude, e.g. a penalty relative to the loss).
        index: show the index; by default only when it is not a plain ``0..n-1`` range.

    Returns:
        A :class:`pandas.io.formats.style.Styler`.
    """
    places = digits if isinstance(digits, dict) else {}
    default = 3 if isinstance(digits, dict) else int(digits)
    styler = df.style
    for position, column in enumerate(df.columns):
        series = df.iloc[:, position]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        finite = series[np.isfinite(series.astype(float))] if numeric else series.iloc[:0]
        # mixed (object) columns: each whole number on its own prints without decimals
        whole = bool(len(finite) and (finite == finite.round()).all()) if numeric else True
        d = places.get(column, default)
        if column in significant:
            formatter = _significant_text
        else:
            formatter = lambda v, d=d, w=whole: _cell_text(v, d, w)  # noqa: E731
        styler = styler.format(formatter, subset=pd.IndexSlice[:, [column]])
    if index is None:
        index = not isinstance(df.index, pd.RangeIndex) or df.index.name is not None
    styler = styler.format_index(_label_text, axis=0).format_index(_label_text, axis=1)
    return styler if index else styler.hide(axis="index")


def fmt_interval(mean: Any, low: Any, high: Any, digits: int = 1, unit: str = "") -> str:
    """``"m [lo, hi] unit"``, or ``—`` when the estimate is missing."""
    if fmt_number(mean) == DASH:
        return DASH
    text = f"{fmt_number(mean, digits)} [{fmt_number(low, digits)}, {fmt_number(high, digits)}]"
    return f"{text} {unit}".strip()


def direction(
    low: float,
    high: float,
    *,
    above: str,
    below: str,
    neither: str,
    threshold: float = 0.0,
) -> str:
    """The word a page may use for an interval ``[low, high]`` against ``threshold``.

    ``above`` when the whole interval lies above the threshold, ``below`` when it lies wholly
    below, else ``neither``. Prose glues this word (:func:`glue_direction`) instead of typing a
    direction, so it cannot contradict the numbers it cites.
    """
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return neither
    if float(low) > threshold:
        return above
    if float(high) < threshold:
        return below
    return neither


def glue_direction(name: str, low: float, high: float, **words: Any) -> str:
    """Glue :func:`direction` under ``name``; return the word."""
    word = direction(low, high, **words)
    glue_text(name, word)
    return word


def trend(values: Sequence[float], *, rising: str, falling: str, mixed: str) -> str:
    """``rising`` if ``values`` only go up, ``falling`` if they only go down, else ``mixed``."""
    steps = np.diff(np.asarray(values, dtype=float))
    if len(steps) and (steps > 0).all():
        return rising
    if len(steps) and (steps < 0).all():
        return falling
    return mixed


def check_claim(ok: bool, claim: str) -> None:
    """Fail the build when the prose claim ``claim`` no longer matches the data it cites.

    Chapters call this in the cell that computes the numbers a sentence relies on.

    Raises:
        AssertionError: naming the claim, so the page's text can be corrected.
    """
    if not bool(ok):
        raise AssertionError(f"the page says {claim!r}, but the numbers it cites do not")


# --------------------------------------------------------------------------------------------
# Verdict tables of both formats, and the findings dashboard
# --------------------------------------------------------------------------------------------

# OUTCOMES (imported above) are the verdict words of survey_lib.experiments.verdicts, in
# display order.
OUTCOME_COLOURS = {
    "reproduced": "#d7f0d2",
    "absent at this scale": "#dde8f5",
    "reversed": "#f8d4d0",
    "inconclusive": "#f3efc9",
}
"""Background colour of each verdict word on a page."""

def read_verdict_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a committed ``verdicts*.csv`` of either format via :func:`normalise_verdicts`."""
    path = Path(path)
    return normalise_verdicts(pd.read_csv(path), str(path))


def read_verdicts(name: str, filename: str = "verdicts.csv") -> pd.DataFrame | None:
    """Experiment ``name``'s committed verdict table (normalised), or ``None`` if absent."""
    path = experiment_dir(name) / filename
    return read_verdict_table(path) if path.is_file() else None


EXPERIMENT_PAPERS = {
    "yosinski_layer_transfer": "yosinski2014transferable",
    "kornblith_gains_vs_size": "kornblith2019better",
    "l2sp_vs_bss": "li2018l2sp,chen2019bss",
    "transferability_ranking": "you2021logme",
}
"""The bib keys of the paper(s) whose claims each reproduction tests."""


def verdict_files(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every committed verdict table the book shows: ``<results>/<scale>/*/verdicts*.csv``, one
    scale per experiment (``gpu`` over ``cpu``, as :func:`experiment_dir`), discovered on disk so
    a new reproduction appears without editing the book."""
    base = Path(root) if root is not None else REPO_ROOT / "results"
    chosen: dict[str, Path] = {}
    if root is None and os.environ.get("RESULTS_DIR"):
        return sorted(results_dir().glob("*/verdicts*.csv"))
    for scale in reversed(SCALES_BY_PREFERENCE):
        for folder in sorted(p for p in (base / scale).glob("*") if p.is_dir()):
            if list(folder.glob("verdicts*.csv")):
                chosen[folder.name] = folder
    return [f for name in sorted(chosen) for f in sorted(chosen[name].glob("verdicts*.csv"))]


def _notebook_title(folder: Path) -> str:
    path = folder / "executed.ipynb"
    if path.is_file():
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except json.JSONDecodeError:
            cells = []
        for cell in cells:
            if cell.get("cell_type") == "markdown":
                for line in "".join(cell.get("source", "")).splitlines():
                    if line.startswith("# "):
                        return line[2:].strip()
    return folder.name.replace("_", " ")


def findings(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Every tested claim of every committed reproduction, one row each (the dashboard's data).

    Returns:
        ``experiment``, ``table`` (the verdict file's name), ``variant`` (``""`` or what follows
        ``verdicts_``), ``scale``, ``title`` (the notebook's heading), ``papers`` (bib keys),
        ``doc`` (the executed notebook's page, relative to the repository root, no suffix) and
        every column of :func:`read_verdict_table`.
    """
    frames = []
    for path in verdict_files(root):
        table = read_verdict_table(path)
        folder = path.parent
        variant = path.stem.removeprefix("verdicts").lstrip("_")
        frames.append(
            table.assign(
                experiment=folder.name,
                table=path.name,
                variant=variant,
                scale=folder.parent.name,
                title=_notebook_title(folder),
                papers=EXPERIMENT_PAPERS.get(folder.name, ""),
                doc=relative(folder / "executed"),
            )
        )
    if not frames:
        return pd.DataFrame(columns=["experiment", "claim", "verdict"])
    return pd.concat(frames, ignore_index=True)


def _md_cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _claim_words(claim: str) -> str:
    head, sep, rest = str(claim).partition(". ")
    return rest if sep and head.isdigit() else str(claim)


def _seeds(value: Any) -> str:
    if value is None:
        return DASH
    try:
        number = float(value)
    except (TypeError, ValueError):
        return DASH
    if math.isnan(number):
        return DASH
    if math.isinf(number):
        return "never at this spread"
    return f"{math.ceil(number):d}"


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many claims of ``table`` have each verdict word (all of :data:`OUTCOMES`)."""
    return {word: int((table["verdict"] == word).sum()) for word in OUTCOMES}


def findings_dashboard(page_dir: str = "book", root: str | os.PathLike[str] | None = None) -> Any:
    """The findings dashboard: every tested claim in one MyST table, with the counts.

    Columns: claim in plain words, paper(s), our estimate with its 95 % interval and unit, the
    verdict, the effect bound (``bound_text``) and the seeds needed to decide (``—`` for tables
    written before they existed), and a link to the evidence (the executed notebook). Generated
    from :func:`findings`, never typed.

    Args:
        page_dir: the folder of the page showing it, relative to the repository root (links are
            relative to it).
    """
    from IPython.display import Markdown

    table = findings(root)
    if not len(table) or "claim" not in table or table["claim"].isna().all():
        return Markdown(
            ":::{admonition} No verdicts committed yet\n:class: warning\n\n"
            "Run `make reproduce` to produce them.\n:::\n"
        )
    up = "/".join(".." for _ in Path(page_dir).parts)
    counts = verdict_counts(table)
    experiments = table["experiment"].nunique()
    lines = [
        f"**{len(table)} claims** tested by {experiments} reproductions: "
        + ", ".join(f"{counts[w]} {w}" for w in OUTCOMES)
        + ".",
        "",
        "| claim | paper | our estimate [95 % interval] | verdict | bound · seeds needed "
        "| evidence |",
        "|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        papers = ",".join(k for k in str(row.papers).split(",") if k)
        cite = f"{{cite:t}}`{papers}`" if papers else DASH
        unit = "" if str(row.unit) in ("nan", "") else str(row.unit)
        digits = 2 if unit in ("rho", "log10 lr") else 1
        estimate = fmt_interval(row.mean, row.ci_low, row.ci_high, digits, unit)
        if int(row.n) == 0:
            rule = _md_cell(row.rule)
            estimate = rule if rule.startswith("not run") else f"not run ({rule})"
        bound = row.bound_text if isinstance(row.bound_text, str) and row.bound_text else DASH
        variant = f" ({row.variant})" if row.variant else ""
        fragile = " (fragile)" if row.fragile is True or str(row.fragile) == "True" else ""
        number = str(row.claim).split(".")[0]
        link = f"{{doc}}`claim {number}{variant} <{up}/{row.doc}>`"
        lines.append(
            f"| {_md_cell(_claim_words(row.claim))} | {cite} | {estimate} "
            f"| **{row.verdict}**{fragile} | {_md_cell(bound)} · {_seeds(row.seeds_needed)} "
            f"| {link} |"
        )
    lines += [
        "",
        "Verdict words ({ref}`sec-glossary-verdicts`): *reproduced*, the interval lies wholly on "
        "the side the paper predicts; *absent at this scale*, wholly inside the smallest effect "
        "of interest; *reversed*, wholly on the other side; *inconclusive*, otherwise. Tables "
        "written before the effect bounds existed show — for the bound and the seeds needed.",
    ]
    return Markdown("\n".join(lines) + "\n")


def runs_compute_seconds(folder: str | os.PathLike[str]) -> float:
    """Seconds the runs behind a results folder took, summed over every run record
    (``<folder>/<grid>/runs/*.json``, each record's ``provenance.wall_seconds``): what a resumed
    notebook's own wall time no longer shows. NaN when no record says."""
    total, found = 0.0, False
    for path in Path(folder).glob("*/runs/*.json"):
        try:
            seconds = json.loads(path.read_text(encoding="utf-8"))["provenance"]["wall_seconds"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if seconds is not None:
            total, found = total + float(seconds), True
    return total if found else math.nan


def reproduce_box(
    name: str, *, exercises: Sequence[str] = (), profile: str = "offline"
) -> Any:
    """The "Reproduce this page" admonition for reproduction ``name``.

    Lists the command, the protocol file, the scale and seeds the page shows, the wall time
    (``driver.json``'s ``seconds``: the notebook's last execution, short when it resumed from
    finished runs) and the compute time of all its runs (:func:`runs_compute_seconds`), the seeds needed to settle each undecided claim (from the
    verdict tables' ``seeds_needed``; ``—`` before those exist) and ``exercises``.
    """
    from IPython.display import Markdown

    driver = read_driver(name) or {}
    params = driver.get("parameters") or {}
    scale = str(driver.get("scale") or params.get("scale") or "cpu")
    profile = str(driver.get("profile") or profile)
    protocol = f"notebooks/params/{name}/{scale}.yaml"
    if profile != "offline":
        protocol += f" + notebooks/params/{name}/paper-{scale}.yaml"
    seeds = params.get("seeds")
    seeds_text = ", ".join(str(s) for s in seeds) if isinstance(seeds, list) else DASH
    seconds = driver.get("seconds")
    wall = f"{float(seconds) / 60:.1f} min" if seconds is not None else DASH
    device = DASH
    try:
        device = experiment_provenance(experiment_dir(name))["device"] or DASH
    except ValueError:
        pass
    lines = [
        ":::{admonition} Reproduce this page",
        ":class: tip",
        "",
        f"- **Command:** `python -m survey_lib.reproduce --scale {scale} --profile {profile} "
        f"--only {name}` (or `make reproduce SCALE={scale} ONLY={name}`)",
        f"- **Protocol:** `{protocol}`",
        f"- **Shown here:** scale `{scale}`, profile `{profile}`, seeds {seeds_text}",
        f"- **Wall time:** {wall} on {device} (the notebook's last execution)",
    ]
    compute = runs_compute_seconds(experiment_dir(name))
    if math.isfinite(compute):
        workers = params.get("workers")
        lines.append(f"- **Compute in its runs:** {compute / 60:.1f} min summed over runs "
                     f"(workers in parallel: {workers if workers is not None else DASH})")
    undecided = [
        row
        for row in findings().itertuples(index=False)
        if row.experiment == name and row.verdict == "inconclusive"
    ]
    if undecided:
        lines.append("- **Seeds needed to settle the undecided claims:**")
        for row in undecided:
            variant = f" ({row.variant})" if row.variant else ""
            head = str(row.claim).split(".")[0]
            lines.append(f"  - claim {head}{variant}: {_seeds(row.seeds_needed)}")
    if exercises:
        lines += ["", "**Exercises**", ""]
        lines += [f"{i}. {text}" for i, text in enumerate(exercises, start=1)]
    lines.append(":::")
    return Markdown("\n".join(lines) + "\n")


def source_links(notebook: str, *csvs: str, page_dir: str = "book") -> str:
    """A caption line linking the notebook and CSV files a figure came from (repository paths).

    Returns MyST Markdown with ``{download}`` links (the files are copied into the built book).
    """
    up = "/".join(".." for _ in Path(page_dir).parts)
    links = [f"{{download}}`{Path(x).name} <{up}/{x}>`" for x in (notebook, *csvs)]
    text = f"The next figure is drawn from the results of {links[0]}"
    if len(links) > 1:
        text += " (" + ", ".join(links[1:]) + ")"
    return text + "."


_BIB_KEY = r"\b([a-z]+[0-9]{4}[a-z0-9]*)\b"


def cite_keys(text: Any) -> str:
    """``text`` with every bib key (``plested2022survey``) written as a MyST citation, so
    tables show "Plested and Gedeon (2022)" and link to the bibliography, not a raw key."""
    import re

    return re.sub(_BIB_KEY, lambda m: f"{{cite:t}}`{m.group(1)}`", str(text))


def md_table(
    df: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    rename: dict[str, str] | None = None,
    caption: str = "",
    widths: Sequence[int] | None = None,
    cite: Sequence[str] = (),
    digits: int = 1,
) -> Any:
    """A MyST list-table of ``df`` for a page (wraps long text; cites bib keys).

    Numbers are shown with :func:`fmt_number` (whole numbers without decimals, ``—`` for
    missing values, never ``nan`` or ``-0.0``); booleans as yes/no; columns named in ``cite``
    have their bib keys turned into citations (:func:`cite_keys`).

    Raises:
        ValueError: a requested column is not in ``df``.
    """
    from IPython.display import Markdown

    columns = list(columns) if columns is not None else list(df.columns)
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"columns {missing} not in the table; valid: {list(df.columns)}")
    names = [(rename or {}).get(c, c) for c in columns]
    head = f":::{{list-table}} {caption}".rstrip()
    lines = [head, ":header-rows: 1"]
    if widths:
        lines.append(":widths: " + " ".join(str(int(w)) for w in widths))
    lines += ["", "* - " + "\n  - ".join(_md_cell(n) for n in names)]

    def cell(column: str, value: Any) -> str:
        if column in cite:
            return cite_keys(value) if isinstance(value, str) else DASH
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "no"
        if value is None or value is pd.NA:
            return DASH
        if isinstance(value, (int, float, np.integer, np.floating)):
            number = float(value)
            if math.isfinite(number) and number == round(number):
                return fmt_number(number, thousands=True)
            return fmt_number(number, digits)
        return _md_cell(value)

    for row in df[columns].itertuples(index=False):
        lines.append("* - " + "\n  - ".join(cell(c, v) for c, v in zip(columns, row)))
    lines.append(":::")
    return Markdown("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# The pilot against the pre-registered run (issue 11)
# --------------------------------------------------------------------------------------------

PILOT_DIR = "cpu-pilot"
"""``results/cpu-pilot/``: the 3-seed pilot whose spread planned the cpu protocols' seeds, with
the plan itself (``seeds_plan.csv``, written by ``scripts/seeds_needed.py --csv``)."""


def _claim_number(claim: Any) -> str:
    """``"3"`` for ``"3. AnB falls ..."``, ``"1"`` for plan keys ``"1a"``, ``"fashion 1"``."""
    import re

    text = str(claim).strip()
    match = re.match(r"^(?:[a-z]+ )?(\d+)", text)
    return match.group(1) if match else text


def pilot_comparison(
    name: str, filename: str = "verdicts.csv", plan_group: str = "", *, numeric: bool = False
) -> pd.DataFrame:
    """Each claim of experiment ``name`` in the 3-seed pilot, in the seed plan made from it, and
    in the committed pre-registered run, side by side (one row per claim).

    Columns: ``claim``; ``pilot`` (estimate [95 % interval], n) and ``pilot verdict``;
    ``planned seeds`` (the plan's seeds for the claim, the largest over its parts; ``—`` where
    the plan gave none, "never at this spread" where no number would do), ``predicted sd``
    (the spread the plan assumed at the new test sizes, the largest over parts) and ``plan
    expected a decision`` (every part decided within the seeds the plan allocated); ``run``
    and ``run verdict`` (the committed result); ``observed sd`` (its spread between seeds) and
    ``seeds needed now`` (at that spread).

    With ``numeric`` the same rows as numbers for computing with: ``claim``, ``pilot_sd``
    (the pilot's own spread, the largest over parts), ``predicted_sd``, ``observed_sd`` (floats, NaN where missing), ``expected_decided`` and
    ``decided`` (bools: the run's verdict is not *inconclusive*).

    Args:
        name: the experiment (notebook) name.
        filename: the verdict table (``verdicts.csv`` or e.g. ``verdicts_glyphs.csv``).
        plan_group: the plan's claim prefix for that table (``"fashion"``, ``"glyphs"``; empty
            for experiments with one table).
        numeric: return numbers instead of display strings.

    Raises:
        FileNotFoundError: the pilot table, the plan or the committed table is missing.
    """
    pilot_path = REPO_ROOT / "results" / PILOT_DIR / name / filename
    plan_path = REPO_ROOT / "results" / PILOT_DIR / "seeds_plan.csv"
    run_path = experiment_dir(name) / filename
    for path in (pilot_path, plan_path, run_path):
        if not path.is_file():
            raise FileNotFoundError(f"pilot_comparison needs {path}")
    pilot, run = read_verdict_table(pilot_path), read_verdict_table(run_path)
    plan = pd.read_csv(plan_path)
    plan = plan[plan["notebook"] == name]
    if plan_group:
        plan = plan[plan["claim"].astype(str).str.startswith(plan_group + " ")]
    plan = plan.assign(number=[_claim_number(c) for c in plan["claim"]])

    def shown(row: Any) -> str:
        if int(row.n) < 1:
            return "not run"
        digits = 2 if str(row.unit) in ("rho", "log10 lr") else 1
        unit = "" if str(row.unit) in ("nan", "points") else f" {row.unit}"
        return f"{fmt_interval(row.mean, row.ci_low, row.ci_high, digits)}{unit}, n = {int(row.n)}"

    def largest(values: pd.Series) -> float:
        numbers = [float(v) for v in values]
        if not numbers or any(math.isnan(v) for v in numbers):
            return math.nan
        return max(numbers)

    by_number = {_claim_number(r.claim): r for r in pilot.itertuples(index=False)}
    rows = []
    for r in run.itertuples(index=False):
        number = _claim_number(r.claim)
        p = by_number.get(number)
        parts = plan[plan["number"] == number]
        seeds, sd = largest(parts["seeds"]), largest(parts["sd_new"])
        pilot_sd = largest(parts["sd"])
        expected = bool(len(parts)) and bool(parts["decided_at_plan"].astype(bool).all())
        if numeric:
            rows.append({"claim": r.claim, "pilot_sd": pilot_sd, "predicted_sd": sd,
                         "observed_sd": float(r.sd),
                         "expected_decided": expected, "decided": r.verdict != "inconclusive"})
            continue
        rows.append(
            {
                "claim": r.claim,
                "pilot": shown(p) if p is not None else DASH,
                "pilot verdict": p.verdict if p is not None else DASH,
                "planned seeds": _seeds(seeds),
                "predicted sd": fmt_number(sd, 2),
                "plan expected a decision": "yes" if expected else "no",
                "run": shown(r),
                "run verdict": r.verdict,
                "observed sd": fmt_number(r.sd, 2),
                "seeds needed now": _seeds(r.seeds_needed),
            }
        )
    return pd.DataFrame(rows)

# ------------------------------------------------------------- protocol table and comparability


def _cite_known(text: Any) -> str:
    """``text`` with the bib keys that ``references.bib`` holds written as citations (other
    key-like words, e.g. ``kornblith2019``, stay plain text)."""
    import re

    bib = (REPO_ROOT / "references.bib").read_text(encoding="utf-8")
    known = set(re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M))
    return re.sub(_BIB_KEY, lambda m: f"{{cite:t}}`{m.group(1)}`" if m.group(1) in known
                  else m.group(1), str(text))  # fmt: skip


def resolved_protocol(
    notebook: str, scale: str = "published", profile: str = "paper",
    notebooks_dir: Path | None = None,
) -> dict[str, Any]:
    """The resolved protocol the driver would pass to ``notebook`` (from
    ``<notebooks_dir>/params``, default the repository's ``notebooks/``)."""
    from survey_lib.reproduce import load_params

    return load_params(notebook, scale, profile, notebooks_dir or REPO_ROOT / "notebooks")


def protocol_rows(
    notebook: str, scale: str = "published", profile: str = "paper",
    notebooks_dir: Path | None = None,
) -> pd.DataFrame:
    """The protocol table of ``notebook`` (:func:`survey_lib.protocol_table.rows`): one row per
    aspect with ``aspect``, ``published``, ``ours`` and ``deviation``."""
    from survey_lib.protocol_table import load_facts, rows

    params = resolved_protocol(notebook, scale, profile, notebooks_dir)
    return pd.DataFrame(rows(notebook, params, load_facts()),
                        columns=["aspect", "published", "ours", "deviation"])


def published_marks(
    notebook: str, scale: str = "published", profile: str = "paper",
    notebooks_dir: Path | None = None,
) -> dict[str, pd.DataFrame]:
    """Each published file of ``notebook`` with every row marked ``comparability`` and
    ``why`` (:func:`survey_lib.protocol_table.number_marks`), for that preset."""
    from survey_lib.protocol_table import load_facts, number_marks

    params = resolved_protocol(notebook, scale, profile, notebooks_dir)
    return dict(number_marks(notebook, params, load_facts()))


def metric_note(
    notebook: str, scale: str = "published", profile: str = "paper",
    notebooks_dir: Path | None = None,
) -> list[str]:
    """One line per published file: which metric and which result of a run each published
    number is (per the file's ``metric`` and ``selection`` columns), and which ours are."""
    from survey_lib.comparability import METRIC_WORDS, SELECTION_WORDS, ours_selection
    from survey_lib.protocol_table import load_facts

    facts = load_facts().get(notebook, {})
    params = resolved_protocol(notebook, scale, profile, notebooks_dir)
    lines = []
    for spec in facts.get("numbers", []):
        table = read_published(Path(spec["file"]).stem)
        parts = []
        for (metric, selection), grp in table.groupby(["metric", "selection"], sort=False):
            where = ""
            if "dataset" in grp and grp["dataset"].nunique() < table["dataset"].nunique():
                where = f" ({', '.join(dict.fromkeys(grp['dataset']))})"
            parts.append(f"{METRIC_WORDS.get(metric, metric)}{where}, "
                         f"{SELECTION_WORDS.get(selection, selection)}")  # fmt: skip
        ours = spec.get("ours", {})
        mine = " or ".join(METRIC_WORDS.get(m, m) for m in ours.get("metric", ["top1"]))
        pick = ours_selection(spec, params)
        lines.append(f"`{spec['file']}`: published {'; '.join(parts)}. Ours: {mine}, "
                     f"{SELECTION_WORDS.get(pick, pick)}.")  # fmt: skip
    return lines


def protocol_section(
    notebook: str, scale: str = "published", profile: str = "paper",
    notebooks_dir: Path | None = None,
) -> Any:
    """The page section beside a reproduction's published numbers: the protocol table
    (aspect | published (source) | ours | deviation and expected effect) of the ``profile`` /
    ``scale`` preset, each published number that can be set beside ours with its mark (the
    rows not comparable grouped by reason), and the metric bookkeeping note. Generated from
    the resolved protocol and ``results/published/protocols.yaml``, so it follows both."""
    from IPython.display import Markdown

    from survey_lib.comparability import reasons

    table = protocol_rows(notebook, scale, profile, notebooks_dir)
    table["published"] = table["published"].map(_cite_known)
    parts = [md_table(table, rename={"published": "published (source)",
                                     "deviation": "deviation and expected effect"},
                      caption=f"Protocol of the `{profile}-{scale}` preset against the published "
                      "one", widths=[16, 26, 26, 32]).data]  # fmt: skip
    for file, marked in published_marks(notebook, scale, profile, notebooks_dir).items():
        near = marked[marked["comparability"] != "not comparable"]
        shown = [c for c in marked.columns if c not in ("source", "why", "runs")]
        if not near.empty:
            digits = 4 if near["value"].abs().max() <= 1 else 1  # fractions or points
            parts.append(md_table(near, [*shown, "why"], caption=f"`{file}`: the published "
                                  "numbers our runs can be set beside", digits=digits).data)
        far = int((marked["comparability"] == "not comparable").sum())
        if far:
            parts.append(f"Not comparable in `{file}` ({far} of {len(marked)} rows): "
                         f"{reasons(marked, 'not comparable')}.")
    note = metric_note(notebook, scale, profile, notebooks_dir)
    parts.append(":::{admonition} Metric bookkeeping\n:class: note\n\n"
                 + "\n".join(f"- {line}" for line in note) + "\n:::")  # fmt: skip
    return Markdown("\n\n".join(parts) + "\n")


PRECISION_NOTEBOOKS = ("yosinski_layer_transfer", "kornblith_gains_vs_size", "l2sp_vs_bss")
"""The reproductions whose cpu protocols switched from fp32 to bf16 (issue 13)."""


def _comparison_view(table: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """A page's view of a :func:`~survey_lib.experiments.verdicts.compare_verdicts` table with
    sides labelled ``a`` (the reference) and ``b``."""
    yes_no = {True: "yes", False: "no"}
    ran = has_estimate(table, (a, b))

    def inside(column: str) -> pd.Series:
        return table[column].map(yes_no).where(ran, "not run")

    return pd.DataFrame({
        "notebook": table["notebook"],
        "table": table["table"] if "table" in table else "verdicts.csv",
        "claim": table["claim"],
        f"verdict {a}": table[f"verdict_{a}"],
        f"verdict {b}": table[f"verdict_{b}"],
        f"{a} [95 % CI]": [fmt_interval(m, lo, hi, 2) for m, lo, hi in
                           zip(table[f"mean_{a}"], table[f"ci_low_{a}"], table[f"ci_high_{a}"])],
        f"{b} [95 % CI]": [fmt_interval(m, lo, hi, 2) for m, lo, hi in
                           zip(table[f"mean_{b}"], table[f"ci_low_{b}"], table[f"ci_high_{b}"])],
        "n": table[f"n_{b}"],
        "same verdict": table["same_verdict"].map(yes_no),
        f"{b} inside the {a} CI": inside("inside_first"),
        "each inside the other's CI": inside("inside_both"),
    })  # fmt: skip


def precision_comparison(root: str | os.PathLike[str] | None = None) -> pd.DataFrame | None:
    """The committed fp32-vs-bf16 check of the three reproductions, for a page: one row per
    claim (notebook, claim, both verdicts, both estimates with their intervals, n, same
    verdict, inside the intervals), from ``precision_comparison.csv`` (written by
    ``scripts/compare_precision.py``, which also prints the runs' wall times); ``None`` when
    that file is not committed.

    Args:
        root: the scale folder holding ``precision_comparison.csv`` (default: the one holding
            the Yosinski results, :func:`experiment_dir`).
    """
    return _committed_check(root, "precision_comparison.csv", "fp32", "bf16")


def batching_comparison(root: str | os.PathLike[str] | None = None) -> pd.DataFrame | None:
    """The committed sequential-vs-batched check (``fit_many``, issue 13), for a page: the
    view of :func:`precision_comparison` over ``batching_comparison.csv`` (written by
    ``scripts/compare_batching.py``); ``None`` when that file is not committed.

    Args:
        root: the scale folder holding ``batching_comparison.csv`` (default: as
            :func:`precision_comparison`).
    """
    return _committed_check(root, "batching_comparison.csv", "sequential", "batched")


def _committed_check(root: str | os.PathLike[str] | None, name: str, a: str,
                     b: str) -> pd.DataFrame | None:
    """:func:`_comparison_view` of the committed check table ``name`` in ``root`` (default:
    the scale folder holding the Yosinski results), or ``None`` when it is not committed."""
    base = Path(root) if root is not None else experiment_dir(PRECISION_NOTEBOOKS[0]).parent
    path = base / name
    return _comparison_view(pd.read_csv(path), a, b) if path.is_file() else None


def protocol_batch_runs(name: str, scale: str = "cpu") -> int:
    """``batch_runs`` of notebook ``name``'s committed offline protocol at ``scale`` (1 when the
    protocol leaves it out: runs train one at a time)."""
    from survey_lib.reproduce import load_params

    return int(load_params(name, scale, "offline", REPO_ROOT / "notebooks").get("batch_runs", 1))


def protocol_precision(name: str, scale: str = "cpu") -> str:
    """``"bf16"`` when notebook ``name``'s committed offline protocol at ``scale`` asks for bf16
    autocast anywhere (``amp_bf16: true`` in any training mapping,
    :func:`survey_lib.train.precision.bf16_paths`), else ``"fp32"``."""
    from survey_lib.reproduce import load_params
    from survey_lib.train.precision import bf16_paths

    protocol = load_params(name, scale, "offline", REPO_ROOT / "notebooks")
    return "bf16" if bf16_paths(protocol) else "fp32"
