"""aggregate against scipy's t quantiles and provenance helpers."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from survey_lib import provenance
from survey_lib.runner import aggregate


def _table() -> pd.DataFrame:
    rows = []
    for method, values in {
        "l2": [0.70, 0.74, 0.72],
        "bss": [0.80, 0.81, 0.85, 0.86],
        "one": [0.5],
    }.items():
        for seed, v in enumerate(values):
            rows.append(
                {
                    "run_id": f"{method}{seed}",
                    "method": method,
                    "seed": seed,
                    "metric": "acc",
                    "value": v,
                }
            )
            rows.append(
                {
                    "run_id": f"{method}{seed}",
                    "method": method,
                    "seed": seed,
                    "metric": "loss",
                    "value": 1 - v,
                }
            )
    return pd.DataFrame(rows)


def test_aggregate_matches_the_t_interval() -> None:
    out = aggregate(_table(), "method", metric="acc")
    assert list(out.columns) == ["method", "metric", "mean", "ci_low", "ci_high", "ci_half", "n"]
    row = out.set_index("method").loc["l2"]
    values = np.array([0.70, 0.74, 0.72])
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / math.sqrt(3)
    assert row["mean"] == pytest.approx(0.72) and row["n"] == 3
    assert row["ci_half"] == pytest.approx(half) and row["ci_low"] == pytest.approx(0.72 - half)
    assert out.set_index("method").loc["bss", "n"] == 4
    assert math.isnan(out.set_index("method").loc["one", "ci_half"])
    narrower = aggregate(_table(), ["method"], metric="acc", confidence=0.5)
    assert (narrower.ci_half.iloc[:2] < out.ci_half.iloc[:2]).all()


def test_aggregate_all_metrics_and_errors() -> None:
    out = aggregate(_table(), "method")
    assert len(out) == 6 and set(out.metric) == {"acc", "loss"}
    with pytest.raises(ValueError, match="metrics \\['f1'\\] not in the table"):
        aggregate(_table(), "method", metric="f1")
    with pytest.raises(ValueError, match="columns \\['lr'\\] not in the table"):
        aggregate(_table(), "lr")
    bad = _table()
    bad.loc[0, "value"] = float("nan")
    with pytest.raises(ValueError, match="cell \\{'method': 'l2', 'metric': 'acc'\\}"):
        aggregate(bad, "method")


def test_provenance_fields() -> None:
    code = provenance.code_version()
    assert re.fullmatch("[0-9a-f]{12}", code) and code == provenance.code_version()
    versions = provenance.package_versions()
    assert versions["torch"].startswith("2.") and versions["numpy"] and versions["python"]
    info = provenance.git_info()
    assert set(info) == {"commit", "dirty"}
    assert provenance.peak_memory()["max_rss_mib"] > 10


def test_code_version_ignores_presentation_modules(tmp_path, monkeypatch) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "experiments").mkdir(parents=True)
    (pkg / "engine.py").write_text("x = 1\n")
    (pkg / "book.py").write_text("y = 1\n")
    (pkg / "experiments" / "verdicts.py").write_text("z = 1\n")
    monkeypatch.setattr(provenance, "_PACKAGE_DIR", pkg)

    def version() -> str:
        provenance.code_version.cache_clear()
        return provenance.code_version()

    before = version()
    (pkg / "book.py").write_text("y = 2\n")
    (pkg / "experiments" / "verdicts.py").write_text("z = 2\n")
    assert version() == before
    (pkg / "estimate").mkdir()
    (pkg / "estimate" / "runs.py").write_text("w = 2\n")  # a whole presentation subpackage
    assert version() == before
    (pkg / "engine.py").write_text("x = 2\n")
    assert version() != before


def test_no_computing_module_imports_the_newer_presentation_modules() -> None:
    """Excluding a module from the code version is safe only if no run can execute it."""
    import ast
    from pathlib import Path

    package = Path(provenance.__file__).parent
    # presentation modules that computing code may read (verdict rules run in notebooks only,
    # data cards and the driver predate this check)
    older = {"book.py", "reproduce.py", "data/cards.py", "experiments/verdicts.py"}
    newer = {m for m in provenance.PRESENTATION_MODULES if m not in older}
    names = {"survey_lib." + m.rstrip("/").removesuffix(".py").replace("/", ".") for m in newer}
    for path in package.rglob("*.py"):
        rel = path.relative_to(package).as_posix()
        if provenance.is_presentation_module(rel):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            hit = [t for t in targets if any(t == n or t.startswith(n + ".") for n in names)]
            assert not hit, f"{rel} imports {hit}: it can no longer be a presentation module"
    provenance.code_version.cache_clear()


def test_dirty_flag_ignores_the_results_folder(tmp_path, monkeypatch) -> None:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("add", "code.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(provenance, "_PACKAGE_DIR", tmp_path)
    assert provenance.git_info()["dirty"] is False
    (tmp_path / "results" / "exp").mkdir(parents=True)
    (tmp_path / "results" / "exp" / "runs.csv").write_text("a\n1\n")  # a run's own output
    assert provenance.git_info()["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")  # an edit of the code is dirt
    assert provenance.git_info()["dirty"] is True
