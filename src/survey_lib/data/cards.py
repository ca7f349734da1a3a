"""Data cards: one YAML file per dataset of the survey's Section 4 (plus the project's stand-ins).

A card records what a dataset is (classes, split sizes, image size), where it comes from
(homepage, licence, citation key, archive checksums), where the survey discusses it, and which
``survey_lib`` loader serves it, or why none does. Cards live in ``data_cards/`` at the
repository root (override with the ``SURVEY_DATA_CARDS`` environment variable); the schema is
described in ``data_cards/README.md`` and enforced by :func:`validate_card`.

The survey is Plested and Gedeon, "Deep transfer learning for image classification: a survey",
arXiv 2022, https://arxiv.org/abs/2205.09904; Section 4 lists the datasets.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROLES = ("source", "target")
CATEGORIES = ("general", "fine-grained", "scenes", "other")
SURVEY_SECTIONS = ("4.1", "4.2 General", "4.2 Fine-grained", "4.2 Scenes", "4.2 Others")
"""Allowed ``survey_section`` values (``null`` for datasets the survey does not list)."""

_SECTION_CATEGORY = {
    "4.2 General": "general",
    "4.2 Fine-grained": "fine-grained",
    "4.2 Scenes": "scenes",
    "4.2 Others": "other",
}

REQUIRED_FIELDS = (
    "name",
    "slug",
    "role",
    "category",
    "classes",
    "train_size",
    "test_size",
    "image_size",
    "licence",
    "homepage",
    "citation_key",
    "survey_section",
    "loader",
    "checksums",
    "notes",
)
OPTIONAL_FIELDS = (
    "classes_note",
    "total_size",
    "loader_reason",
    "loader_split_sizes",
    "split_note",
    "survey_stated",
    "other_citation_keys",
    "aliases",
)
SIZE_FIELDS = ("train_size", "test_size", "total_size")
SURVEY_STATED_KEYS = ("classes", "train_size", "test_size", "total_size")

_SLUG = re.compile(r"^[a-z][a-z0-9_]*$")
_CITATION_KEY = re.compile(r"^[a-z]+[0-9]{4}[a-z0-9]+$")
_IMAGE_SIZE = re.compile(r"^([0-9]+x[0-9]+\b|[0-9]+ pixels|variable|set at render time)")
_FIXED_SIZE = re.compile(r"^([0-9]+)x([0-9]+)\b")
_HEX_DIGEST = re.compile(r"^(?:[0-9a-f]{16}|[0-9a-f]{32}|[0-9a-f]{64})$")

FRAME_COLUMNS = (
    "name",
    "slug",
    "role",
    "category",
    "classes",
    "train_size",
    "test_size",
    "total_size",
    "image_size",
    "survey_section",
    "loader",
    "licence",
    "citation_key",
    "homepage",
)


def default_cards_dir() -> Path:
    """The folder holding the cards: ``$SURVEY_DATA_CARDS`` if set, else ``<repo>/data_cards``.

    Raises:
        FileNotFoundError: neither location exists (e.g. an installed wheel without the repo).
    """
    env = os.environ.get("SURVEY_DATA_CARDS")
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"SURVEY_DATA_CARDS={env!r} is not a directory")
        return path
    # src/survey_lib/data/cards.py -> parents[3] is the repository root.
    path = Path(__file__).resolve().parents[3] / "data_cards"
    if not path.is_dir():
        raise FileNotFoundError(
            f"no data_cards folder at {path}; set SURVEY_DATA_CARDS to the folder of *.yaml cards"
        )
    return path


def card_paths(directory: str | Path | None = None) -> list[Path]:
    """Sorted ``*.yaml`` card files in ``directory`` (default :func:`default_cards_dir`).

    ``schema.yaml`` is not a card and is skipped.
    """
    folder = Path(directory) if directory is not None else default_cards_dir()
    return sorted(p for p in folder.glob("*.yaml") if p.stem != "schema")


def read_card(path: str | Path) -> dict[str, Any]:
    """Parse one card with ``yaml.safe_load``.

    Raises:
        ValueError: the file is not a YAML mapping.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        card = yaml.safe_load(handle)
    if not isinstance(card, dict):
        raise ValueError(f"{path}: a data card must be a YAML mapping, got {type(card).__name__}")
    return card


