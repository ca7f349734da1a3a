"""The book builds with warnings as errors (-W) and every cross-reference checked (-n)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.book

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"


def test_book_builds_without_warnings(built_book) -> None:
    log = built_book.stdout + built_book.stderr
    warnings = [
        line
        for line in log.splitlines()
        if re.search(r"WARNING: (?!Kernel is running)", line) and "IPKernelApp" not in line
    ]
    assert built_book.returncode == 0, log[-5000:]
    assert not warnings, "\n".join(warnings[:30])


def test_every_chapter_rendered(built_book, chapters) -> None:
    assert len(chapters) >= 7
    for chapter in chapters:
        page = HTML / "book" / f"{chapter}.html"
        assert page.is_file(), f"{page} was not built"
        text = page.read_text(encoding="utf-8")
        assert "Traceback" not in text, f"{chapter} shows a traceback"
        assert "cell_output" in text or "<figure" in text, f"{chapter} has no code output"


#: chapter page -> committed verdict files it shows (as written by `make reproduce SCALE=cpu`)
SHOWN_VERDICTS = {
    "yosinski": ["yosinski_layer_transfer/verdicts.csv", "yosinski_layer_transfer/verdicts_glyphs.csv"],
    "taxonomy": ["kornblith_gains_vs_size/verdicts.csv"],
    "regularizers": ["l2sp_vs_bss/verdicts.csv"],
    "transferability": ["transferability_ranking/verdicts.csv"],
}


@pytest.mark.parametrize("chapter", sorted(SHOWN_VERDICTS))
def test_pages_show_the_committed_verdicts(built_book, chapter: str) -> None:
    """A page computed from results/ must show the results on disk now, not cached outputs of
    an earlier build (the build runs with --all and execute_notebooks: force)."""
    import html as html_lib

    from survey_lib import book

    page = (HTML / "book" / f"{chapter}.html").read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", page)))
    for name in SHOWN_VERDICTS[chapter]:
        verdicts = book.read_verdict_table(ROOT / "results" / "cpu" / name)
        for row in verdicts.dropna(subset=["mean"]).itertuples():
            digits = 2 if row.unit in ("rho", "log10 lr") else 1
            shown = book.fmt_interval(row.mean, row.ci_low, row.ci_high, digits, row.unit)
            assert shown in text, f"{chapter}: {row.claim[:40]}… {shown} ({name}) not shown"
            assert row.verdict in text


def test_landing_and_reproductions_pages_show_every_committed_claim(built_book) -> None:
    import html as html_lib

    from survey_lib import book

    table = book.findings()
    for page_name in ("index", "reproductions"):
        page = (HTML / "book" / f"{page_name}.html").read_text(encoding="utf-8")
        text = re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", page)))
        assert f"{len(table)} claims" in text, page_name
        for row in table.itertuples():
            assert book._claim_words(row.claim) in text, (page_name, row.claim)


def test_no_page_shows_warnings_paths_or_nan(built_book) -> None:
    """The page_checks extension's rules, applied to the built HTML (the build also fails)."""
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import page_checks

    found = []
    for path in sorted(HTML.rglob("*.html")):
        rel = path.relative_to(HTML).as_posix()
        if rel.startswith(("_static/", "_sources/", "_modules/")) or path.stem in (
            "genindex", "search", "py-modindex"):
            continue
        found += page_checks.problems(rel, path.read_text(encoding="utf-8"))
    assert not found, "\n".join(found[:30])
