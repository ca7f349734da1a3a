"""Time the full glyphs render (every pinned font, every script) and the cached load.

Not a test. Goal: the cold render finishes in under 60 s on the project's CPU machine.
Usage::

    python benchmarks/bench_glyphs.py [--cache-dir DIR]

Without ``--cache-dir`` a fresh temporary cache is used, so the first load is a true cold render.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

GOAL_SECONDS = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", default=None, help="default: a fresh temporary folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SURVEY_CACHE_DIR"] = args.cache_dir or tmp
        from survey_lib.data import glyphs  # after the cache folder is set

        start = time.perf_counter()
        first = glyphs.load_glyphs("train", scripts=glyphs.SCRIPTS)
        render = time.perf_counter() - start
        glyphs._MEMO.clear()  # the next load reads the cache file, as a new process would
        start = time.perf_counter()
        glyphs.load_glyphs("train", scripts=glyphs.SCRIPTS)
        cached = time.perf_counter() - start
        for split in glyphs.SPLITS:
            for script in glyphs.SCRIPTS:
                data = glyphs.load_glyphs(split, scripts=(script,))
                fonts = glyphs.glyph_fonts(split, (script,))
                print(f"{split:5s} {script:8s} {len(fonts):4d} fonts {len(data):6d} images "
                      f"{data.num_classes:3d} classes checksum {data.checksum}")  # fmt: skip
        verdict = "meets" if render < GOAL_SECONDS else "MISSES"
        print(f"first load (render all, {len(first)} train images): {render:.1f} s ({verdict} "
              f"the {GOAL_SECONDS:.0f} s goal); cached load: {cached:.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
