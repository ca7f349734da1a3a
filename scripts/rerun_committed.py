"""Re-run chosen committed runs at the current library and compare their metrics, bit for bit.

Committed results carry the code version of the library that computed them; after an edit
that should leave a computation alone (a refactor, a change to code those runs never reach),
this says whether it did, without re-running a whole notebook: it picks the committed run
records of one grid (``results/<scale>/<notebook>/<grid>/runs/*.json``) that match the filters,
calls the grid's run function on each record's parameters and seed in this process, and prints
each metric beside the committed one. The exit status is 1 when any metric differs (or a run
fails), 0 when every one is identical.

    python scripts/rerun_committed.py results/cpu/l2sp_vs_bss/regularizers \\
        --seed 100 --match rate=0.15 --limit 5

A run's numbers depend on the CPU threads it ran with (oneDNN and the matrix kernels split
their sums differently), so each run is re-run with the threads its grid's workers had: with
``workers`` > 1 in ``<grid>/provenance.json`` each worker had ``cpus // workers`` threads
(:func:`survey_lib.runner.grid.worker_slots`), with one worker PyTorch's default; ``--threads``
overrides. With other threads the same code gives slightly different numbers.

Checkpoints are read from each record's ``checkpoint_dir`` (the scale's, git-ignored: a
missing source checkpoint is trained again, as the notebook would). A run trained in a batch
(``provenance.batch``) is re-run alone and so compares only to float rounding.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import yaml

from survey_lib.protocol_table import lookup

#: grid folder name -> the run function the notebooks pass to run_grid
RUN_FUNCTIONS = {
    "base": "survey_lib.experiments.yosinski:run_cell",
    "transfer": "survey_lib.experiments.yosinski:run_cell",
    "glyphs_base": "survey_lib.experiments.yosinski:run_cell",
    "glyphs_transfer": "survey_lib.experiments.yosinski:run_cell",
    "gains": "survey_lib.experiments.kornblith:run_cell",
    "quality": "survey_lib.experiments.kornblith:run_cell",
    "regularizers": "survey_lib.experiments.l2sp_bss:run_cell",
    "lr_sweep": "survey_lib.experiments.l2sp_bss:run_cell",
    "ranking": "survey_lib.experiments.transferability_study:run_cell",
    "choice": "survey_lib.experiments.transferability_study:run_choice",
    "arms": "survey_lib.experiments.quadrants:run_cell",
    "multistep": "survey_lib.experiments.quadrants:run_cell",
    "probes": "survey_lib.experiments.quadrants:run_cell",
}


def _matches(params: dict, filters: list[tuple[str, object]]) -> bool:
    """Whether every ``(dotted key, value)`` filter holds for ``params`` (a missing key fails)."""
    return all(lookup(params, key) == value for key, value in filters)


def _grid_threads(grid: Path) -> int | None:
    """The threads each worker of ``grid``'s run had, from its ``provenance.json`` (``None``:
    one worker, PyTorch's default, or no provenance)."""
    from survey_lib.runner.grid import worker_slots

    path = grid / "provenance.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    workers = record.get("workers")
    cpus = (record.get("device") or {}).get("cpu_count")
    if not isinstance(workers, int) or workers <= 1 or not cpus:
        return None
    return worker_slots(workers, 0, int(cpus))[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path, help="a committed grid folder (holds runs/*.json)")
    parser.add_argument("--seed", type=int, action="append", help="only these seeds")
    parser.add_argument("--match", action="append", default=[], metavar="KEY=VALUE",
                        help="only runs whose parameter KEY (dotted for nested) equals the "
                             "YAML VALUE, e.g. rate=0.15 or target.name=greek_cyrillic")
    parser.add_argument("--limit", type=int, default=5, help="at most this many runs")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (default: those the grid's workers had)")
    args = parser.parse_args(argv)
    if args.grid.name not in RUN_FUNCTIONS:
        parser.error(f"no run function known for grid {args.grid.name!r}; "
                     f"known: {', '.join(sorted(RUN_FUNCTIONS))}")
    filters = []
    for item in args.match:
        key, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--match {item!r}: expected KEY=VALUE")
        filters.append((key, yaml.safe_load(value)))
    threads = args.threads or _grid_threads(args.grid)
    if threads:
        import torch

        torch.set_num_threads(threads)
    print(f"threads: {threads or 'PyTorch default'}")
    module, name = RUN_FUNCTIONS[args.grid.name].split(":")
    run = getattr(importlib.import_module(module), name)
    records = [json.loads(p.read_text()) for p in sorted((args.grid / "runs").glob("*.json"))]
    chosen = [r for r in records if (not args.seed or r["seed"] in args.seed)
              and _matches(r["params"], filters)][: args.limit]  # fmt: skip
    if not chosen:
        print(f"no committed run of {args.grid} matches", file=sys.stderr)
        return 1
    differ = 0
    for record in chosen:
        try:
            out = run(record["params"], record["seed"])
        except Exception as err:  # noqa: BLE001 - reported, counted as a difference
            print(f"{record['run_id']} seed {record['seed']}: failed: {err}")
            differ += 1
            continue
        metrics = getattr(out, "metrics", out)
        for metric, committed in sorted(record["metrics"].items()):
            now = metrics.get(metric)
            same = now == committed
            differ += not same
            print(f"{record['run_id']} seed {record['seed']} {metric}: committed {committed!r} "
                  f"now {now!r} {'identical' if same else 'DIFFERENT'}")
    code = {r["provenance"].get("code_version") for r in chosen} - {None}
    print(f"{len(chosen)} run(s) re-run (committed at code version {', '.join(sorted(code))}); "
          f"{differ} metric(s) differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
