"""Data cards: schema, coverage of the survey's Section 4, and agreement with the loaders."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torchvision.datasets
import yaml

from survey_lib.data import PROFILES, DatasetNotFoundError, dataset_info, get_dataset, list_datasets
from survey_lib.data.cards import (
    CATEGORIES,
    FRAME_COLUMNS,
    ROLES,
    card_paths,
    cards_frame,
    expected_split_sizes,
    load_cards,
    read_card,
    registry_mismatches,
    survey_discrepancies,
    validate_card,
)

# Every dataset of the survey's Section 4 (sources 4.1, targets 4.2) plus the project's stand-ins.
SURVEY_SOURCES = (
    "imagenet_1k", "imagenet_5k", "imagenet_9k", "imagenet_21k", "jft_300m",
    "instagram_hashtags", "places365", "inaturalist",
)  # fmt: skip
SURVEY_TARGETS = (
    "cifar10", "cifar100", "voc2007", "caltech101", "caltech256", "food101", "birdsnap",
    "stanford_cars", "fgvc_aircraft", "oxford_pets", "flowers102", "cub200", "stanford_dogs",
    "sun397", "mit_indoor67", "dtd", "daimler_pedestrians", "gtsrb", "omniglot", "svhn",
    "ucf101_dynamic", "visual_decathlon",
)  # fmt: skip
STAND_INS = ("fashion_mnist", "digits", "glyphs")

PATHS = card_paths()
CARDS = {card["slug"]: card for card in load_cards(validate=False)}
WITH_LOADER = sorted(slug for slug, card in CARDS.items() if card.get("loader"))


def _valid_card() -> dict:
    return copy.deepcopy(CARDS["cifar10"])


# --- coverage and schema --------------------------------------------------------------------------


def test_every_listed_dataset_has_a_card() -> None:
    missing = sorted(set(SURVEY_SOURCES + SURVEY_TARGETS + STAND_INS) - set(CARDS))
    assert missing == []
    assert len(PATHS) == len(CARDS) >= 33  # slugs are unique


@pytest.mark.parametrize("slug", SURVEY_SOURCES)
def test_survey_sources_are_sources_in_section_4_1(slug: str) -> None:
    assert CARDS[slug]["role"] == "source"
    assert CARDS[slug]["survey_section"] == "4.1"


@pytest.mark.parametrize("slug", SURVEY_TARGETS)
def test_survey_targets_are_targets_in_section_4_2(slug: str) -> None:
    assert CARDS[slug]["role"] == "target"
    assert CARDS[slug]["survey_section"].startswith("4.2 ")


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_card_follows_schema(path: Path) -> None:
    assert validate_card(read_card(path), stem=path.stem) == []


def test_valid_card_has_no_problems() -> None:
    assert validate_card(_valid_card(), stem="cifar10") == []


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("role", "both", "role must be one of"),
        ("category", "animals", "category must be one of"),
        ("classes", -3, "classes must be a positive integer"),
        ("classes", None, "classes_note must say why"),
        ("train_size", "50k", "train_size must be a positive integer"),
        ("train_size", True, "train_size must be a positive integer"),
        ("total_size", 100, "total_size 100 is smaller"),
        ("image_size", "tiny", "image_size must start with"),
        ("homepage", "www.example.org", "homepage must be an http(s) URL"),
        ("citation_key", "Krizhevsky 2009", "citation_key must look like"),
        ("citation_key", None, "citation_key may be null only"),
        ("survey_section", "4.3", "survey_section must be null or one of"),
        ("survey_section", "4.2 Scenes", "implies category 'scenes'"),
        ("survey_section", "4.1", "4.1 lists sources"),
        ("checksums", {"a.tgz": "xyz"}, "must be a lower-case hex digest"),
        ("checksums", ["c58f30108f718f92721af3b95e74349a"], "checksums must be a mapping"),
        ("survey_stated", {"images": 5}, "unknown key 'images'"),
        ("loader_split_sizes", {"train": 0}, "must be a positive integer"),
        ("loader_reason", "spurious", "only for cards whose loader is null"),
        ("colour", "red", "unknown field 'colour'"),
        ("notes", "  ", "notes must be non-empty text"),
    ],
)
def test_broken_card_is_reported(field: str, value: object, expected: str) -> None:
    card = _valid_card()
    card[field] = value
    problems = validate_card(card)
    assert any(expected in p for p in problems), problems


def test_null_loader_needs_a_reason_and_slug_must_match_stem() -> None:
    card = _valid_card()
    card["loader"] = None
    del card["name"]
    problems = validate_card(card, stem="cifar_10")
    assert "loader is null, so loader_reason must say why" in problems
    assert "missing required field 'name'" in problems
    assert "slug 'cifar10' must equal the file stem 'cifar_10'" in problems
    card["loader_reason"] = "not needed here"
    assert "loader is null, so loader_reason must say why" not in validate_card(card)


def test_load_cards_rejects_a_broken_card_file(tmp_path: Path) -> None:
    broken = _valid_card()
    broken["role"] = "sideways"
    (tmp_path / "cifar10.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(ValueError, match=r"cifar10\.yaml: role must be one of"):
        load_cards(tmp_path)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must be a YAML mapping"):
        load_cards(tmp_path, validate=False)


def test_cards_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "digits.yaml").write_text(yaml.safe_dump(CARDS["digits"]))
    monkeypatch.setenv("SURVEY_DATA_CARDS", str(tmp_path))
    assert [c["slug"] for c in load_cards()] == ["digits"]


# --- facts worth pinning ----------------------------------------------------------------------------


def test_known_survey_discrepancies_are_recorded() -> None:
    assert survey_discrepancies(CARDS["oxford_pets"]) == {"test_size": (3369, 3669)}
    assert survey_discrepancies(CARDS["cifar10"]) == {}


@pytest.mark.parametrize("slug", sorted(CARDS))
def test_every_disagreement_with_the_survey_is_explained(slug: str) -> None:
    card = CARDS[slug]
    text = " ".join(str(card.get(k) or "") for k in ("notes", "split_note", "classes_note"))
    for field, (stated, _ours) in survey_discrepancies(card).items():
        assert str(stated) in text or f"{stated:,}" in text, f"{slug}.{field}: survey says {stated}"


def _torchvision_sources() -> str:
    folder = Path(torchvision.datasets.__file__).parent
    return "\n".join(p.read_text() for p in sorted(folder.glob("*.py")))


def test_checksums_are_torchvision_published_md5s() -> None:
    """Every MD5 on a card appears in torchvision's dataset sources (catches typos)."""
    sources = _torchvision_sources()
    checked = 0
    for slug, card in CARDS.items():
        for filename, digest in (card.get("checksums") or {}).items():
            if len(digest) != 32:
                continue  # survey_lib tensor checksums (16 digits) are not torchvision's
            assert digest in sources, f"{slug}: {filename} md5 {digest} not in torchvision"
            stem = re.sub(r"(\.tar\.gz|\.tgz|\.tar|\.zip|\.gz|\.mat|\.txt)$", "", filename)
            assert stem in sources, f"{slug}: file {filename} not named in torchvision"
            checked += 1
    assert checked >= 30


