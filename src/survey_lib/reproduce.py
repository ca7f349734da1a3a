"""The ``make reproduce`` driver: run every reproduction notebook with papermill.

Usage::

    python -m survey_lib.reproduce [--scale smoke|cpu|gpu|published] [--profile offline|paper]
                                   [--only NAME[,NAME]] [--set KEY=VALUE ...] [--no-book]
                                   [--executor local|ray] [--ray-address HOST:PORT]
                                   [--estimate] [--explain]

``--scale gpu`` stops at once where CUDA is unusable (:mod:`survey_lib.gpu`); ``--estimate``
prints the expected GPU time per notebook and trains nothing (:mod:`survey_lib.estimate`;
with ``--profile paper`` and no ``--scale``: GPU hours per notebook and paper preset).
``--scale published`` exists for the paper profile only (the papers' own protocols);
``--explain`` prints the protocol table of :mod:`survey_lib.protocol_table` and runs nothing.

For each notebook ``notebooks/<name>.md`` (MyST markdown, converted with jupytext) the driver

1. reads the names the notebook declares in its cell tagged ``parameters``;
2. loads the committed protocol ``notebooks/params/<name>/<scale>.yaml`` (for the paper
   profile ``paper-<scale>.yaml`` alone, complete or derived from another paper file by stated
   changes: :mod:`survey_lib.protocol_files`), applies ``--set`` overrides, rejects any name the
   notebook does not declare and any key no cell reads, and prints the resolved protocol (also
   recorded in ``driver.json``);
3. executes it in a fresh kernel, writing the executed notebook, the tidy results and their
   provenance under :func:`results_dir` (runs already on disk are skipped by the notebook's
   :func:`survey_lib.runner.run_grid`, so an interrupted reproduction resumes);
4. keeps going past a failed notebook, prints a summary with wall times against the speed
   targets, and exits non-zero if anything failed; finally it builds the book.

``smoke`` runs write to ``results/smoke/`` (git-ignored), never over committed results.
``--executor``/``--ray-address`` reach every notebook's run_grid through the environment
(``SURVEY_EXECUTOR``, ``RAY_ADDRESS``), so notebooks need no edit. SIGTERM (a job scheduler,
``timeout``) stops the whole process tree: the kernels and the pool workers their grids spawned.

Overrides (``--set KEY=VALUE``, repeatable; ``make reproduce SET="KEY=VALUE KEY=VALUE"``) change
one protocol value for an exploratory run. ``KEY`` is a declared parameter or a dotted path into
one (``methods.L2-SP.alpha=1.0``, ``train.epochs=2``; a missing key of a mapping is added, so
``methods.MINE={regularizer: mine, alpha: 0.1}`` adds a method); ``VALUE`` is YAML (``1e-3`` is a
number). An overridden run never writes into a committed protocol's folder: it goes to
``results/<scale>-set-<slug>/<notebook>/`` (git-ignored; the slug names the overrides and ends in
a hash of them), with the overrides in ``driver.json`` and ``overrides.json``. Finished runs of
the committed protocol whose run id the override leaves unchanged are copied from
``results/<scale>/`` rather than re-run; source checkpoints are shared with that scale. The book
reads committed protocols only (:func:`committed_results_dir`).

Every notebook's parameters are validated (:mod:`survey_lib.experiments.validate`) before any run
starts; the summary counts the runs that failed in each notebook (``provenance.json``'s
``runs_failed`` of its grids).
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from survey_lib.io import atomic_write_json
from survey_lib.protocol_files import ResolvedProtocol, format_protocol, resolve_file, unread_keys
from survey_lib.runner.grid import ENV_EXECUTOR, EXECUTORS

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ("yosinski_layer_transfer", "kornblith_gains_vs_size", "l2sp_vs_bss",
             "transferability_ranking", "best_practice_quadrants")
#: The reproductions of published papers: they have a ``published`` preset (the papers' own
#: protocols, paper profile only) and entries in ``results/published/protocols.yaml``.
PUBLISHED_NOTEBOOKS = ("yosinski_layer_transfer", "kornblith_gains_vs_size", "l2sp_vs_bss")
SCALES = ("smoke", "cpu", "gpu", "published")
#: Scales that exist for the paper profile only: ``published`` is the papers' own protocol
#: (``paper-published.yaml``), which has no offline counterpart.
PAPER_ONLY_SCALES = ("published",)
PROFILES = ("offline", "paper")
#: Wall-time goals for all three notebooks together, in seconds (issue: smoke < 3 min on the
#: 2-core CPU, cpu < 45 min, gpu < 15 min on one H100-class GPU).
SPEED_TARGETS_S = {"smoke": 180.0, "cpu": 45 * 60.0, "gpu": 15 * 60.0}
#: Names the driver itself passes to every notebook (``--set`` may not change them).
INJECTED = ("scale", "profile", "results_dir", "checkpoint_dir")
_INJECTED_HOW = {
    "scale": "choose it with --scale (make reproduce SCALE=...)",
    "profile": "choose it with --profile (make reproduce PROFILE=...)",
    "results_dir": "the driver chooses it; pass --results-root DIR to move all results",
    "checkpoint_dir": "the driver chooses it (results/<scale>/checkpoints)",
}


class ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: ``1e-3`` and ``5E+2`` are numbers.

    PyYAML follows YAML 1.1, whose float pattern needs a dot (``1.0e-3``), so ``1e-3`` would
    load as the string ``"1e-3"``. This loader adds the YAML 1.2 core-schema float pattern."""


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(stream: Any) -> Any:
    """Parse YAML text or an open file with :class:`ParamsLoader`."""
    return yaml.load(stream, Loader=ParamsLoader)  # noqa: S506 - a SafeLoader subclass


