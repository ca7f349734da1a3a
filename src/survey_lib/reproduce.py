"""The ``make reproduce`` driver: run every reproduction notebook with papermill.

Usage::

    python -m survey_lib.reproduce [--scale smoke|cpu|gpu] [--profile offline|paper]
                                   [--only NAME[,NAME]] [--set KEY=VALUE ...] [--no-book]
                                   [--executor local|ray] [--ray-address HOST:PORT]

For each notebook ``notebooks/<name>.md`` (MyST markdown, converted with jupytext) the driver

1. reads the names the notebook declares in its cell tagged ``parameters``;
2. loads the committed protocol ``notebooks/params/<name>/<scale>.yaml`` (and, for the paper
   profile, ``paper-<scale>.yaml`` on top), applies ``--set`` overrides, and rejects any name
   the notebook does not declare;
3. executes it in a fresh kernel, writing the executed notebook, the tidy results and their
   provenance under :func:`results_dir` (runs already on disk are skipped by the notebook's
   :func:`survey_lib.runner.run_grid`, so an interrupted reproduction resumes);
4. keeps going past a failed notebook, prints a summary with wall times against the speed
   targets, and exits non-zero if anything failed; finally it builds the book.

``smoke`` runs write to ``results/smoke/`` (git-ignored), never over committed results.
``--executor``/``--ray-address`` reach every notebook's run_grid through the environment
(``SURVEY_EXECUTOR``, ``RAY_ADDRESS``), so notebooks need no edit. SIGTERM (a job scheduler,
``timeout``) stops the whole process tree: the kernels and the pool workers their grids spawned.
"""

from __future__ import annotations

import argparse
import ast
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from survey_lib.io import atomic_write_json
from survey_lib.runner.grid import ENV_EXECUTOR, EXECUTORS

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ("yosinski_layer_transfer", "kornblith_gains_vs_size", "l2sp_vs_bss", "best_practice_quadrants")
SCALES = ("smoke", "cpu", "gpu")
PROFILES = ("offline", "paper")
#: Wall-time goals for all three notebooks together, in seconds (issue: smoke < 3 min on the
#: 2-core CPU, cpu < 45 min, gpu < 15 min on one H100-class GPU).
SPEED_TARGETS_S = {"smoke": 180.0, "cpu": 45 * 60.0, "gpu": 15 * 60.0}
#: Names the driver itself passes to every notebook.
INJECTED = ("scale", "profile", "results_dir")


def default_scale() -> str:
    """``gpu`` when CUDA is available, else ``cpu``."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def results_dir(name: str, scale: str, profile: str = "offline", root: Path | None = None) -> Path:
    """Where a notebook's results live: ``results/<scale>/<name>`` (offline profile) or
    ``results/paper-<scale>/<name>`` (paper profile)."""
    _check_choice("scale", scale, SCALES)
    _check_choice("profile", profile, PROFILES)
    root = Path(root) if root is not None else REPO_ROOT / "results"
    prefix = scale if profile == "offline" else f"paper-{scale}"
    return root / prefix / name


def committed_results_dir(name: str, root: Path | None = None) -> Path | None:
    """The committed offline results a chapter should read: ``gpu`` if present, else ``cpu``.

    ``SURVEY_RESULTS_SCALE`` overrides the choice (e.g. ``smoke`` while testing)."""
    forced = os.environ.get("SURVEY_RESULTS_SCALE")
    for scale in [forced] if forced else ["gpu", "cpu"]:
        path = results_dir(name, scale, "offline", root)
        if (path / "executed.ipynb").exists():
            return path
    return None


def _check_choice(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")


def declared_parameters(notebook: Any) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters`` (exactly one such cell)."""
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(
            f"a notebook needs exactly one cell tagged 'parameters', found {len(cells)}"
        )
    names: list[str] = []
    for node in ast.parse(cells[0].source).body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else ([node.target] if isinstance(node, ast.AnnAssign) else [])
        )
        names.extend(t.id for t in targets if isinstance(t, ast.Name))
    return names


