"""Opt-in fixtures of the data-layer tests (nothing here is autouse)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Empty ``SURVEY_DATA_DIR`` and ``SURVEY_CACHE_DIR`` under ``tmp_path``."""
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    cache.mkdir()
    monkeypatch.setenv("SURVEY_DATA_DIR", str(data))
    monkeypatch.setenv("SURVEY_CACHE_DIR", str(cache))
    return data, cache