# --- agreement with the loaders ---------------------------------------------------------------------


@pytest.mark.parametrize("slug", WITH_LOADER)
def test_card_loader_is_registered(slug: str) -> None:
    assert CARDS[slug]["loader"] in list_datasets()


@pytest.mark.parametrize("slug", WITH_LOADER)
def test_card_agrees_with_registry(slug: str) -> None:
    loader = CARDS[slug]["loader"]
    if loader not in list_datasets():
        pytest.fail(f"{slug}: loader {loader!r} is not registered")
    assert registry_mismatches(CARDS[slug], dataset_info(loader)) == []


def test_every_registered_dataset_has_a_card() -> None:
    carded = {card["loader"] for card in CARDS.values()}
    registered = {n for p in PROFILES for n in list_datasets(p)}
    assert sorted(registered - carded) == []


def test_registry_mismatches_reports_disagreement() -> None:
    info = dataset_info("cifar10")
    card = _valid_card()
    assert registry_mismatches(card, info) == []
    card["classes"] = 11
    card["test_size"] = 9999
    card["image_size"] = "28x28"
    problems = registry_mismatches(card, info)
    assert "classes: card 11, registry 10" in problems
    assert "split 'test': card 9999, registry 10000" in problems
    assert any(p.startswith("image_size: card 28x28") for p in problems)
    card = copy.deepcopy(CARDS["flowers102"])
    del card["loader_split_sizes"]  # the card's train_size (train + val) is not the loader's train
    assert registry_mismatches(card, dataset_info("flowers102")) == [
        "split 'train': card 2040, registry 1020"
    ]


def _load_offline(name: str, split: str, **options: object):
    return get_dataset(name, split, cache=False, **options)


@pytest.mark.parametrize("split", ["train", "test"])
def test_digits_card_matches_loaded_data(split: str) -> None:
    card = CARDS["digits"]
    data = _load_offline("digits", split)
    assert data.num_classes == card["classes"] == 10
    assert len(data) == expected_split_sizes(card)[split]
    assert data.image_shape == (1, 8, 8)
    assert (
        len(_load_offline("digits", "train")) + len(_load_offline("digits", "test"))
        == card["total_size"]
    )


@pytest.mark.parametrize("split", ["train", "test"])
def test_fashion_mnist_card_matches_loaded_data(split: str) -> None:
    card = CARDS["fashion_mnist"]
    try:
        data = _load_offline("fashion_mnist", split, download=False)
    except DatasetNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST files not available: {exc}")
    assert data.num_classes == card["classes"]
    assert len(data) == expected_split_sizes(card)[split] == card[f"{split}_size"]
    assert data.image_shape == (1, 28, 28)


# --- the table for the book -------------------------------------------------------------------------


def test_cards_frame() -> None:
    frame = cards_frame()
    assert tuple(frame.columns) == FRAME_COLUMNS
    assert len(frame) == len(CARDS)
    assert set(frame["role"]) <= set(ROLES) and set(frame["category"]) <= set(CATEGORIES)
    roles = list(frame["role"])
    assert roles == sorted(roles, key=ROLES.index)  # sources first
    assert str(frame["classes"].dtype) == "Int64"
    row = frame.set_index("slug").loc["cifar100"]
    assert (row["classes"], row["train_size"], row["test_size"]) == (100, 50000, 10000)
    assert frame.set_index("slug")["classes"].isna().sum() == sum(
        card["classes"] is None for card in CARDS.values()
    )
