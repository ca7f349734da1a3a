"""The protocol table of a reproduction: ours against the published protocol, aspect by aspect.

Generated from two files, so it cannot drift from what runs: the resolved protocol (what the
driver passes to the notebook, :func:`survey_lib.reproduce.load_protocol`) and the committed
facts ``results/published/protocols.yaml`` (per notebook: ``aspects``, each with the published
value and its source, the dotted ``key`` of our value in the protocol or a fixed ``ours`` for
what no key controls, and the expected ``effect`` of a difference; and ``numbers``, each
published result file described once, from which :mod:`survey_lib.comparability` marks every
row *comparable*, *same quantity, different protocol* or *not comparable*). An aspect deviates
when our value differs from ``published_value`` (default ``published``); an aspect with a
fixed ``ours`` always deviates.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from survey_lib.comparability import COMPARABILITY, SELECTIONS, mark, reasons, summary

FACTS = Path(__file__).resolve().parents[2] / "results" / "published" / "protocols.yaml"
_MISSING = object()


def load_facts(path: Path = FACTS) -> dict[str, Any]:
    """The published protocol facts; every ``numbers`` entry and aspect is checked.

    Raises:
        ValueError: a ``numbers`` entry naming no published file, without a ``match``
            mapping, with a hand-typed ``comparability`` (it is derived) or an ``ours.selection``
            outside :data:`survey_lib.comparability.SELECTIONS`; or an aspect without ``key``
            or ``ours``."""
    facts = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for notebook, entry in facts.items():
        for number in entry.get("numbers", []):
            where = f"{path}: {notebook} numbers {number.get('file')}"
            if not (path.parent / str(number.get("file"))).is_file():
                raise ValueError(f"{where}: no such file in {path.parent}")
            if not isinstance(number.get("match"), dict):
                raise ValueError(f"{where}: needs 'match', a mapping of published column -> "
                                 "dotted path of what the protocol runs")  # fmt: skip
            if "comparability" in number:
                raise ValueError(f"{where}: comparability is derived (survey_lib.comparability), "
                                 "not typed: remove it")  # fmt: skip
            selection = number.get("ours", {}).get("selection", "final")
            if selection not in SELECTIONS:
                raise ValueError(f"{where}: ours.selection {selection!r}; valid: "
                                 f"{', '.join(SELECTIONS)}")  # fmt: skip
        for aspect in entry.get("aspects", []):
            if ("key" in aspect) == ("ours" in aspect):
                raise ValueError(
                    f"{path}: {notebook} aspect {aspect.get('aspect')!r} needs exactly one of "
                    "key (a dotted path into the protocol) or ours (what the code does)"
                )
    return facts


def lookup(params: Any, key: str) -> Any:
    """The value at dotted path ``key`` (list items by index: ``targets.4.train_split``; ``*``
    gives the list of the value in every item, ``None`` where an item has none:
    ``targets.*.metric``), or the module's missing marker."""
    node = params
    parts = key.split(".")
    for n, part in enumerate(parts):
        if part == "*" and isinstance(node, (list, Mapping)):
            items = node.values() if isinstance(node, Mapping) else node
            rest = ".".join(parts[n + 1:])
            values = [lookup(item, rest) if rest else item for item in items]
            return [None if v is _MISSING else v for v in values]
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(not set)"
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix(
        "..."
    ).strip()


def rows(notebook: str, params: Mapping[str, Any], facts: Mapping[str, Any]) -> list[dict]:
    """One row per aspect: ``aspect``, ``published`` (with source), ``ours``, ``deviation``
    (``none`` or the expected effect)."""
    out = []
    for a in facts.get(notebook, {}).get("aspects", []):
        if "key" in a:
            ours = lookup(params, a["key"])
            expected = a.get("published_value", a["published"])
            same = ours is not _MISSING and ours == expected
            shown = f"{_show(ours)} ({a['key']})"
        else:
            same, shown = False, str(a["ours"])
        out.append({
            "aspect": a["aspect"],
            "published": f"{_show(a['published'])} ({a['source']})",
            "ours": shown,
            "deviation": "none" if same else f"yes: {a['effect']}",
        })
    return out


def deviating(notebook: str, params: Mapping[str, Any], facts: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    """``(aspect, key or None)`` of every aspect of the table that deviates."""
    aspects = facts.get(notebook, {}).get("aspects", [])
    return [(a["aspect"], a.get("key")) for a, r in zip(aspects, rows(notebook, params, facts))
            if r["deviation"] != "none"]  # fmt: skip


def number_marks(
    notebook: str, params: Mapping[str, Any], facts: Mapping[str, Any], folder: Path | None = None
) -> list[tuple[str, pd.DataFrame]]:
    """Every published file of ``notebook`` with each row marked by
    :func:`survey_lib.comparability.mark` (columns ``comparability`` and ``why``)."""
    folder = FACTS.parent if folder is None else folder
    dev = deviating(notebook, params, facts)
    return [(n["file"], mark(pd.read_csv(folder / n["file"]), n, params, dev))
            for n in facts.get(notebook, {}).get("numbers", [])]  # fmt: skip


def explain(
    notebook: str,
    params: Mapping[str, Any],
    *,
    scale: str = "published",
    profile: str = "paper",
    facts: Mapping[str, Any] | None = None,
) -> str:
    """The protocol table of ``notebook`` (resolved ``params``) as Markdown, followed by the
    comparability of each published result file's rows (derived, with the commonest
    reasons)."""
    facts = load_facts() if facts is None else facts
    lines = [f"## {notebook} (profile {profile}, scale {scale})", "",
             "| aspect | published (source) | ours | deviation and expected effect |",
             "|---|---|---|---|"]
    for r in rows(notebook, params, facts):
        cells = [r[k].replace("|", "/") for k in ("aspect", "published", "ours", "deviation")]
        lines.append("| " + " | ".join(cells) + " |")
    marked = number_marks(notebook, params, facts)
    if marked:
        lines += ["", "Published numbers (rows of each file; derived by survey_lib.comparability):"]
    for file, table in marked:
        lines.append(f"- results/published/{file}: {summary(table)}")
        for kind in COMPARABILITY[1:]:
            if (table["comparability"] == kind).any():
                lines.append(f"  - {kind}: {reasons(table, kind)}")
    if notebook not in facts:
        lines += ["", f"(no published protocol facts for {notebook} in {FACTS.name})"]
    return "\n".join(lines) + "\n"


__all__ = ["FACTS", "COMPARABILITY", "load_facts", "lookup", "rows", "deviating", "number_marks",
           "explain"]
