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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


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
    ``<grid>/runs/``. Each is read with :func:`survey_lib.runner.results.load_results`; the
    tables are stacked with a ``grid`` column naming the sub-folder (``""`` for the top level).
    The table is long-form: one row per run × metric with ``run_id``, the grid parameters,
    ``seed``, ``metric`` and ``value``. Without ``root`` the folder is :func:`experiment_dir`.
    """
    folder = Path(root) / name if root is not None else experiment_dir(name)
    grids = sorted(p.parent for p in folder.glob("**/runs") if p.is_dir())
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
        digits: round to this many decimals first, if given.

    Returns nothing, so a call ending a cell prints no output.
    """
    from myst_nb import glue

    number = float(value)
    if digits is not None:
        number = round(number, digits)
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


def experiment_provenance(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """One summary row for an experiment folder written by ``make reproduce``.

    Reads ``<folder>/driver.json`` (scale, wall time of the whole notebook) and every
    ``<folder>/<grid>/provenance.json`` written by :func:`survey_lib.runner.run_grid` (device,
    versions, git commit, code version, runs).

    Returns:
        ``experiment``, ``scale``, ``wall time (s)``, ``device``, ``torch``, ``git commit``,
        ``code version``, ``runs`` (finished runs over all grids), ``grids`` and ``finished``.
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


VERDICT_COLOURS = {
    "reproduced": "#d7f0d2",
    "not reproduced": "#f8d4d0",
    "inconclusive": "#f3efc9",
}
"""Background colour of each verdict in :func:`verdict_styler`."""


def verdict_styler(verdicts: pd.DataFrame, precision: int = 3):
    """A verdict table (as written by the reproduction notebooks' ``verdicts.csv``) for a page.

    Shows ``claim``, ``verdict``, the estimate with its 95 % t-interval, ``n`` (seeds) and the
    decision ``rule``, with the verdict cell coloured.

    Args:
        verdicts: columns ``claim``, ``rule``, ``mean``, ``ci_low``, ``ci_high``, ``n``,
            ``verdict``.
        precision: decimals shown for the estimate and interval.

    Returns:
        A :class:`pandas.io.formats.style.Styler`.
    """
    needed = ["claim", "rule", "mean", "ci_low", "ci_high", "n", "verdict"]
    missing = [c for c in needed if c not in verdicts.columns]
    if missing:
        raise ValueError(f"a verdict table needs columns {needed}; missing {missing}")
    unknown = sorted(set(verdicts["verdict"]) - set(VERDICT_COLOURS))
    if unknown:
        raise ValueError(f"unknown verdicts {unknown}; valid: {sorted(VERDICT_COLOURS)}")
    fmt = f"{{:.{precision}f}}"
    shown = pd.DataFrame(
        {
            "claim": verdicts["claim"],
            "verdict": verdicts["verdict"],
            "estimate": [fmt.format(float(m)) for m in verdicts["mean"]],
            "95 % interval": [
                f"[{fmt.format(float(lo))}, {fmt.format(float(hi))}]"
                for lo, hi in zip(verdicts["ci_low"], verdicts["ci_high"])
            ],
            "n": verdicts["n"].astype(int),
            "rule": verdicts["rule"],
        }
    )
    return (
        shown.style.hide(axis="index")
        .map(lambda v: f"background-color: {VERDICT_COLOURS.get(v, '')}", subset=["verdict"])
        .set_properties(subset=["rule"], **{"font-size": "0.8em"})
    )


def glue_verdicts(prefix: str, verdicts: pd.DataFrame) -> None:
    """Glue each claim's verdict text and estimate for the prose.

    For claim ``i`` (1-based, in file order) glues ``<prefix>_v<i>`` (the verdict text) and
    ``<prefix>_v<i>_mean``, ``_lo``, ``_hi`` (floats); the counts ``<prefix>_n_reproduced``,
    ``<prefix>_n_not_reproduced``, ``<prefix>_n_inconclusive`` and ``<prefix>_n_claims``.
    """
    for i, row in enumerate(verdicts.itertuples(index=False), start=1):
        glue_text(f"{prefix}_v{i}", row.verdict)
        glue_number(f"{prefix}_v{i}_mean", row.mean)
        glue_number(f"{prefix}_v{i}_lo", row.ci_low)
        glue_number(f"{prefix}_v{i}_hi", row.ci_high)
    for verdict in VERDICT_COLOURS:
        key = verdict.replace(" ", "_")
        glue_number(f"{prefix}_n_{key}", int((verdicts["verdict"] == verdict).sum()))
    glue_number(f"{prefix}_n_claims", len(verdicts))


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
        }
        verdicts = read_result_file(experiment, "verdicts.csv")
        if verdicts is not None:
            match = verdicts[verdicts["claim"].astype(str).str.startswith(f"{number}.")]
            if len(match) != 1:
                raise ValueError(
                    f"{experiment}/verdicts.csv has no claim {number}; claims: "
                    f"{[str(c).split('.')[0] for c in verdicts['claim']]}"
                )
            found = match.iloc[0]
            row.update(
                {k: found[k] for k in ("claim", "verdict", "mean", "ci_low", "ci_high", "n")}
            )
        rows.append(row)
    return pd.DataFrame(rows)
