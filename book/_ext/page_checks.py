"""Fail the build when a rendered page shows what a reader must never see.

After the HTML is written, every page's visible text (scripts, styles and attributes removed)
is searched for:

- warning or error text from a cell's stderr or a logger (``UserWarning``, ``IProgress not
  found``, ``Traceback``, ``WARNING:`` ...);
- a local path of the machine that built it (the repository root, a home folder, ``/tmp/``,
  ``site-packages``);
- ``nan`` shown as a number, Python's ``True``/``False`` in a table cell, ``-0.0``;
- doubled figure prefixes (``Figure Fig.``, ``Fig. Fig.``).

Any hit is reported as a Sphinx error naming the page and the matched text, so ``make book``
(``-W``) fails. The same rules are used by ``tests/book/test_browser.py`` (imported from here).
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)

#: (name, pattern) pairs searched in each page's visible text
PATTERNS: tuple[tuple[str, str], ...] = (
    ("warning text", r"\b[A-Z][A-Za-z]*Warning\b(?!s? (?:words|terms))|IProgress not found"),
    ("warning text", r"\bWARNING:|\bTraceback \(most recent call last\)"),
    ("local path", r"(?<![\w.])/(?:work|home|root|tmp|usr/lib|usr/local)/[\w./+-]+"),
    ("local path", r"site-packages|\.venv/"),
    ("nan shown", r"(?<![\w-])(?:nan|NaN)(?![\w-])"),
    ("Python bool in text", r"(?<![\w`'\"])(?:True|False)(?![\w`'\"])"),
    ("negative zero", r"(?<![\w.])[-−]0\.0+(?![0-9])"),
    ("doubled figure prefix", r"\b(?:Figure|Fig\.)\s+Fig\.|\bTable\s+Table\b"),
)

#: pages (glob patterns on the path in the HTML output) exempt from a rule, and why
EXEMPT: dict[str, tuple[str, ...]] = {
    # the API reference documents code: docstrings say "NaN bounds", "True if ..."
    "nan shown": ("book/api*.html", "results/*/*/executed.html"),
    "Python bool in text": ("book/api*.html", "book/build_status.html", "results/*/*/executed.html"),
}
# The executed reproduction notebooks (results/<scale>/<name>/executed.ipynb) are committed by
# `make reproduce` and shown as they are; their tables are formatted by notebook cells that
# this book does not own. They are still checked for warning text and local paths.


def visible_text(page: str) -> str:
    """The text a reader sees in an HTML page, without code the page shows on purpose.

    Scripts, styles, input cells (``.cell_input``), the page's source-code links and inline or
    block code outside cell outputs are dropped; cell outputs (``.cell_output``, including
    stream output in ``<pre>``) are kept, since that is where leaked warnings appear.
    """
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page, "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    for tag in soup.select(".cell_input, .headerlink, .bd-header, .bd-sidebar-primary"):
        tag.decompose()
    for tag in soup.find_all(["code", "pre", "dl"]):
        if tag.decomposed:
            continue
        if tag.name == "dl" and "py" not in (tag.get("class") or []):
            continue
        if not tag.find_parent(class_="cell_output"):
            tag.decompose()
    return re.sub(r"\s+", " ", soup.get_text(" "))


def problems(page_name: str, page: str) -> list[str]:
    """The defects of one rendered page, as ``"<page>: <what>: <text>"`` lines."""
    text = visible_text(page)
    found = []
    for what, pattern in PATTERNS:
        if any(fnmatch.fnmatch(page_name, rule) for rule in EXEMPT.get(what, ())):
            continue
        for match in re.finditer(pattern, text):
            start = max(0, match.start() - 40)
            found.append(f"{page_name}: {what}: …{text[start:match.end() + 40]}…")
            break
    return found


def _check(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    for path in sorted(out.rglob("*.html")):
        rel = path.relative_to(out).as_posix()
        if rel.startswith(("_static/", "_sources/", "_modules/")) or path.stem in (
            "genindex",
            "search",
            "py-modindex",
        ):
            continue
        for line in problems(rel, path.read_text(encoding="utf-8")):
            LOGGER.warning("page check: %s", line)


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("build-finished", _check)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
