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


def results_dir() -> Path:
    """Where experiment results are read from: ``$RESULTS_DIR`` if set, else ``<repo>/results``."""
    env = os.environ.get("RESULTS_DIR")
    return Path(env).resolve() if env else REPO_ROOT / "results"


def _check_source(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    if "source" not in df.columns:
        raise ValueError(f"{path}: every data file needs a 'source' column, got {list(df.columns)}")
    if df["source"].isna().any() or (df["source"].astype(str).str.strip() == "").any():
        raise ValueError(f"{path}: some rows have an empty 'source'")
    return df


def read_data(name: str) -> pd.DataFrame:
    """Read ``book/data/<name>.csv`` and check every row cites its ``source``."""
    path = REPO_ROOT / "book" / "data" / f"{name}.csv"
    if not path.is_file():
        valid = sorted(p.stem for p in path.parent.glob("*.csv"))
        raise ValueError(f"no data file {path.name!r}; valid names: {valid}")
    return _check_source(pd.read_csv(path), path)


def read_published(name: str) -> pd.DataFrame:
    """Read ``results/published/<name>.csv`` (numbers from papers, never ours)."""
    path = REPO_ROOT / "results" / "published" / f"{name}.csv"
    if not path.is_file():
        valid = sorted(p.stem for p in path.parent.glob("*.csv"))
        raise ValueError(f"no published table {path.name!r}; valid names: {valid}")
    return _check_source(pd.read_csv(path), path)


def load_results(name: str, root: str | os.PathLike[str] | None = None) -> pd.DataFrame | None:
    """Our tidy results of experiment ``name``, or ``None`` when none are committed.

    An experiment folder ``<root>/<name>`` holds one or more grids written by
    :func:`survey_lib.runner.run_grid`: either ``runs/`` directly or sub-folders
    ``<grid>/runs/``. Each is read with :func:`survey_lib.runner.results.load_results`; the
    tables are stacked with a ``grid`` column naming the sub-folder (``""`` for the top level).
    The table is long-form: one row per run × metric with ``run_id``, the grid parameters,
    ``seed``, ``metric`` and ``value``. ``root`` defaults to :func:`results_dir`.
    """
    folder = (Path(root) if root is not None else results_dir()) / name
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
    """A CSV written by experiment ``name`` (e.g. ``ladder.csv``), or ``None`` if absent."""
    path = results_dir() / name / filename
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


def _flat(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)[:80]
    return str(value)


def provenance_table(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """One row per ``<root>/*/provenance.json``: where and with what each result was made.

    Shows the keys found among ``git_sha``, ``dirty``, ``device``, ``torch``, ``python``,
    ``wall_time_s``, ``created``/``timestamp`` (nested ``versions``/``packages`` dicts are
    flattened). Returns an empty frame with an ``experiment`` column when there are none.
    """
    folder = Path(root) if root is not None else results_dir()
    rows = []
    for path in sorted([*folder.glob("*/provenance.json"), *folder.glob("*/*/provenance.json")]):
        with path.open() as handle:
            data = json.load(handle)
        flat = pd.json_normalize(data, sep=".").iloc[0].to_dict() if isinstance(data, dict) else {}
        row = {"experiment": str(path.parent.relative_to(folder))}
        for key, val in flat.items():
            short = key.split(".")[-1]
            if short in {
                "git_sha",
                "sha",
                "dirty",
                "device",
                "torch",
                "python",
                "wall_time_s",
                "created",
                "timestamp",
                "scale",
                "hostname",
                "gpu",
                "cpu",
            }:
                row[short] = _flat(val)
        rows.append(row)
    return pd.DataFrame(rows) if rows else pd.DataFrame({"experiment": []})


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

    folder = results_dir() / name
    return Markdown(
        ":::{admonition} Results not yet committed\n:class: warning\n\n"
        f"No results were found in `{folder.relative_to(REPO_ROOT) if folder.is_relative_to(REPO_ROOT) else folder}`"
        f". {what} Run `make reproduce` to produce them; this page shows only published numbers "
        "until then.\n:::\n"
    )
