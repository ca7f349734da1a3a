"""The `make reproduce` driver: parameter checks, result locations, and (marker `notebooks`)
the three reproductions executed at smoke scale, resumed, and their verdict tables."""

from __future__ import annotations

import json
from pathlib import Path

import jupytext
import pandas as pd
import pytest
import yaml

from survey_lib import reproduce
from survey_lib.experiments.verdicts import OUTCOMES
from survey_lib.runner import read_results_csv

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


@pytest.mark.parametrize("name", reproduce.NOTEBOOKS)
def test_every_params_file_uses_only_declared_names(name: str) -> None:
    declared = set(reproduce.declared_parameters(jupytext.read(NOTEBOOKS / f"{name}.md")))
    assert set(reproduce.INJECTED) <= declared
    files = sorted((NOTEBOOKS / "params" / name).glob("*.yaml"))
    assert {f.stem for f in files} >= {"smoke", "cpu", "gpu", "paper-smoke", "paper-cpu", "paper-gpu"}
    for path in files:
        profile = "paper" if path.stem.startswith("paper-") else "offline"
        scale = path.stem.removeprefix("paper-")
        keys = set(reproduce.load_params(name, scale, profile, NOTEBOOKS))  # resolved
        assert keys <= declared, f"{path.name}: undeclared {keys - declared}"


@pytest.mark.parametrize("name", reproduce.NOTEBOOKS)
def test_seed_counts_follow_the_honesty_rules(name: str) -> None:
    for scale, least in (("cpu", 3), ("gpu", 5)):
        params = yaml.safe_load((NOTEBOOKS / "params" / name / f"{scale}.yaml").read_text())
        assert len(params["seeds"]) >= least


def test_undeclared_parameter_is_rejected() -> None:
    nb = jupytext.read(NOTEBOOKS / "yosinski_layer_transfer.md")
    with pytest.raises(ValueError, match="learning_rate.*declared: scale"):
        reproduce.resolve_parameters(nb, "yosinski_layer_transfer", {"learning_rate": 0.1}, {})
    ok = reproduce.resolve_parameters(nb, "yosinski_layer_transfer", {"seeds": [0]}, {"scale": "x"})
    assert ok == {"seeds": [0], "scale": "x"}


def test_missing_params_file_names_the_alternatives(tmp_path: Path) -> None:
    (tmp_path / "params" / "demo").mkdir(parents=True)
    (tmp_path / "params" / "demo" / "cpu.yaml").write_text("a: 1\n")
    with pytest.raises(FileNotFoundError, match="cpu.yaml"):
        reproduce.load_params("demo", "gpu", "offline", tmp_path)
    assert reproduce.load_params("demo", "cpu", "offline", tmp_path) == {"a": 1}


def test_parse_overrides() -> None:
    assert reproduce.parse_overrides(["seeds=[0, 1]", "workers=2"]) == {"seeds": [0, 1], "workers": 2}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        reproduce.parse_overrides(["seeds"])


def test_results_locations() -> None:
    root = Path("/r")
    assert reproduce.results_dir("x", "smoke", root=root) == root / "smoke" / "x"
    assert reproduce.results_dir("x", "cpu", "paper", root) == root / "paper-cpu" / "x"
    with pytest.raises(ValueError, match="valid: smoke, cpu, gpu"):
        reproduce.results_dir("x", "huge", root=root)


def test_cli_rejects_unknown_notebook() -> None:
    with pytest.raises(SystemExit):
        reproduce.main(["--scale", "smoke", "--only", "nope", "--no-book"])


def test_smoke_results_are_git_ignored() -> None:
    ignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "results/*smoke*/" in ignore and "results/**/checkpoints/" in ignore


@pytest.mark.notebooks
def test_three_reproductions_at_smoke_scale(tmp_path: Path) -> None:
    rc = reproduce.main(["--scale", "smoke", "--results-root", str(tmp_path), "--no-book"])
    assert rc == 0
    expected_claims = {"yosinski_layer_transfer": 6, "kornblith_gains_vs_size": 4, "l2sp_vs_bss": 4,
                       "transferability_ranking": 9,
                       "best_practice_quadrants": 8}
    for name, n_claims in expected_claims.items():
        out = tmp_path / "smoke" / name
        assert (out / "executed.ipynb").exists()
        driver = json.loads((out / "driver.json").read_text())
        assert driver["status"] == "ok" and driver["parameters"]["scale"] == "smoke"
        verdicts = pd.read_csv(out / "verdicts.csv")
        assert len(verdicts) == n_claims
        assert set(verdicts.verdict) <= set(OUTCOMES)
        for grid in [p for p in out.iterdir() if (p / "runs").is_dir()]:
            assert list(pd.read_csv(grid / "results.csv").columns) == ["run_id", "metric", "value"]
            tidy = read_results_csv(grid)
            assert {"run_id", "seed", "metric", "value"} <= set(tidy.columns)
            assert tidy["value"].notna().all()
            prov = json.loads((grid / "provenance.json").read_text())
            assert prov["runs_failed"] == []

    # Resume: a second pass finds every run on disk and executes none of them.
    rc = reproduce.main(["--scale", "smoke", "--results-root", str(tmp_path), "--no-book",
                         "--only", "yosinski_layer_transfer"])
    assert rc == 0
    for grid in ("base", "transfer"):
        prov = json.loads((tmp_path / "smoke" / "yosinski_layer_transfer" / grid / "provenance.json").read_text())
        assert prov["runs_executed"] == 0 and prov["runs_finished"] == prov["runs_total"] > 0

    # Issue 18 item 3: a run's id covers only what the run uses. Changing L2-SP's alpha re-runs
    # the L2-SP runs of the regularizer grid and nothing else (the others, and the lr sweep that
    # uses L2, are reused from the protocol's results).
    base = tmp_path / "smoke" / "l2sp_vs_bss"
    methods = [json.loads(p.read_text())["params"]["method"]
               for p in (base / "regularizers" / "runs").glob("*.json")]
    assert methods.count("L2-SP") > 0 and len(set(methods)) > 1
    rc = reproduce.main(["--scale", "smoke", "--results-root", str(tmp_path), "--no-book",
                         "--only", "l2sp_vs_bss", "--set", "methods.L2-SP.alpha=1.0"])
    assert rc == 0
    (override,) = [p for p in tmp_path.iterdir() if p.name.startswith("smoke-set-")]
    runs = override / "l2sp_vs_bss" / "regularizers"
    prov = json.loads((runs / "provenance.json").read_text())
    assert prov["runs_executed"] == methods.count("L2-SP")
    new = {p.name for p in (runs / "runs").glob("*.json")} - {
        p.name for p in (base / "regularizers" / "runs").glob("*.json")}
    assert {json.loads((runs / "runs" / n).read_text())["params"]["method"] for n in new} == {"L2-SP"}
    sweep = json.loads((override / "l2sp_vs_bss" / "lr_sweep" / "provenance.json").read_text())
    assert sweep["runs_executed"] == 0


@pytest.mark.notebooks
def test_failed_notebook_is_reported_and_others_go_on(tmp_path: Path) -> None:
    # an unknown model is rejected before any run, in the override's own folder, and the
    # other notebook still runs
    rc = reproduce.main(["--scale", "smoke", "--results-root", str(tmp_path), "--no-book",
                         "--only", "yosinski_layer_transfer", "--set", "model=no_such_model"])
    assert rc == 1
    assert not (tmp_path / "smoke" / "yosinski_layer_transfer").exists()
    assert not any(tmp_path.rglob("runs"))