def default_scale() -> str:
    """``gpu`` when CUDA is available, else ``cpu``."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def results_dir(
    name: str,
    scale: str,
    profile: str = "offline",
    root: Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Where a notebook's results live: ``results/<scale>/<name>`` (offline profile) or
    ``results/paper-<scale>/<name>`` (paper profile); with ``overrides`` (``--set``),
    ``results/<scale>-set-<slug>/<name>`` (see :func:`override_tag`), never the committed one."""
    base = protocol_root(scale, profile, root)
    if overrides:
        return base.with_name(f"{base.name}-set-{override_tag(overrides)}") / name
    return base / name


def protocol_root(scale: str, profile: str = "offline", root: Path | None = None) -> Path:
    """``results/<scale>`` or ``results/paper-<scale>``: a committed protocol's results root,
    which also holds the scale's (git-ignored) ``checkpoints/``."""
    _check_choice("scale", scale, SCALES)
    _check_choice("profile", profile, PROFILES)
    if scale in PAPER_ONLY_SCALES and profile != "paper":
        raise ValueError(f"scale {scale!r} exists only with profile 'paper' (--profile paper)")
    root = Path(root) if root is not None else REPO_ROOT / "results"
    return root / (scale if profile == "offline" else f"paper-{scale}")


def override_tag(overrides: dict[str, Any]) -> str:
    """A folder name for a set of overrides: a readable slug of ``key=value`` pairs (at most 48
    characters) and 8 hex digits of SHA-256 over their canonical JSON, e.g.
    ``methods.L2-SP.alpha-1.0-05b526a4``."""
    canonical = json.dumps(overrides, sort_keys=False, default=str, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
    text = "_".join(f"{k}-{json.dumps(v, default=str)}" for k, v in overrides.items())
    slug = re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_.")[:48].rstrip("_.-")
    return f"{slug}-{digest}" if slug else digest


def committed_results_dir(name: str, root: Path | None = None) -> Path | None:
    """The committed offline results a chapter should read: ``gpu`` if present, else ``cpu``.

    ``SURVEY_RESULTS_SCALE`` overrides the choice (e.g. ``smoke`` while testing). Results of
    ``--set`` overrides (``results/<scale>-set-*/``) are never chosen: the book shows committed
    protocols only."""
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
    """The committed protocol for one notebook at one scale (and profile), fully resolved
    (:func:`load_protocol`)."""
    return load_protocol(name, scale, profile, notebooks_dir).params


def load_protocol(name: str, scale: str, profile: str, notebooks_dir: Path) -> ResolvedProtocol:
    """The committed protocol for one notebook: ``<scale>.yaml`` (offline profile) or
    ``paper-<scale>.yaml`` (paper profile), each complete in itself or derived from another
    file by stated changes (:mod:`survey_lib.protocol_files`); the paper profile never reads
    the offline files.

    Raises:
        FileNotFoundError: no such file (the message lists the available ones).
        ValueError: the file is not valid YAML (the message names the file, line and column),
            does not hold a mapping, or states a change without its effect.
    """
    _check_choice("scale", scale, SCALES)
    _check_choice("profile", profile, PROFILES)
    if scale in PAPER_ONLY_SCALES and profile != "paper":
        raise ValueError(f"scale {scale!r} exists only with profile 'paper' (--profile paper)")
    folder = notebooks_dir / "params" / name

    def load(path: Path) -> dict[str, Any]:
        if not path.exists():
            available = sorted(p.name for p in folder.glob("*.yaml")) if folder.exists() else []
            raise FileNotFoundError(
                f"no parameter file {path.relative_to(notebooks_dir.parent)}; "
                f"available for {name}: {available or 'none'}"
            )
        try:
            with path.open(encoding="utf-8") as handle:  # a stream: errors name the file
                loaded = load_yaml(handle) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"{path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path} must hold a mapping of parameter names to values")
        return loaded

    stem = scale if profile == "offline" else f"paper-{scale}"
    return resolve_file(folder, stem, load=load, apply=apply_overrides)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings to an ordered dict ``{dotted key: value}``; values are parsed as
    YAML (numbers, ``1e-3`` included, lists, mappings). The driver's own names
    (:data:`INJECTED`) are rejected.

    Raises:
        ValueError: not ``KEY=VALUE``, a value that is not valid YAML, or an injected name.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ValueError(
                f"--set expects KEY=VALUE with KEY a parameter name or a dotted path into one "
                f"(e.g. methods.L2-SP.alpha=1.0), got {pair!r}"
            )
        top = key.split(".")[0]
        if top in INJECTED:
            raise ValueError(f"--set {key}: {top} cannot be overridden; {_INJECTED_HOW[top]}")
        try:
            out[key] = load_yaml(value)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            mark = getattr(exc, "problem_mark", None)
            where = f" at column {mark.column + 1}" if mark is not None else ""
            raise ValueError(
                f"--set {key}: the value {value!r} is not valid YAML ({problem}{where}); quote "
                f"the whole argument for the shell, e.g. --set '{key}=[0.001, 0.01]'"
            ) from None
    return out


