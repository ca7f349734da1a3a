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
