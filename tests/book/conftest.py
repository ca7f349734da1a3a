"""Build the book once per test session (in place, into ``_build``, every page rebuilt)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
REPRODUCTIONS = ("yosinski_layer_transfer", "kornblith_gains_vs_size", "l2sp_vs_bss",
                 "transferability_ranking", "best_practice_quadrants")


def survey_chapters() -> list[str]:
    """Stems of the pages of the toc's first part (the survey's chapters and their sections)."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    stems: list[str] = []

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            stems.append(Path(entry["file"]).name)
            walk(entry.get("sections", []))

    walk(toc["parts"][0]["chapters"])
    return stems


@pytest.fixture(scope="session")
def chapters() -> list[str]:
    return survey_chapters()


def missing_reproductions() -> list[str]:
    """The executed notebooks the toc's Reproductions part needs (committed CPU scale)."""
    return [
        f"results/cpu/{name}/executed.ipynb"
        for name in REPRODUCTIONS
        if not (ROOT / "results" / "cpu" / name / "executed.ipynb").is_file()
    ]


@pytest.fixture(scope="session")
def built_book() -> subprocess.CompletedProcess[str]:
    missing = missing_reproductions()
    if missing:
        pytest.fail(
            "the book's Reproductions part needs the executed notebooks written by "
            f"`make reproduce`; missing: {missing}"
        )
    exe = Path(sys.executable).with_name("jupyter-book")
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.run(
        [str(exe), "build", str(ROOT), "-W", "-n", "--keep-going", "--all"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    return proc