def load_params(name: str, scale: str, profile: str, notebooks_dir: Path) -> dict[str, Any]:
    """The committed protocol for one notebook at one scale (and profile)."""
    folder = notebooks_dir / "params" / name
    files = [folder / f"{scale}.yaml"]
    if profile == "paper":
        files.append(folder / f"paper-{scale}.yaml")
    params: dict[str, Any] = {}
    for path in files:
        if not path.exists():
            available = sorted(p.name for p in folder.glob("*.yaml")) if folder.exists() else []
            raise FileNotFoundError(
                f"no parameter file {path.relative_to(notebooks_dir.parent)}; "
                f"available for {name}: {available or 'none'}"
            )
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold a mapping of parameter names to values")
        params.update(loaded)
    return params


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings to a dict; values are parsed as YAML (numbers, lists, ...)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def resolve_parameters(
    notebook: Any, name: str, params: dict[str, Any], injected: dict[str, Any]
) -> dict[str, Any]:
    """Merge and validate: every name must be declared by the notebook's parameters cell."""
    declared = declared_parameters(notebook)
    merged = {**params, **injected}
    unknown = sorted(set(merged) - set(declared))
    if unknown:
        raise ValueError(
            f"{name}: parameter(s) {', '.join(unknown)} not declared in the notebook's "
            f"parameters cell; declared: {', '.join(declared)}"
        )
    return merged


@dataclass
class NotebookOutcome:
    name: str
    status: str
    seconds: float
    output: Path | None = None
    error: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


