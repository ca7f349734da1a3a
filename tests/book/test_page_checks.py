"""The page checks that fail the build catch each defect class (fast: no build)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "book" / "_ext"))

import page_checks  # noqa: E402


def _page(body: str) -> str:
    return f"<html><body><article>{body}</article></body></html>"


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ('<div class="cell_output"><pre>/x/tqdm/auto.py:21: TqdmWarning: IProgress not found</pre></div>',
         "warning text"),
        ("<p>UserWarning: Converting a tensor with requires_grad</p>", "warning text"),
        ("<p>written to /work/main/results/cpu</p>", "local path"),
        ("<td>nan [nan, nan]</td>", "nan shown"),
        ("<td>False</td>", "Python bool in text"),
        ("<p>the changes are -0.0 and 1.2</p>", "negative zero"),
        ("<p>Figure Fig. 1.1 plots</p>", "doubled figure prefix"),
    ],
)
def test_each_defect_class_is_caught(body: str, what: str) -> None:
    found = page_checks.problems("book/x.html", _page(body))
    assert any(f": {what}:" in line for line in found), found


def test_code_shown_on_purpose_and_clean_text_pass() -> None:
    body = (
        '<div class="cell_input"><pre>import warnings; x = True</pre></div>'
        "<p>The gap is 1.0 [−0.5, 2.5] points; verdict words: reproduced.</p>"
        "<p><code>requires_grad=True</code> in inline code is fine.</p>"
    )
    assert page_checks.problems("book/x.html", _page(body)) == []


def test_exempt_pages_skip_only_their_rules() -> None:
    body = "<td>nan</td><p>TqdmWarning: IProgress not found</p>"
    found = page_checks.problems("results/cpu/x/executed.html", _page(body))
    assert not any("nan shown" in f for f in found)
    assert any("warning text" in f for f in found)