def apply_overrides(params: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` with each override applied in order: ``a=v`` replaces ``a``;
    ``a.b.c=v`` sets key ``c`` of mapping ``params[a][b]`` (a missing key along the way is added
    as a mapping, so a new method can be added). Raises ``ValueError`` when the path runs into a
    value that is not a mapping."""
    out = copy.deepcopy(params)
    for key, value in overrides.items():
        parts = key.split(".")
        node = out
        for depth, part in enumerate(parts[:-1]):
            if part not in node:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                where = ".".join(parts[: depth + 1])
                raise ValueError(
                    f"--set {key}: {where} is a {type(node).__name__} ({node!r}), not a mapping; "
                    f"set it whole instead, e.g. --set '{where}=...'"
                )
        node[parts[-1]] = copy.deepcopy(value)
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
    """What the driver learnt about one notebook.

    ``status`` is ``ok``, ``partial`` (the notebook ran but some runs of its grids failed;
    ``failed_runs`` counts them) or ``failed`` (``error`` says why; ``failed_notebook`` is the
    partially executed notebook when one was written)."""

    name: str
    status: str
    seconds: float
    output: Path | None = None
    error: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    failed_runs: int = 0
    failed_notebook: Path | None = None


def failed_runs(out_dir: Path, since: float = 0.0) -> dict[str, int]:
    """Failed runs per grid of a notebook's results folder: the length of ``runs_failed`` in
    every ``<grid>/provenance.json`` written at or after ``since`` (a Unix time)."""
    counts: dict[str, int] = {}
    for prov in sorted(Path(out_dir).glob("*/provenance.json")):
        try:
            if prov.stat().st_mtime < since:
                continue
            counts[prov.parent.name] = len(json.loads(prov.read_text()).get("runs_failed") or [])
        except (OSError, ValueError) as exc:
            counts[prov.parent.name] = -1  # unreadable: reported, never counted as fine
            print(f"    cannot read {prov}: {exc}", flush=True)
    return counts


def _check_writable(folder: Path) -> None:
    """Create ``folder`` and a file in it, or raise ``OSError`` saying what to do."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OSError(
            f"cannot write results to {folder}: {exc.strerror or exc}; make it writable or "
            "pass --results-root DIR (another folder for all results)"
        ) from None


def _seed_from_protocol(out_dir: Path, base_dir: Path) -> int:
    """Copy the finished run records of the committed protocol's folder ``base_dir`` into the
    override folder ``out_dir`` (those not there yet): a run whose id the override leaves
    unchanged is then found on disk and not re-run. Returns the number copied."""
    copied = 0
    if not base_dir.is_dir() or base_dir.resolve() == out_dir.resolve():
        return 0
    for record in base_dir.glob("*/runs/*.json"):
        dest = out_dir / record.parent.parent.name / "runs" / record.name
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(record, dest)
            copied += 1
    return copied


def _precision_for_this_machine(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The protocol with ``amp_bf16: true`` turned off where this machine would compute it in
    fp32 (:func:`survey_lib.train.precision.protocol_for_device`), saying so: the runs then get
    their own ids instead of passing as the committed bf16 runs."""
    from survey_lib.experiments.common import default_device
    from survey_lib.train.precision import protocol_for_device

    out, changed = protocol_for_device(params, default_device())
    if changed:
        print(f"{name}: this machine has no native bf16, so {', '.join(changed)} -> false "
              "(fp32; these runs differ from the committed bf16 runs)", flush=True)
    return out


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
    """Execute one notebook in a fresh kernel; never raises for a notebook error.

    With ``overrides`` the results go to their own folder (:func:`results_dir`), seeded with the
    committed protocol's finished runs. Parameters are validated before anything runs."""
    import jupytext
    import nbformat
    import papermill

    from survey_lib.experiments.validate import check_parameters

    start, wall_start = time.perf_counter(), time.time()
    out_dir = results_dir(name, scale, profile, results_root, overrides)
    ckpt_dir = protocol_root(scale, profile, results_root) / "checkpoints"
    try:
        source = notebooks_dir / f"{name}.md"
        if not source.exists():
            raise FileNotFoundError(f"no notebook {source}; valid: {', '.join(NOTEBOOKS)}")
        notebook = jupytext.read(source)
        protocol = load_protocol(name, scale, profile, notebooks_dir)
        params = apply_overrides(protocol.params, overrides)
        unread = unread_keys(name, params)
        if unread:
            raise ValueError(
                f"{name}: key(s) {', '.join(unread)} of the protocol are read by no cell; "
                "remove them (see the notebook's schema in survey_lib.experiments.validate)"
            )
        params = _precision_for_this_machine(name, params)
        protocol = ResolvedProtocol(params, protocol.files, protocol.changes)
        print(format_protocol(name, protocol), flush=True)
        cwd = notebooks_dir.parent.resolve()

        def shown(path: Path) -> str:  # relative to the kernel's cwd where possible
            path = path.resolve()
            return str(path.relative_to(cwd) if path.is_relative_to(cwd) else path)

        injected = {
            "scale": scale,
            "profile": profile,
            "results_dir": shown(out_dir),
            "checkpoint_dir": shown(ckpt_dir),
        }
        resolved = resolve_parameters(notebook, name, params, injected)
        check_parameters(name, resolved)
        _check_writable(out_dir)
    except Exception as exc:  # bad input: reported in the summary, other notebooks go on
        return NotebookOutcome(name, "failed", time.perf_counter() - start, error=str(exc))

    failed_nb = out_dir / "executed.failed.ipynb"
    staged = out_dir / ".source.ipynb"
    partial = out_dir / ".executed.partial.ipynb"
    env_before = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    written_failed: Path | None = None
    try:
        failed_nb.unlink(missing_ok=True)  # a stale one must not sit beside new results
        if overrides:
            base = results_dir(name, scale, profile, results_root)
            atomic_write_json(
                out_dir.parent / "overrides.json",
                {"scale": scale, "profile": profile, "overrides": overrides,
                 "protocol": f"notebooks/params/<notebook>/"
                 f"{scale if profile == 'offline' else 'paper-' + scale}.yaml"},
            )
            reused = _seed_from_protocol(out_dir, base)
            if reused:
                print(f"    {reused} finished run record(s) of {base} copied in: the runs whose id "
                      "the overrides leave unchanged are reused, the others move to stale/",
                      flush=True)  # fmt: skip
        nbformat.write(notebook, staged)
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
        try:
            if partial.exists():
                os.replace(partial, failed_nb)
                written_failed = failed_nb
        except OSError:
            pass
        lines = str(exc).strip().splitlines()
        status, error = "failed", f"{type(exc).__name__}: {lines[-1] if lines else ''}"
    finally:
        staged.unlink(missing_ok=True)
        if env_before is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = env_before
    per_grid = failed_runs(out_dir, since=wall_start - 1.0)
    n_failed = sum(abs(v) for v in per_grid.values())
    if status == "ok" and n_failed:
        status = "partial"
    if n_failed:
        detail = ", ".join(f"{g}: {n}" for g, n in per_grid.items() if n)
        error = "; ".join(x for x in (error, f"{n_failed} run(s) failed ({detail})") if x)
    seconds = time.perf_counter() - start
    outcome = NotebookOutcome(
        name, status, seconds, out_dir / "executed.ipynb", error, resolved, n_failed,
        written_failed,
    )
    try:
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
                "protocol": protocol.record(),
                "overrides": overrides,
                "failed_runs": per_grid,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
    except OSError as exc:
        outcome.status = "failed"
        outcome.error = f"cannot write {out_dir / 'driver.json'}: {exc.strerror or exc}"
    return outcome


def summarise(outcomes: list[NotebookOutcome], scale: str) -> str:
    """The driver's closing table: status, wall time and failed runs of every notebook."""
    lines = [f"{'notebook':<28} {'status':<8} {'seconds':>9} {'failed runs':>11}  note"]
    for o in outcomes:
        lines.append(
            f"{o.name:<28} {o.status:<8} {o.seconds:>9.1f} {o.failed_runs:>11}  {o.error}"
        )
    total = sum(o.seconds for o in outcomes)
    target = SPEED_TARGETS_S.get(scale)
    verdict = (
        f"{'within' if total <= target else 'OVER'} the {scale} goal of {target:.0f} s"
        if target is not None else f"no speed goal at scale {scale}"
    )
    lines.append(
        f"{'total':<28} {'':<8} {total:>9.1f} {sum(o.failed_runs for o in outcomes):>11}  "
        f"{verdict}"
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


_SET_HELP = """\
override one protocol value (repeatable): KEY is a parameter of the notebook's parameters cell
or a dotted path into one (methods.L2-SP.alpha=1.0, train.epochs=2; a missing key of a mapping
is added: methods.MINE={regularizer: mine, alpha: 0.1}); VALUE is YAML (1e-3, [0, 1], {a: 1}).
Overridden results go to results/<scale>-set-<slug>/<notebook>/ (git-ignored), never over the
committed ones; scale, profile, results_dir and checkpoint_dir cannot be set. With make:
make reproduce SET="KEY=VALUE KEY=VALUE" """
def _estimate(names: list[str], scale: str | None, profile: str, notebooks_dir: Path) -> int:
    """``--estimate``: :mod:`survey_lib.estimate` for the committed protocols at ``scale``, or,
    for the paper profile without ``--scale``, GPU hours per notebook and paper preset. 1 when
    some configuration's step time was never measured (the numbers then come from the stated
    prior, and the message says what to run)."""
    from survey_lib import estimate

    measured = estimate.load_measurements()
    if scale is None:  # every paper preset (the published one for the reproductions only)
        def load(name: str, preset: str) -> dict[str, Any] | None:
            if preset in PAPER_ONLY_SCALES and name not in PUBLISHED_NOTEBOOKS:
                return None
            return load_params(name, preset, profile, notebooks_dir)

        rows = estimate.preset_table(names, list(SCALES), load, measured)
        print(estimate.format_presets(rows, measured, profile), flush=True)
        return 0 if all(r["basis"] == "measured" for r in rows) else 1
    params = {n: load_params(n, scale, profile, notebooks_dir) for n in names}
    result = estimate.estimate(names, params, measured)
    print(estimate.format_estimate(result, scale, profile=profile), flush=True)
    return 0 if all(r["basis"] == "measured" for r in result["notebooks"].values()) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Example: python -m survey_lib.reproduce --scale smoke --only l2sp_vs_bss "
        "--set methods.L2-SP.alpha=1.0 --no-book",
    )
    parser.add_argument(
        "--scale", choices=SCALES, default=None, help="protocol size; default: gpu if CUDA, else cpu"
    )
    parser.add_argument(
        "--profile", choices=PROFILES, default="offline",
        help="offline: data available without network; paper: the survey's datasets and weights",
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of {', '.join(NOTEBOOKS)}"
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=_SET_HELP
    )
    parser.add_argument(
        "--results-root", type=Path, default=None, help="folder holding all results (default: results/)"
    )
    parser.add_argument(
        "--notebooks-dir", type=Path, default=REPO_ROOT / "notebooks",
        help="folder of the notebooks and their params/ (default: notebooks/)",
    )
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    parser.add_argument(
        "--book", dest="book", action="store_true", default=None,
        help="build the book afterwards (default: yes except at smoke scale or with --set)",
    )
    parser.add_argument("--no-book", dest="book", action="store_false", help="do not build the book")
    parser.add_argument(
        "--explain", action="store_true",
        help="print, per notebook, the protocol table (aspect | published (source) | ours | "
        "deviation and expected effect) from the resolved protocol and "
        "results/published/protocols.yaml, and run nothing",
    )
    parser.add_argument(
        "--executor", choices=EXECUTORS, default=None, help="where grids run (default: local)"
    )
    parser.add_argument(
        "--ray-address", default=None, help="Ray cluster to join (default: $RAY_ADDRESS, or local)"
    )
    parser.add_argument(
        "--estimate", action="store_true",
        help="print the expected GPU time per notebook, train nothing (--profile paper without "
        "--scale: GPU hours per notebook and paper preset)",
    )
    args = parser.parse_args(argv)
    if args.executor:  # kernels inherit the environment, and run_grid reads it
        os.environ[ENV_EXECUTOR] = args.executor
    if args.ray_address:
        os.environ["RAY_ADDRESS"] = args.ray_address

    scale = args.scale or default_scale()
    if scale in PAPER_ONLY_SCALES and args.profile != "paper":
        parser.error(f"--scale {scale} exists only with --profile paper (the papers' protocols)")
    default = PUBLISHED_NOTEBOOKS if scale in PAPER_ONLY_SCALES else NOTEBOOKS
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(default)
    unknown = [n for n in names if n not in NOTEBOOKS]
    if unknown:
        parser.error(f"unknown notebook(s) {', '.join(unknown)}; valid: {', '.join(NOTEBOOKS)}")
    try:
        overrides = parse_overrides(args.overrides)
    except ValueError as exc:
        parser.error(str(exc))

    if args.explain:
        from survey_lib.protocol_table import explain

        for name in names:
            if name not in PUBLISHED_NOTEBOOKS:
                print(f"## {name}: no published protocol to compare with (valid: "
                      f"{', '.join(PUBLISHED_NOTEBOOKS)})", flush=True)
                continue
            protocol = apply_overrides(
                load_protocol(name, scale, args.profile, args.notebooks_dir).params, overrides
            )
            print(explain(name, protocol, scale=scale, profile=args.profile), flush=True)
        return 0

    from survey_lib.kernel import ensure_kernel

    healed = ensure_kernel()
    if healed:
        print(healed, flush=True)
    if args.estimate:
        every_preset = args.profile == "paper" and args.scale is None
        return _estimate(names, None if every_preset else scale, args.profile, args.notebooks_dir)
    from survey_lib import gpu

    try:
        gpu.require_cuda(scale)
    except gpu.CudaUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    if scale == "gpu":
        gpu.export_determinism_env()  # before any kernel starts: cuBLAS reads it once
    print(
        f"reproduce: scale={scale} profile={args.profile} notebooks={', '.join(names)}"
        + (f" overrides={overrides}" if overrides else ""),
        flush=True,
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
        if overrides and outcome.output is not None:
            print(f"    results (overrides): {outcome.output.parent}", flush=True)
        outcomes.append(outcome)

    if args.profile == "offline" and scale != "smoke" and not args.only and not overrides:
        ladder_rc = measure_ladder()
        if ladder_rc:
            outcomes.append(
                NotebookOutcome("similarity_ladder", "failed", 0.0, error=f"exit {ladder_rc}")
            )
    print(summarise(outcomes, scale), flush=True)
    failed = [o for o in outcomes if o.status == "failed"]
    partial = [o for o in outcomes if o.status == "partial"]
    build = args.book if args.book is not None else scale != "smoke" and not overrides
    book_rc = build_book(REPO_ROOT) if build else 0
    for o in failed:
        where = f"see {o.failed_notebook}" if o.failed_notebook else "nothing was executed"
        print(f"FAILED: {o.name} ({where}): {o.error}")
    for o in partial:
        print(f"PARTIAL: {o.name}: {o.error}; failures in <grid>/failed/*.json of {o.output.parent}")
    if book_rc:
        print(f"book build failed with exit code {book_rc}")
    return 1 if failed or book_rc else 0


if __name__ == "__main__":
    stop_tree_on_sigterm()
    sys.exit(main())

__all__ = [
    "NOTEBOOKS",
    "PUBLISHED_NOTEBOOKS",
    "SCALES",
    "PAPER_ONLY_SCALES",
    "PROFILES",
    "results_dir",
    "protocol_root",
    "override_tag",
    "committed_results_dir",
    "parse_overrides",
    "apply_overrides",
    "load_yaml",
    "failed_runs",
    "declared_parameters",
    "load_params",
    "load_protocol",
    "resolve_parameters",
    "run_notebook",
    "main",
]