def load_cards(
    directory: str | Path | None = None, *, validate: bool = True
) -> list[dict[str, Any]]:
    """Every card in ``directory``, sorted by slug.

    Args:
        directory: folder of ``*.yaml`` cards; default :func:`default_cards_dir`.
        validate: raise if any card breaks the schema (:func:`validate_card`, with the file
            stem as the expected slug).

    Raises:
        ValueError: a card is not a mapping, or (with ``validate``) lists every problem found.
    """
    cards = []
    problems = []
    for path in card_paths(directory):
        card = read_card(path)
        if validate:
            problems += [f"{path.name}: {p}" for p in validate_card(card, stem=path.stem)]
        cards.append(card)
    if problems:
        raise ValueError("invalid data cards:\n  " + "\n  ".join(problems))
    return sorted(cards, key=lambda c: str(c.get("slug")))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _check_sizes(card: Mapping[str, Any]) -> list[str]:
    problems = []
    for key in ("classes", *SIZE_FIELDS):
        value = card.get(key)
        if value is not None and not (_is_int(value) and value > 0):
            problems.append(f"{key} must be a positive integer or null, got {value!r}")
    if card.get("classes") is None and "classes" in card and not _is_text(card.get("classes_note")):
        problems.append("classes is null, so classes_note must say why")
    sizes = [card.get(k) for k in SIZE_FIELDS]
    if all(_is_int(v) for v in sizes) and sizes[2] < sizes[0] + sizes[1]:
        problems.append(
            f"total_size {sizes[2]} is smaller than train_size + test_size = {sizes[0] + sizes[1]}"
        )
    return problems


def _check_mapping_of_ints(
    card: Mapping[str, Any], key: str, allowed: tuple[str, ...] | None
) -> list[str]:
    value = card.get(key)
    if value is None:
        return []
    if not isinstance(value, dict) or not value:
        return [f"{key} must be a non-empty mapping, got {value!r}"]
    problems = []
    for name, count in value.items():
        if allowed is not None and name not in allowed:
            problems.append(f"{key} has unknown key {name!r}; valid keys: {', '.join(allowed)}")
        if not (_is_int(count) and count > 0):
            problems.append(f"{key}[{name!r}] must be a positive integer, got {count!r}")
    return problems


