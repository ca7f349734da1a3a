"""The book's data files cite their sources, citations resolve, and derived tables are right.

Fast (no build): runs with the ordinary test suite.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from survey_lib import book

ROOT = Path(__file__).resolve().parents[2]


def _bib_keys() -> set[str]:
    text = (ROOT / "references.bib").read_text(encoding="utf-8")
    return set(re.findall(r"^@\w+\{([^,]+),", text, flags=re.M))


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "book" / "data").glob("*.csv"))
    + sorted((ROOT / "results" / "published").glob("*.csv")),
    ids=lambda p: p.name,
)
def test_every_row_has_a_source_that_cites_a_bib_key(path: Path) -> None:
    df = pd.read_csv(path)
    assert "source" in df.columns
    keys = _bib_keys()
    for source in df["source"]:
        cited = re.findall(r"[a-z]+\d{4}[a-z0-9]+", str(source))
        assert cited and all(c in keys for c in cited), (
            f"{path.name}: {source!r} cites no known key"
        )


def test_every_citation_in_the_book_is_in_the_bibliography() -> None:
    keys = _bib_keys()
    cited: set[str] = set()
    for page in (ROOT / "book").glob("*.md"):
        for group in re.findall(r"\{cite:[pt]\}`([^`]+)`", page.read_text(encoding="utf-8")):
            cited.update(k.strip() for k in group.split(","))
    assert cited, "no citations found"
    assert not cited - keys, f"cited but not in references.bib: {sorted(cited - keys)}"


def test_rank_column_ties_share_the_best_rank() -> None:
    ranks = book.rank_column([17.9, 11.3, 11.3, 6.7])
    assert ranks.tolist() == [1, 2, 2, 4]
    with pytest.raises(ValueError, match="method must be one of"):
        book.rank_column([1.0], method="bogus")


def test_survey_table2_ranks_recompute_and_table4_tie_is_flagged() -> None:
    gains = book.read_data("survey_table2_kornblith_gains")
    t2 = book.rank_check(gains, "increase", "survey_rank_table2")
    assert t2["agrees"].all()
    room = gains[(gains["baseline"] <= 88) & gains["type"].isin(["fine-grained", "textures"])]
    t4 = book.rank_check(room, "increase", "survey_rank_table4")
    assert set(t4.loc[~t4["agrees"], "dataset"]) == {"Describable Textures"}
    assert t4.loc[t4["dataset"] == "Oxford-IIIT Pets", "tied"].item()


def test_figure1_data_matches_torchvision_metadata() -> None:
    committed = book.read_data("imagenet_top1_vs_params").set_index("model")
    live = book.torchvision_imagenet_table().set_index("model")
    assert set(committed.index) == set(live.index)
    pd.testing.assert_series_equal(
        committed["top1"].sort_index(), live["top1"].sort_index(), check_names=False
    )


def test_read_data_rejects_unknown_names_and_missing_sources(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid names"):
        book.read_data("no_such_table")
    bad = tmp_path / "x.csv"
    bad.write_text("a,source\n1,\n")
    with pytest.raises(ValueError, match="empty 'source'"):
        book._check_source(pd.read_csv(bad), bad)


def test_api_page_lists_every_public_module() -> None:
    text = "".join(
        p.read_text(encoding="utf-8") for p in [ROOT / "book" / "api.md", *(ROOT / "book" / "api").glob("*.md")]
    )
    listed = set(re.findall(r"\.\. automodule:: (\S+)", text))
    modules = set()
    for path in (ROOT / "src" / "survey_lib").rglob("*.py"):
        parts = list(path.relative_to(ROOT / "src").with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if not any(p.startswith("_") for p in parts):
            modules.add(".".join(parts))
    assert modules - listed == set(), f"add to book/api/<subpackage>.md: {sorted(modules - listed)}"


README_FINDINGS = {
    "Yosinski, Fashion-MNIST halves": "yosinski_layer_transfer/verdicts.csv",
    "Yosinski, Latin glyph halves": "yosinski_layer_transfer/verdicts_glyphs.csv",
    "Kornblith": "kornblith_gains_vs_size/verdicts.csv",
    "L2-SP / BSS": "l2sp_vs_bss/verdicts.csv",
    "transferability measures": "transferability_ranking/verdicts.csv",
    "the survey's recommendations": "best_practice_quadrants/verdicts.csv",
}


def test_readme_findings_table_matches_the_committed_verdicts() -> None:
    """The README's "What the committed cpu results say" table is typed; it must equal the files."""
    from survey_lib import book

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] in README_FINDINGS:
            rows[cells[0]] = cells[1:]
    assert set(rows) == set(README_FINDINGS), "the README findings table lost a row"
    for label, name in README_FINDINGS.items():
        table = book.read_verdict_table(ROOT / "results" / "cpu" / name)
        counts = book.verdict_counts(table)
        expected = [str(int(table["n"].max())), str(len(table)), str(counts["reproduced"]),
                    str(counts["absent at this scale"]), str(counts["reversed"]),
                    str(counts["inconclusive"])]
        assert rows[label] == expected, f"README row {label!r}: {rows[label]} != files {expected}"