def run_notebook(
    name: str,
    scale: str,
    profile: str,
    overrides: dict[str, Any],
    *,
    notebooks_dir: Path,
    results_root: Path | None = None,
    timeout_s: int | None = None,
) -> NotebookOutcome:
    """Execute one notebook in a fresh kernel; never raises for a notebook error."""
    import jupytext
    import nbformat
    import papermill

    start = time.perf_counter()
    out_dir = results_dir(name, scale, profile, results_root)
    try:
        source = notebooks_dir / f"{name}.md"
        if not source.exists():
            raise FileNotFoundError(f"no notebook {source}; valid: {', '.join(NOTEBOOKS)}")
        notebook = jupytext.read(source)
        params = load_params(name, scale, profile, notebooks_dir)
        params.update(overrides)
        shown = out_dir.resolve()
        if shown.is_relative_to(notebooks_dir.parent.resolve()):  # the kernel's cwd
            shown = shown.relative_to(notebooks_dir.parent.resolve())
        injected = {"scale": scale, "profile": profile, "results_dir": str(shown)}
        resolved = resolve_parameters(notebook, name, params, injected)
    except Exception as exc:  # bad input: reported in the summary, other notebooks go on
        return NotebookOutcome(name, "failed", time.perf_counter() - start, error=str(exc))

    out_dir.mkdir(parents=True, exist_ok=True)
    staged = out_dir / ".source.ipynb"
    partial = out_dir / ".executed.partial.ipynb"
    nbformat.write(notebook, staged)
    env_before = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        papermill.execute_notebook(
            str(staged),
            str(partial),
            parameters=resolved,
            kernel_name="python3",
            cwd=str(notebooks_dir.parent),
            progress_bar=False,
            execution_timeout=timeout_s,
        )
        os.replace(partial, out_dir / "executed.ipynb")
        status, error = "ok", ""
    except Exception as exc:
        failed = out_dir / "executed.failed.ipynb"
        if partial.exists():
            os.replace(partial, failed)
        status, error = "failed", f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1:]}"
    finally:
        staged.unlink(missing_ok=True)
        if env_before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = env_before
    seconds = time.perf_counter() - start
    outcome = NotebookOutcome(name, status, seconds, out_dir / "executed.ipynb", error, resolved)
    atomic_write_json(
        out_dir / "driver.json",
        {
            "notebook": name,
            "scale": scale,
            "profile": profile,
            "status": status,
            "error": error,
            "seconds": round(seconds, 2),
            "parameters": resolved,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )
    return outcome


def summarise(outcomes: list[NotebookOutcome], scale: str) -> str:
    lines = [f"{'notebook':<28} {'status':<8} {'seconds':>9}  note"]
    for o in outcomes:
        lines.append(f"{o.name:<28} {o.status:<8} {o.seconds:>9.1f}  {o.error}")
    total = sum(o.seconds for o in outcomes)
    target = SPEED_TARGETS_S[scale]
    verdict = "within" if total <= target else "OVER"
    lines.append(
        f"{'total':<28} {'':<8} {total:>9.1f}  {verdict} the {scale} goal of {target:.0f} s"
    )
    return "\n".join(lines)


def measure_ladder(out: Path | None = None) -> int:
    """Measure the similarity ladder of the offline targets (``scripts/measure_ladder.py``)
    unless its results are already on disk (resume); returns the exit code."""
    out = out or REPO_ROOT / "results" / "similarity_ladder"
    if (out / "ladder.csv").exists():
        print(f"similarity ladder: {out / 'ladder.csv'} exists, skipped", flush=True)
        return 0
    cmd = [sys.executable, str(REPO_ROOT / "scripts" / "measure_ladder.py"), "--out", str(out)]
    print("measuring the similarity ladder:", " ".join(cmd), flush=True)
    return subprocess.call(cmd, env={**os.environ, "TQDM_DISABLE": "1"})


def build_book(root: Path) -> int:
    jb = Path(sys.executable).with_name("jupyter-book")
    # --all and execute_notebooks: force (_config.yml): chapters read results/ at build time,
    # which neither Sphinx nor the execution cache sees change, so every page is rebuilt.
    cmd = [str(jb), "build", str(root), "-W", "-n", "--keep-going", "--all"]
    print("building the book:", " ".join(cmd), flush=True)
    return subprocess.call(cmd, env={**os.environ, "TQDM_DISABLE": "1"})


def stop_tree_on_sigterm() -> None:
    """On SIGTERM, terminate every descendant of this process, then exit with 143.

    Papermill's kernels run in their own session (jupyter_client starts them with
    ``start_new_session``), so a signal to the driver's process group never reaches them or the
    pool workers their grids spawned; the descendants are found by walking the process tree
    (psutil) instead. Survivors of SIGTERM get SIGKILL after 5 s.
    """
    import psutil

    def handler(signum: int, frame: Any) -> None:
        procs = psutil.Process().children(recursive=True)
        for proc in procs:
            try:
                proc.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=5)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", choices=SCALES, default=None, help="default: gpu if CUDA, else cpu"
    )
    parser.add_argument("--profile", choices=PROFILES, default="offline")
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of {', '.join(NOTEBOOKS)}"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--results-root", type=Path, default=None)
    parser.add_argument("--notebooks-dir", type=Path, default=REPO_ROOT / "notebooks")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    parser.add_argument("--book", dest="book", action="store_true", default=None)
    parser.add_argument("--no-book", dest="book", action="store_false")
    parser.add_argument(
        "--executor", choices=EXECUTORS, default=None, help="where grids run (default: local)"
    )
    parser.add_argument(
        "--ray-address", default=None, help="Ray cluster to join (default: $RAY_ADDRESS, or local)"
    )
    args = parser.parse_args(argv)
    if args.executor:  # kernels inherit the environment, and run_grid reads it
        os.environ[ENV_EXECUTOR] = args.executor
    if args.ray_address:
        os.environ["RAY_ADDRESS"] = args.ray_address

    scale = args.scale or default_scale()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(NOTEBOOKS)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        parser.error(f"unknown notebook(s) {', '.join(unknown)}; valid: {', '.join(NOTEBOOKS)}")
    try:
        overrides = parse_overrides(args.overrides)
    except ValueError as exc:
        parser.error(str(exc))

    print(
        f"reproduce: scale={scale} profile={args.profile} notebooks={', '.join(names)}", flush=True
    )
    outcomes = []
    for name in names:
        print(f"--> {name}", flush=True)
        outcome = run_notebook(
            name,
            scale,
            args.profile,
            overrides,
            notebooks_dir=args.notebooks_dir,
            results_root=args.results_root,
            timeout_s=args.timeout,
        )
        print(f"    {outcome.status} in {outcome.seconds:.1f} s {outcome.error}", flush=True)
        outcomes.append(outcome)

    if args.profile == "offline" and scale != "smoke" and not args.only:
        ladder_rc = measure_ladder()
        if ladder_rc:
            outcomes.append(
                NotebookOutcome("similarity_ladder", "failed", 0.0, error=f"exit {ladder_rc}")
            )
    print(summarise(outcomes, scale), flush=True)
    failed = [o.name for o in outcomes if o.status != "ok"]
    build = args.book if args.book is not None else scale != "smoke"
    book_rc = build_book(REPO_ROOT) if build else 0
    if failed:
        print(f"FAILED: {', '.join(failed)} (see executed.failed.ipynb in their results folders)")
    if book_rc:
        print(f"book build failed with exit code {book_rc}")
    return 1 if failed or book_rc else 0


if __name__ == "__main__":
    stop_tree_on_sigterm()
    sys.exit(main())

__all__ = [
    "NOTEBOOKS",
    "SCALES",
    "PROFILES",
    "results_dir",
    "committed_results_dir",
    "declared_parameters",
    "load_params",
    "resolve_parameters",
    "run_notebook",
    "main",
]
