"""Make the HTML book work offline and load without console errors.

1. MathJax is served from the book itself, so pages render formulas without network access.
2. Inline scripts that extensions register twice (sphinx-togglebutton and sphinx-thebe under
   Jupyter Book 1.x) are emitted once: the duplicate ``const THEBE_JS_URL`` is a syntax error
   in the browser.

MathJax details:

The book is read offline (and tested in a headless browser with no internet), so the default
MathJax CDN cannot be used. This extension copies the subset of MathJax 2.7 that the
``TeX-AMS_CHTML`` configuration loads from the Debian package ``libjs-mathjax``
(``/usr/share/javascript/mathjax``) into ``_static/mathjax`` of the HTML output and points
``mathjax_path`` at it. Without that package the build stops with an error naming it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError

MATHJAX_SOURCE = Path("/usr/share/javascript/mathjax")
CONFIG_NAME = "TeX-AMS_CHTML"
# What MathJax 2.7 fetches for TeX input rendered as CommonHTML (relative to its root).
SUBSET = (
    "MathJax.js",
    f"config/{CONFIG_NAME}.js",
    "extensions",
    "jax/element",
    "jax/input/TeX",
    "jax/output/CommonHTML",
    "fonts/HTML-CSS/TeX/woff",
    "localization/en",
)


def _source() -> Path:
    if not (MATHJAX_SOURCE / "MathJax.js").is_file():
        raise ExtensionError(
            f"MathJax not found at {MATHJAX_SOURCE}: install the Debian package "
            "'libjs-mathjax' (apt-get install libjs-mathjax) to build the book offline"
        )
    return MATHJAX_SOURCE


def _configure(app: Sphinx, config: Config) -> None:
    _source()
    config.mathjax_path = f"mathjax/MathJax.js?config={CONFIG_NAME}"
    config.mathjax3_config = None
    config.mathjax2_config = {
        "tex2jax": {
            "inlineMath": [["\\(", "\\)"]],
            "displayMath": [["\\[", "\\]"]],
            "processEscapes": True,
            "processClass": "math|output_area|tex2jax_process",
        },
        "messageStyle": "none",
        "menuSettings": {"zoom": "None"},
    }


def _copy(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    source = _source()
    target = Path(app.outdir) / "_static" / "mathjax"
    for rel in SUBSET:
        src = source / rel
        dst = target / rel
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def _unique(scripts: list) -> list:
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        key = (
            str(getattr(script, "filename", None) or ""),
            str(getattr(script, "attributes", {}).get("body", "")),
        )
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    return unique


def _dedupe_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    # 'html-page-context' stops at the first handler that returns a value, so this runs first
    # (low priority number) and edits the page's script list in place.
    scripts = context.get("script_files")
    if isinstance(scripts, list):
        scripts[:] = _unique(scripts)


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", _configure, priority=900)
    app.connect("html-page-context", _dedupe_scripts, priority=1)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