def _check_checksums(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [f"checksums must be a mapping file -> hex digest (or null), got {value!r}"]
    return [
        f"checksums[{name!r}] must be a lower-case hex digest of 16, 32 (MD5) or 64 (SHA-256) "
        f"digits, got {digest!r}"
        for name, digest in value.items()
        if not (isinstance(digest, str) and _HEX_DIGEST.match(digest))
    ]


def validate_card(card: Mapping[str, Any], *, stem: str | None = None) -> list[str]:
    """Every way ``card`` breaks the data-card schema (an empty list means it is valid).

    Args:
        card: one parsed card.
        stem: the card's file stem; when given, ``slug`` must equal it.

    Returns:
        Human-readable problems, each naming the field, what it holds and what is valid.
    """
    if not isinstance(card, Mapping):
        return [f"a card must be a mapping, got {type(card).__name__}"]
    problems = [f"missing required field {key!r}" for key in REQUIRED_FIELDS if key not in card]
    known = set(REQUIRED_FIELDS) | set(OPTIONAL_FIELDS)
    problems += [
        f"unknown field {key!r}; valid fields: {', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)}"
        for key in card
        if key not in known
    ]
    for key in ("name", "licence", "notes"):
        if key in card and not _is_text(card[key]):
            problems.append(f"{key} must be non-empty text, got {card[key]!r}")
    slug = card.get("slug")
    if "slug" in card and not (isinstance(slug, str) and _SLUG.match(slug)):
        problems.append(f"slug must be lower-case letters, digits and underscores, got {slug!r}")
    if stem is not None and slug != stem:
        problems.append(f"slug {slug!r} must equal the file stem {stem!r}")
    if "role" in card and card["role"] not in ROLES:
        problems.append(f"role must be one of {', '.join(ROLES)}, got {card['role']!r}")
    if "category" in card and card["category"] not in CATEGORIES:
        problems.append(
            f"category must be one of {', '.join(CATEGORIES)}, got {card['category']!r}"
        )
    section = card.get("survey_section")
    if section is not None and section not in SURVEY_SECTIONS:
        problems.append(
            f"survey_section must be null or one of {', '.join(SURVEY_SECTIONS)}, got {section!r}"
        )
    if section == "4.1" and card.get("role") != "source":
        problems.append(f"survey_section 4.1 lists sources, but role is {card.get('role')!r}")
    if section in _SECTION_CATEGORY:
        if card.get("role") != "target":
            problems.append(
                f"survey_section {section} lists targets, but role is {card.get('role')!r}"
            )
        if card.get("category") != _SECTION_CATEGORY[section]:
            problems.append(
                f"survey_section {section} implies category {_SECTION_CATEGORY[section]!r}, "
                f"got {card.get('category')!r}"
            )
    problems += _check_sizes(card)
    image_size = card.get("image_size")
    if "image_size" in card and not (isinstance(image_size, str) and _IMAGE_SIZE.match(image_size)):
        problems.append(
            "image_size must start with 'WxH' (e.g. '32x32'), 'N pixels', 'variable' or "
            f"'set at render time', got {image_size!r}"
        )
    homepage = card.get("homepage")
    if homepage is not None and not (
        isinstance(homepage, str) and re.match(r"^https?://\S+$", homepage)
    ):
        problems.append(f"homepage must be an http(s) URL or null, got {homepage!r}")
    key = card.get("citation_key")
    if key is not None and not (isinstance(key, str) and _CITATION_KEY.match(key)):
        problems.append(
            f"citation_key must look like 'krizhevsky2009cifar' or be null, got {key!r}"
        )
    if "citation_key" in card and key is None and section is not None:
        problems.append("citation_key may be null only for datasets the survey does not list")
    others = card.get("other_citation_keys")
    if others is not None and not (
        isinstance(others, list)
        and all(isinstance(k, str) and _CITATION_KEY.match(k) for k in others)
    ):
        problems.append(f"other_citation_keys must be a list of BibTeX keys, got {others!r}")
    loader = card.get("loader")
    if loader is None and "loader" in card and not _is_text(card.get("loader_reason")):
        problems.append("loader is null, so loader_reason must say why")
    if loader is not None:
        if not (isinstance(loader, str) and _SLUG.match(loader)):
            problems.append(f"loader must be a survey_lib registry name or null, got {loader!r}")
        if card.get("loader_reason") is not None:
            problems.append("loader_reason is only for cards whose loader is null")
        if card.get("loader_split_sizes") is not None and not isinstance(
            card["loader_split_sizes"], dict
        ):
            problems.append("loader_split_sizes must map split name -> size")
    elif card.get("loader_split_sizes") is not None:
        problems.append("loader_split_sizes is only for cards with a loader")
    problems += _check_mapping_of_ints(card, "loader_split_sizes", None)
    problems += _check_mapping_of_ints(card, "survey_stated", SURVEY_STATED_KEYS)
    if "checksums" in card:
        problems += _check_checksums(card["checksums"])
    for text_key in ("split_note", "classes_note", "loader_reason"):
        value = card.get(text_key)
        if value is not None and not _is_text(value):
            problems.append(f"{text_key} must be non-empty text or absent, got {value!r}")
    aliases = card.get("aliases")
    if aliases is not None and not (
        isinstance(aliases, list) and all(_is_text(a) for a in aliases)
    ):
        problems.append(f"aliases must be a list of names, got {aliases!r}")
    return problems


def expected_split_sizes(card: Mapping[str, Any]) -> dict[str, int]:
    """Split sizes the card promises for its loader.

    ``loader_split_sizes`` when the card gives it (datasets without an official split, or whose
    loader uses another split than the official one), else the known ones of
    ``train_size``/``test_size`` under the split names ``train``/``test``.
    """
    if card.get("loader_split_sizes"):
        return {str(k): int(v) for k, v in card["loader_split_sizes"].items()}
    return {
        split: int(card[key])
        for split, key in (("train", "train_size"), ("test", "test_size"))
        if card.get(key) is not None
    }


def registry_mismatches(card: Mapping[str, Any], info: Any) -> list[str]:
    """Where a card disagrees with its loader's registry metadata.

    Args:
        card: a card with a ``loader``.
        info: that loader's :class:`~survey_lib.data.registry.DatasetInfo` (anything with
            ``num_classes``, ``split_sizes`` and optionally ``image_shape``).

    Returns:
        One line per disagreement in class count, split sizes (every split of
        ``loader_split_sizes`` must match, and no registry split may be missing from it) or,
        for a fixed ``image_size`` such as ``"32x32"``, the declared image shape; empty when
        all agree.
    """
    problems = []
    if card.get("classes") is not None and card["classes"] != info.num_classes:
        problems.append(f"classes: card {card['classes']}, registry {info.num_classes}")
    registry_sizes = dict(info.split_sizes or {})
    expected = expected_split_sizes(card)
    for split, size in expected.items():
        if split not in registry_sizes:
            problems.append(f"split {split!r}: card {size}, registry declares no size for it")
        elif registry_sizes[split] != size:
            problems.append(f"split {split!r}: card {size}, registry {registry_sizes[split]}")
    if card.get("loader_split_sizes"):
        problems += [
            f"split {split!r}: registry {size}, missing from the card's loader_split_sizes"
            for split, size in registry_sizes.items()
            if split not in expected
        ]
    fixed = _FIXED_SIZE.match(str(card.get("image_size", "")))
    shape = getattr(info, "image_shape", None)
    if fixed and shape is not None:
        width, height = int(fixed.group(1)), int(fixed.group(2))
        if (height, width) != tuple(shape[-2:]):
            problems.append(
                f"image_size: card {width}x{height} (WxH), registry (H, W) = {tuple(shape[-2:])}"
            )
    return problems


def survey_discrepancies(card: Mapping[str, Any]) -> dict[str, tuple[int, int | None]]:
    """Fields where the survey's stated figure differs from the card's value.

    Returns:
        ``{field: (survey value, card value)}``; a card value of ``None`` means we could not
        verify the survey's figure.
    """
    stated = card.get("survey_stated") or {}
    return {key: (value, card.get(key)) for key, value in stated.items() if card.get(key) != value}


def cards_frame(directory: str | Path | None = None) -> pd.DataFrame:
    """One row per card (validated), sources first, then by category and name.

    Columns: :data:`FRAME_COLUMNS`; size columns use pandas' nullable ``Int64`` so unknown
    sizes stay missing instead of becoming floats.
    """
    cards = load_cards(directory)
    frame = pd.DataFrame([{col: card.get(col) for col in FRAME_COLUMNS} for card in cards])
    for col in ("classes", *SIZE_FIELDS):
        frame[col] = frame[col].astype("Int64")
    frame["role"] = pd.Categorical(frame["role"], categories=ROLES, ordered=True)
    frame["category"] = pd.Categorical(frame["category"], categories=CATEGORIES, ordered=True)
    return frame.sort_values(["role", "category", "name"], ignore_index=True)
