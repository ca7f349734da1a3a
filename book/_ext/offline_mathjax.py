"""Serve MathJax from the book itself, so pages render formulas without any network access.

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


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", _configure, priority=900)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
