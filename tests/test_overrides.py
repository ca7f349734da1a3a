"""Extending the experiments safely (issue 18): ``--set`` overrides in their own folder, dotted
keys, YAML 1.2 numbers, errors that name the file or the key, a read-only results folder, failed
runs counted, the kernel spec and the Makefile."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

from survey_lib import reproduce

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


# --- parsing: dotted keys, numbers, errors ---------------------------------------------------


def test_dotted_keys_change_one_value_and_keep_the_rest() -> None:
    params = reproduce.load_params("l2sp_vs_bss", "smoke", "offline", NOTEBOOKS)
    overrides = reproduce.parse_overrides(
        ["methods.L2-SP.alpha=1.0", "methods.MINE={regularizer: l2_sp_lower, alpha: 1e-2}"]
    )
    out = reproduce.apply_overrides(params, overrides)
    assert out["methods"]["L2-SP"] == {"regularizer": "l2_sp", "alpha": 1.0, "beta": 0.01}
    assert out["methods"]["MINE"] == {"regularizer": "l2_sp_lower", "alpha": 0.01}
    assert out["methods"]["BSS"] == params["methods"]["BSS"]
    assert params["methods"]["L2-SP"]["alpha"] == 0.1  # the protocol itself is untouched
    with pytest.raises(ValueError, match=r"seeds is a list.*not a mapping"):
        reproduce.apply_overrides(params, {"seeds.first": 1})


def test_scientific_notation_is_a_number_in_set_values_and_params_files(tmp_path: Path) -> None:
    assert reproduce.parse_overrides(["lr_sweep=[1e-3, 1E-2, 5e+1]", "train.lr=-2.5e-4"]) == {
        "lr_sweep": [0.001, 0.01, 50.0],
        "train.lr": -0.00025,
    }
    assert reproduce.parse_overrides(["name=1e3x"]) == {"name": "1e3x"}  # not a number
    (tmp_path / "params" / "demo").mkdir(parents=True)
    (tmp_path / "params" / "demo" / "cpu.yaml").write_text("lr: 1e-3\nrates: [1e-1, .5]\n")
    assert reproduce.load_params("demo", "cpu", "offline", tmp_path) == {
        "lr": 0.001,
        "rates": [0.1, 0.5],
    }


def test_yaml_errors_name_the_file_or_the_key(tmp_path: Path) -> None:
    (tmp_path / "params" / "demo").mkdir(parents=True)
    bad = tmp_path / "params" / "demo" / "cpu.yaml"
    bad.write_text("seeds: [0, 1\nworkers: 1\n")
    with pytest.raises(ValueError) as info:
        reproduce.load_params("demo", "cpu", "offline", tmp_path)
    assert str(bad) in str(info.value) and "<unicode string>" not in str(info.value)
    with pytest.raises(ValueError, match=r"--set seeds: the value '\[0, 1' is not valid YAML"):
        reproduce.parse_overrides(["seeds=[0, 1"])


def test_cli_yaml_error_is_one_message_not_a_traceback(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        reproduce.main(["--scale", "smoke", "--no-book", "--set", "train={epochs: 1"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--set train: the value" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["results_dir", "scale", "profile", "checkpoint_dir"])
def test_names_the_driver_sets_cannot_be_overridden(name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} cannot be overridden"):
        reproduce.parse_overrides([f"{name}=elsewhere"])


def test_help_documents_set() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "survey_lib.reproduce", "--help"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=True,
    )
    assert "methods.L2-SP.alpha=1.0" in result.stdout and "-set-" in result.stdout
    assert 'SET="' in result.stdout


# --- where overridden results go -------------------------------------------------------------


def test_overridden_runs_get_their_own_folder_never_a_committed_one(tmp_path: Path) -> None:
    plain = reproduce.results_dir("l2sp_vs_bss", "cpu", root=tmp_path)
    one = reproduce.results_dir("l2sp_vs_bss", "cpu", root=tmp_path, overrides={"seeds": [0]})
    other = reproduce.results_dir("l2sp_vs_bss", "cpu", root=tmp_path, overrides={"seeds": [1]})
    assert plain == tmp_path / "cpu" / "l2sp_vs_bss"
    assert one.parent.name.startswith("cpu-set-seeds") and one.name == "l2sp_vs_bss"
    assert len({plain, one, other}) == 3
    # the book never picks an override folder
    (one / "executed.ipynb").parent.mkdir(parents=True)
    (one / "executed.ipynb").write_text("{}")
    assert reproduce.committed_results_dir("l2sp_vs_bss", tmp_path) is None
    ignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "results/*-set-*/" in ignore


def _demo(tmp_path: Path) -> Path:
    """A one-cell notebook that writes its parameters, and fails when ``fail`` is true."""
    nbdir = tmp_path / "notebooks"
    (nbdir / "params" / "demo").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            'scale = "smoke"\nprofile = "offline"\nresults_dir = "x"\ncheckpoint_dir = "c"\n'
            "x = 1\nfail = False",
            metadata={"tags": ["parameters"]},
        ),
        nbformat.v4.new_code_cell(
            "import json, pathlib\npathlib.Path(results_dir, 'out.json').write_text("
            "json.dumps({'x': x, 'ckpt': checkpoint_dir}))\nassert not fail, 'asked to fail'"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    jupytext.write(nb, nbdir / "demo.md", fmt="md:myst")
    (nbdir / "params" / "demo" / "smoke.yaml").write_text("x: 1\nfail: true\n")
    return nbdir


@pytest.mark.notebooks
def test_set_never_touches_committed_results_and_stale_failures_go(tmp_path: Path, monkeypatch) -> None:
    nbdir = _demo(tmp_path)
    monkeypatch.setattr(reproduce, "NOTEBOOKS", ("demo",))
    args = ["--scale", "smoke", "--only", "demo", "--no-book", "--notebooks-dir", str(nbdir),
            "--results-root", str(tmp_path / "results")]
    plain = tmp_path / "results" / "smoke" / "demo"
    assert reproduce.main(args) == 1  # the protocol says fail
    assert (plain / "executed.failed.ipynb").exists()
    (nbdir / "params" / "demo" / "smoke.yaml").write_text("x: 1\nfail: false\n")
    assert reproduce.main(args) == 0
    assert not (plain / "executed.failed.ipynb").exists()  # no stale failure beside new results
    committed = {p.name: p.read_bytes() for p in plain.iterdir() if p.name != "driver.json"}

    assert reproduce.main([*args, "--set", "x=2"]) == 0
    assert {p.name: p.read_bytes() for p in plain.iterdir() if p.name != "driver.json"} == committed
    assert json.loads((plain / "out.json").read_text())["x"] == 1
    (setdir,) = [p for p in (tmp_path / "results").iterdir() if "-set-" in p.name]
    out = json.loads((setdir / "demo" / "out.json").read_text())
    assert out["x"] == 2 and out["ckpt"].endswith("smoke/checkpoints")  # shared checkpoints
    driver = json.loads((setdir / "demo" / "driver.json").read_text())
    assert driver["overrides"] == {"x": 2} and driver["parameters"]["x"] == 2
    assert json.loads((setdir / "overrides.json").read_text())["overrides"] == {"x": 2}


def test_failure_message_names_the_failed_notebook_only_when_written(capsys, monkeypatch, tmp_path) -> None:
    rc = reproduce.main(["--scale", "smoke", "--only", "l2sp_vs_bss", "--no-book",
                         "--results-root", str(tmp_path), "--set", "seeds=0"])
    assert rc == 1
    out = capsys.readouterr().out
    assert "executed.failed.ipynb" not in out and "nothing was executed" in out
    assert "seeds = 0" in out and "list of distinct integer seeds" in out
    assert not (tmp_path / "smoke").exists()  # nothing ran, nothing written for the protocol


# --- bad values: rejected before any run -----------------------------------------------------


def test_bad_values_fail_before_any_run_with_one_message_each(tmp_path: Path) -> None:
    overrides = reproduce.parse_overrides(
        ["lr_sweep=[1e-3, 0]", "train.epochs=-1", "rates=abc", "methods.L2-SP.alpha=-1",
         "methods.X={regularizer: no_such}", "targets.near.dataset=nope"]
    )
    outcome = reproduce.run_notebook(
        "l2sp_vs_bss", "smoke", "offline", overrides, notebooks_dir=NOTEBOOKS,
        results_root=tmp_path,
    )
    assert outcome.status == "failed" and outcome.seconds < 60
    for expected in ("lr_sweep[1] = 0", "an lr of 0", "train = ", "epochs must be a positive",
                     "rates = 'abc'", "methods.L2-SP.alpha = -1", "no_such", "valid: bss",
                     "targets.near.dataset = 'nope'", "valid: caltech101"):
        assert expected in outcome.error, expected
    assert not any(tmp_path.rglob("runs"))


# --- a read-only results folder --------------------------------------------------------------


def test_unwritable_results_folder_is_one_message_and_the_others_go_on(tmp_path, capsys) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")  # results under a plain file: every write fails with an OSError
    rc = reproduce.main(["--scale", "smoke", "--only", "l2sp_vs_bss,kornblith_gains_vs_size",
                         "--no-book", "--results-root", str(blocker)])
    assert rc == 1
    out = capsys.readouterr().out
    assert out.count("cannot write results to") >= 2  # both notebooks tried, both reported
    assert "total" in out and "Traceback" not in out


# --- failed runs counted ---------------------------------------------------------------------


def test_driver_counts_failed_runs_per_notebook(tmp_path: Path) -> None:
    for grid, failed in (("regularizers", ["a", "b"]), ("lr_sweep", [])):
        (tmp_path / grid).mkdir()
        (tmp_path / grid / "provenance.json").write_text(json.dumps({"runs_failed": failed}))
    assert reproduce.failed_runs(tmp_path) == {"lr_sweep": 0, "regularizers": 2}
    outcome = reproduce.NotebookOutcome("l2sp_vs_bss", "partial", 1.0, failed_runs=2)
    table = reproduce.summarise([outcome], "smoke")
    assert "failed runs" in table and " 2 " in table.splitlines()[1]


# --- the kernel spec -------------------------------------------------------------------------


def test_stale_kernel_spec_is_repaired(tmp_path: Path, monkeypatch) -> None:
    from survey_lib.kernel import ensure_kernel

    spec_dir = tmp_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {"argv": ["/moved/away/.venv/bin/python", "-m", "ipykernel_launcher", "-f",
                     "{connection_file}"], "display_name": "Python 3", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    message = ensure_kernel()
    assert message and "/moved/away" in message
    fixed = json.loads((spec_dir / "kernel.json").read_text())
    assert fixed["argv"] == [sys.executable, *spec["argv"][1:]]
    assert ensure_kernel() is None  # fine now


# --- the Makefile ----------------------------------------------------------------------------


def _make_n(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(["make", "-n", "-C", str(ROOT), *args], capture_output=True,
                          text=True, check=True).stdout


def test_make_reproduce_passes_set_through() -> None:
    out = _make_n("reproduce", "SCALE=smoke", 'SET=methods.L2-SP.alpha=1.0 seeds=[0,1]')
    assert "--set 'methods.L2-SP.alpha=1.0' --set 'seeds=[0,1]'" in out


def test_install_stamp_of_another_checkout_reinstalls(tmp_path: Path) -> None:
    stamp = tmp_path / "stamp"
    stamp.write_text("/some/other/checkout\n")
    assert "pip install" in _make_n("install", f"STAMP={stamp}")
    stamp.write_text(f"{ROOT}\n")
    os.utime(stamp)  # newer than pyproject.toml
    assert "pip install" not in _make_n("install", f"STAMP={stamp}")


def test_override_folder_reuses_the_committed_runs_it_leaves_unchanged(tmp_path: Path) -> None:
    base = tmp_path / "smoke" / "nb"
    (base / "grid" / "runs").mkdir(parents=True)
    (base / "grid" / "runs" / "abc.json").write_text("{}")
    (base / "grid" / "failed").mkdir()
    (base / "grid" / "failed" / "def.json").write_text("{}")  # failures are never copied
    out = tmp_path / "smoke-set-x" / "nb"
    assert reproduce._seed_from_protocol(out, base) == 1
    assert (out / "grid" / "runs" / "abc.json").exists() and not (out / "grid" / "failed").exists()
    assert reproduce._seed_from_protocol(out, base) == 0
