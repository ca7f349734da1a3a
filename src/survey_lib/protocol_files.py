"""Protocol files of the reproduction notebooks, resolved completely and visibly.

A protocol file ``notebooks/params/<notebook>/<stem>.yaml`` is either *complete* (it names every
parameter the notebook reads) or *derived*: it names the file it starts from and lists each
change as a dotted key with the value and the change's expected effect::

    extends: paper-published
    changes:
      finetune.steps: {value: 5000, effect: "4x fewer steps than published: about -1 point"}

A derived file is resolved by loading its base (itself resolved the same way) and applying the
changes with the driver's dotted-key overrides (:func:`survey_lib.reproduce.apply_overrides`:
``a.b.c`` sets key ``c`` of mapping ``a.b``; a list is replaced whole). Nothing is merged
silently: the offline files (``smoke/cpu/gpu.yaml``) are never read for the paper profile, and
:func:`unread_keys` reports every key of a resolved protocol that no cell reads (a key the
notebook's schema in :mod:`survey_lib.experiments.validate` does not list).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXTENDS = "extends"
CHANGES = "changes"
_MAX_DEPTH = 8


@dataclass
class ResolvedProtocol:
    """A protocol after resolution: ``params`` (what the notebook gets), ``files`` (the files
    read, base first) and ``changes`` (one record per change of a derived file: ``file``,
    ``key``, ``base`` (the value before), ``value`` and ``effect``)."""

    params: dict[str, Any]
    files: list[str] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """A JSON-ready record for ``driver.json``."""
        return {"files": list(self.files), "changes": list(self.changes), "resolved": self.params}


def _get(params: Mapping[str, Any], key: str) -> Any:
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def resolve_file(
    folder: Path,
    stem: str,
    *,
    load: Callable[[Path], Any],
    apply: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
    _depth: int = 0,
) -> ResolvedProtocol:
    """Resolve ``folder/<stem>.yaml`` (see the module docstring).

    Args:
        folder: ``notebooks/params/<notebook>``.
        stem: the file name without ``.yaml`` (``paper-gpu``).
        load: reads one YAML file into a mapping (the driver's loader, which names the file in
            its errors).
        apply: applies ``{dotted key: value}`` to a mapping, returning a copy.

    Raises:
        ValueError: a cycle of ``extends``, a ``changes`` entry without ``value`` or ``effect``,
            or ``changes`` without ``extends``.
    """
    if _depth > _MAX_DEPTH:
        raise ValueError(f"{folder / stem}.yaml: 'extends' nests deeper than {_MAX_DEPTH} files")
    path = folder / f"{stem}.yaml"
    raw = dict(load(path))
    base_stem = raw.pop(EXTENDS, None)
    changes = raw.pop(CHANGES, None)
    if base_stem is None:
        if changes is not None:
            raise ValueError(f"{path}: 'changes' needs 'extends: <file stem>' (the base file)")
        return ResolvedProtocol(raw, [path.name], [])
    if raw:
        raise ValueError(
            f"{path}: a file with 'extends' holds only 'extends' and 'changes' (every change "
            f"stated with its effect); found also {', '.join(sorted(raw))}"
        )
    base = resolve_file(folder, str(base_stem), load=load, apply=apply, _depth=_depth + 1)
    records = []
    for key, change in (changes or {}).items():
        if not isinstance(change, Mapping) or "value" not in change or not change.get("effect"):
            raise ValueError(
                f"{path}: changes.{key} must be a mapping {{value: ..., effect: '...'}} (the "
                f"expected effect of the change is required), got {change!r}"
            )
        records.append(
            {"file": path.name, "key": str(key), "base": _get(base.params, str(key)),
             "value": change["value"], "effect": str(change["effect"])}
        )
    params = apply(base.params, {r["key"]: r["value"] for r in records})
    return ResolvedProtocol(params, [*base.files, path.name], [*base.changes, *records])


def _closed(schema: Mapping[str, Any]) -> bool:
    """An object schema lists every key a cell reads, except a regularizer spec (its
    hyperparameters are checked against the regularizer's signature instead)."""
    props = schema.get("properties")
    return bool(props) and set(props) != {"regularizer"}


def _walk(schema: Mapping[str, Any], value: Any, where: str) -> list[str]:
    if "anyOf" in schema:
        branches = [b for b in schema["anyOf"] if b.get("type") == "object"]
        return _walk(branches[0], value, where) if branches and isinstance(value, Mapping) else []
    out: list[str] = []
    if isinstance(value, Mapping) and schema.get("type") == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            here = f"{where}.{key}" if where else str(key)
            if key in props:
                out += _walk(props[key], sub, here)
            elif isinstance(extra, Mapping):
                out += _walk(extra, sub, here)
            elif _closed(schema):
                out.append(here)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            out += _walk(schema["items"], item, f"{where}[{i}]")
    return out


def unread_keys(notebook: str, params: Mapping[str, Any]) -> list[str]:
    """Dotted paths of ``params`` that no cell of ``notebook`` reads: keys of a mapping whose
    schema (``survey_lib.experiments.validate.SCHEMAS``) lists its keys, that it does not
    list (top-level names the notebook does not declare are the driver's own check)."""
    from survey_lib.experiments.validate import SCHEMAS

    schema = SCHEMAS.get(notebook)
    if schema is None:
        return []
    known = schema["properties"]
    return [p for key, value in params.items() if key in known
            for p in _walk(known[key], value, key)]


def format_protocol(name: str, resolved: ResolvedProtocol) -> str:
    """The fully resolved protocol as YAML, headed by the files read and each change."""
    import yaml

    lines = [f"protocol of {name}: {' <- '.join(reversed(resolved.files))}"]
    for c in resolved.changes:
        lines.append(f"  change ({c['file']}) {c['key']}: {c['base']!r} -> {c['value']!r}: "
                     f"{c['effect']}")
    body = yaml.safe_dump(resolved.params, sort_keys=False, default_flow_style=None, width=100)
    lines += [f"  {line}" for line in body.rstrip().splitlines()]
    return "\n".join(lines)


__all__ = ["EXTENDS", "CHANGES", "ResolvedProtocol", "resolve_file", "unread_keys",
           "format_protocol"]
