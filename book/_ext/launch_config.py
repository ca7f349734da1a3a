"""Launch buttons follow the one repository URL in ``_config.yml`` (``repository.url``).

``launch_buttons`` names the Binder and Colab services; sphinx-book-theme builds each button's
link from the repository URL and fails when that is empty. Until the book is published (the
URL empty) this extension switches the launch services off, so notebook pages keep only the
download button; once ``repository.url`` is set, the buttons appear with no other change.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.config import Config

SERVICES = ("binderhub_url", "jupyterhub_url", "colab_url", "jupyterlite_url")


def _configure(app: Sphinx, config: Config) -> None:
    options = dict(config.html_theme_options or {})
    if str(options.get("repository_url") or "").strip():
        return
    launch = dict(options.get("launch_buttons") or {})
    for key in SERVICES:
        launch[key] = ""
    launch["thebe"] = False
    options["launch_buttons"] = launch
    config.html_theme_options = options


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", _configure, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
