"""Which published numbers our numbers can be compared with, row by row, derived from facts.

A published result file (``results/published/<file>.csv``) is described once in
``results/published/protocols.yaml`` (a ``numbers`` entry of its reproduction), never number by
number::

    - file: tllib_regularizers.csv
      match: {dataset: targets.*.dataset, method: methods, sampling_rate: rates}
      names: {method: {ERM (L2): L2}, sampling_rate: {"15": 0.15, "100": 1.0}}
      also: {}
      ours: {metric: [top1], selection: final}
      scopes: {}

Each row is then marked, from the resolved protocol and the protocol table's aspects:

1. **not comparable** when a ``match`` column names something the protocol does not run (the
   dotted path lists what runs: ``*`` walks every item of a list or mapping; a list gives its
   items, a mapping its keys; ``names`` translates published names to ours and dataset names
   go through the data cards' names and aliases; ``also`` adds values that always run), or
   when the row's ``metric`` is not the one we compare it with (an error is the same quantity
   as its accuracy: ``top1_error`` is :math:`100 - \\text{top1}`). Ours is ``ours.metric``
   (a list), or, with ``ours.metric_key`` (a dotted path into the protocol, e.g.
   ``targets.*.metric``), the protocol's value there for the row's item (the item its ``*``
   match took), translated by ``ours.metrics`` (e.g. ``test_acc_mean_per_class:
   mean_per_class_acc``); where the protocol sets none, ``ours.metric_default`` (translated
   the same way) or else ``ours.metric``;
2. **same quantity, different protocol** when an aspect of the protocol table that concerns
   the row deviates (an aspect whose key passes through one item of a ``*`` path, e.g.
   ``targets.2.train_split``, concerns only the rows of that item; the ``metric`` aspect is
   the row's own ``metric`` and ``selection``; ``scopes`` maps a column's values to the
   protocol section that runs them, e.g. ``setting: {fine_tuned: finetune}``, so an aspect
   under ``finetune.`` concerns only fine-tuned rows), or the row's ``selection`` (which result of a
   run is reported: ``final``, ``best_epoch_test``, ``mean_10_best_val``, ``not_stated``)
   differs from ours (``ours.selection``; with ``ours.selection_key``, the protocol value at
   that key, translated by ``ours.selections``);
3. **comparable** otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

CARDS = Path(__file__).resolve().parents[2] / "data_cards"
COMPARABILITY = ("comparable", "same quantity, different protocol", "not comparable")
#: Metrics that are the same quantity (an error is 100 minus its accuracy, in points).
SAME_QUANTITY = {"top1_error": "top1", "mean_per_class_error": "mean_per_class_acc"}
SELECTIONS = ("final", "best_epoch_test", "mean_10_best_val", "not_stated")
#: What each ``metric`` label of a published file means.
METRIC_WORDS = {
    "top1": "top-1 accuracy",
    "top1_error": "top-1 error",
    "mean_per_class_acc": "mean per-class accuracy",
    "mean_per_class_error": "mean per-class error",
    "map_11pt": "11-point mean average precision",
    "top1_change_vs_base": "change of top-1 accuracy against the base network",
}
#: Which result of a run each ``selection`` label reports.
SELECTION_WORDS = {
    "final": "the model at the end of training",
    "best_epoch_test": "the best epoch on the test set (optimistic)",
    "mean_10_best_val": "the mean of the run's 10 best validation scores (optimistic)",
    "not_stated": "not stated in the source",
}
_MISSING = object()


def _norm(value: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(value).lower())


@lru_cache(maxsize=1)
def dataset_names(cards: Path = CARDS) -> dict[str, str]:
    """Every data card's slug, name and aliases (normalised: lower case, letters and digits)
    -> its slug."""
    out: dict[str, str] = {}
    for path in sorted(cards.glob("*.yaml")):
        card = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        slug = str(card.get("slug", path.stem))
        for name in [slug, card.get("name", ""), *card.get("aliases", [])]:
            out.setdefault(_norm(name), slug)
            out.setdefault(_norm(str(name).split(" (")[0]), slug)
    return out


def _walk(node: Any, parts: list[str]) -> list[tuple[str | None, Any]]:
    """``(item, value)`` at dotted ``parts`` (``*`` over items; ``item`` is the key or index
    the ``*`` took, ``None`` without one)."""
    if not parts:
        return [(None, node)]
    head, rest = parts[0], parts[1:]
    if head == "*":
        items = node.items() if isinstance(node, Mapping) else enumerate(node or [])
        return [(str(i), v) for i, child in items for _, v in _walk(child, rest)]
    if isinstance(node, Mapping) and head in node:
        return _walk(node[head], rest)
    if isinstance(node, list) and head.isdigit() and int(head) < len(node):
        return _walk(node[int(head)], rest)
    return []


def run_values(params: Mapping[str, Any], path: str) -> list[tuple[str | None, Any]]:
    """What the protocol runs at ``path``: ``(item, value)`` pairs (a list gives its items, a
    mapping its keys)."""
    out = []
    for item, node in _walk(params, path.split(".")):
        values = list(node) if isinstance(node, (list, Mapping)) else [node]
        out += [(item, v) for v in values]
    return out


def _same(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        names = dataset_names()
        return names.get(_norm(a), _norm(a)) == names.get(_norm(b), _norm(b))


def _ours_selection(spec: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    ours = spec.get("ours", {})
    key = ours.get("selection_key")
    if key:
        [*found] = [v for _, v in _walk(params, key.split("."))]
        if found:
            return str(ours.get("selections", {}).get(str(found[0]), found[0]))
    return str(ours.get("selection", "final"))


def mark(
    table: pd.DataFrame,
    spec: Mapping[str, Any],
    params: Mapping[str, Any],
    deviating: Sequence[tuple[str, str | None]],
) -> pd.DataFrame:
    """``table`` (one published file) with ``comparability`` and ``why`` columns.

    Args:
        spec: the file's ``numbers`` entry (module docstring).
        params: the resolved protocol.
        deviating: ``(aspect, key or None)`` of every deviating aspect of the protocol table.
    """
    match, names, also = spec.get("match", {}), spec.get("names", {}), spec.get("also", {})
    ours = spec.get("ours", {})
    default_metrics = [str(m) for m in ours.get("metric", ["top1"])]
    selection = _ours_selection(spec, params)
    runs = {col: run_values(params, path) for col, path in match.items()}
    scopes = spec.get("scopes", {})
    marks, whys = [], []
    for row in table.to_dict("records"):
        wanted = {col: names.get(col, {}).get(str(row[col]), row[col]) for col in match}
        taken: dict[str, tuple[set[str | None], set[str]]] = {}
        missing = []
        for col, value in wanted.items():
            hits = [(item, v) for item, v in runs[col] if _same(v, value)]
            if not hits and not any(_same(v, value) for v in also.get(col, [])):
                missing.append(f"{col} {row[col]} not run here")
            taken[match[col]] = ({i for i, _ in hits}, {str(v) for _, v in hits})
        metric = str(row.get("metric", ""))
        ours_metrics = _row_metrics(ours, params, taken) or default_metrics
        if SAME_QUANTITY.get(metric, metric) not in [SAME_QUANTITY.get(m, m) for m in ours_metrics]:
            missing.append(f"published {metric}, ours {' / '.join(ours_metrics)}")
        if missing:
            marks.append(COMPARABILITY[2])
            whys.append("; ".join(missing))
            continue
        scope = {col: (set(table_.values()), table_.get(str(row.get(col))))
                 for col, table_ in scopes.items()}
        differ = [a for a, key in deviating
                  if a != "metric" and _concerns(key, taken) and _in_scope(key, scope)]
        published_selection = str(row.get("selection", "not_stated"))
        if published_selection != selection:
            differ.append(f"selection (published {published_selection}, ours {selection})")
        marks.append(COMPARABILITY[1] if differ else COMPARABILITY[0])
        whys.append("; ".join(differ))
    return table.assign(comparability=marks, why=whys)


def _row_metrics(
    ours: Mapping[str, Any],
    params: Mapping[str, Any],
    taken: Mapping[str, tuple[set[str | None], set[str]]],
) -> list[str]:
    """The published metric labels the protocol compares a row with: the values at
    ``ours.metric_key`` (only the items that the row's ``*`` match path with the same prefix
    took), translated by ``ours.metrics``; empty when there is no key or no value there."""
    key = ours.get("metric_key")
    if not key:
        return []
    found = _walk(params, str(key).split("."))
    if "*" in str(key):
        prefix = str(key).split(".*")[0] + ".*"
        items = [its for path, (its, _) in taken.items() if path.startswith(prefix)]
        if items:
            found = [(i, v) for i, v in found if i in items[0]]
    names = ours.get("metrics", {})
    if not found and "metric_default" in ours:
        found = [(None, ours["metric_default"])]
    return list(dict.fromkeys(str(names.get(str(v), v)) for _, v in found))


def _concerns(key: str | None, taken: Mapping[str, tuple[set[str | None], set[str]]]) -> bool:
    """Whether an aspect at ``key`` concerns a row that matched ``taken`` (per ``match``
    path: the items its ``*`` took and the values it matched): an aspect under one item of a
    ``*`` path (``targets.2.x``), or under one key of a matched mapping (``methods.DELTA.x``),
    concerns the rows of that item or key only."""
    if not key:
        return True
    for path, (items, values) in taken.items():
        if "*" in path:
            prefix = path.split(".*")[0] + "."
            if key.startswith(prefix):
                return key[len(prefix):].split(".")[0] in items
        elif key.startswith(path + "."):
            return key[len(path) + 1:].split(".")[0] in values
    return True


def _in_scope(key: str | None, scope: Mapping[str, tuple[set[str], str | None]]) -> bool:
    """Whether an aspect at ``key`` concerns the row's scope (``scopes``: a column's values ->
    the protocol section that runs them, e.g. ``setting: {fine_tuned: finetune}``): an aspect
    under one section concerns only the rows of that section."""
    if not key:
        return True
    head = key.split(".")[0]
    return all(head not in sections or head == own for sections, own in scope.values())


def summary(marked: pd.DataFrame) -> str:
    """``N comparable, M same quantity, different protocol, K not comparable`` of a file."""
    counts = marked["comparability"].value_counts()
    return ", ".join(f"{int(counts.get(c, 0))} {c}" for c in COMPARABILITY)


def reasons(marked: pd.DataFrame, kind: str) -> str:
    """The reasons of the rows marked ``kind``, each once with its row count, commonest first
    (a row may have several): ``dataset CUB-200 not run here (16 rows); ...``."""
    counts: dict[str, int] = {}
    for why in marked.loc[marked["comparability"] == kind, "why"]:
        for part in filter(None, str(why).split("; ")):
            counts[part] = counts.get(part, 0) + 1
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return "; ".join(f"{why} ({n} row{'s' * (n > 1)})" for why, n in ordered)


def ours_selection(spec: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    """Which result of a run our numbers for this file report (a :data:`SELECTIONS` label)."""
    return _ours_selection(spec, params)


__all__ = ["COMPARABILITY", "SELECTIONS", "SAME_QUANTITY", "METRIC_WORDS", "SELECTION_WORDS",
           "dataset_names", "run_values", "mark", "summary", "reasons", "ours_selection"]  # fmt: skip
