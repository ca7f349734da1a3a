"""The reproduction notebooks draw with the book's colours and show formatted tables (fast:
reads the notebook sources, runs nothing)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.md"))


def _code_cells(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(r"```\{code-cell\}[^\n]*\n(.*?)\n```", text, flags=re.S)


def _calls(code: str, names: str) -> list[str]:
    """The text of every call to one of ``names`` (balanced parentheses)."""
    calls = []
    for match in re.finditer(rf"\b(?:{names})\(", code):
        depth, i = 1, match.end()
        while depth and i < len(code):
            depth += {"(": 1, ")": -1}.get(code[i], 0)
            i += 1
        calls.append(code[match.start() : i])
    return calls


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_coloured_plot_uses_the_book_palette(path: Path) -> None:
    code = "\n".join(_code_cells(path))
    assert "tab:" not in code, f"{path.name}: a matplotlib tab: colour instead of the book's"
    for call in _calls(code, r"sns\.\w+plot"):
        if "hue=" in call:
            assert "palette=" in call, f"{path.name}: {call[:80]}… colours hue without palette="


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_tables_are_shown_through_frame_view(path: Path) -> None:
    for cell in _code_cells(path):
        lines = [ln for ln in cell.splitlines() if ln.strip() and not ln.startswith(":tags:")]
        last = lines[-1] if lines else ""
        assert ".round(" not in cell, f"{path.name}: a table rounded for display: {last}"
        for call in _calls(cell, "display"):
            inner = call[len("display(") : -1]
            if inner.startswith(("Markdown(", "frame_view(")) or inner.startswith('"'):
                continue
            assert inner.startswith("frame_view("), f"{path.name}: {call[:80]} not formatted"
        bare = re.match(r"^[A-Za-z_][\w.\[\]'\"=<> ]*$", last)
        if bare and not last.startswith(("print", "frame_view", "display")) and "=" not in last:
            pytest.fail(f"{path.name}: the cell ends by showing {last!r} unformatted")
