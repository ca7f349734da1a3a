"""Every notebook's parameters cell is one papermill can read whole.

papermill inspects the cell tagged ``parameters`` line by line and skips (with an "Unable to
parse line" warning, then "Passed unknown parameter" at injection) any line holding more than
one ``=``, e.g. an ``=`` inside a string of a dict default. A skipped name is still injected,
but the warnings mislead whoever reads the run's log, and ``papermill --help-notebook`` hides it.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import jupytext
import pytest
from papermill.translators import PythonTranslator

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.md"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_reads_every_parameter(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    nb = jupytext.read(path)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"{path.name}: expected one cell tagged parameters, got {len(cells)}"
    assigned = [
        node.targets[0].id
        for node in ast.parse(cells[0].source).body
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
    ]
    with caplog.at_level(logging.WARNING, logger="papermill"):
        names = [p.name for p in PythonTranslator.inspect(cells[0])]
    assert names == assigned, f"{path.name}: papermill skipped {sorted(set(assigned) - set(names))}"
    assert "Unable to parse" not in caplog.text
