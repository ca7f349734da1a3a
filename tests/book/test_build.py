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
}


@pytest.mark.parametrize("chapter", sorted(SHOWN_VERDICTS))
def test_pages_show_the_committed_verdicts(built_book, chapter: str) -> None:
    """A page computed from results/ must show the results on disk now, not cached outputs of
    an earlier build (the build runs with --all and execute_notebooks: force)."""
    import html as html_lib

    import pandas as pd

    page = (HTML / "book" / f"{chapter}.html").read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", page)))
    for name in SHOWN_VERDICTS[chapter]:
        verdicts = pd.read_csv(ROOT / "results" / "cpu" / name)
        for row in verdicts.dropna(subset=["mean"]).itertuples():
            interval = f"[{row.ci_low:.3f}, {row.ci_high:.3f}]"
            assert interval in text, f"{chapter}: {row.claim[:40]}… {interval} ({name}) not shown"
