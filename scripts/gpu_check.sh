#!/usr/bin/env bash
# The device check of issue 12: one command, under 10 minutes on one H100/H200, nothing
# downloaded. On a machine without a usable CUDA device it stops within seconds (exit 2) with
# the facts it found.
#   1. CUDA/driver facts; stop if CUDA is unusable
#   2. pytest -m gpu
#   3. the smoke reproduction of l2sp_vs_bss on a fresh results root with fresh checkpoints
#   4. warm fit step times at gpu-scale shapes, 1/2/4/8 workers per GPU, resnet50 at 224 px
#   5. runs per second (benchmarks/bench_runs.py): sequential fp32/bf16 fit against fit_many at
#      K = 1, 8, 16 (issue 13's CUDA goal: fit_many >= 5x sequential at K = 16), with images/s
#      and the share of the GPU's bf16 peak
# Writes results/gpu-check/step_times.json (read by `python -m survey_lib.reproduce --scale
# gpu --estimate`), results/gpu-check/report.txt and the log of every step beside them.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$root/.venv/bin/python}
[ -x "$PY" ] || PY=python3
out=${GPU_CHECK_OUT:-$root/results/gpu-check}
export PYTHONHASHSEED=0 TQDM_DISABLE=1 CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}

echo "== 1. CUDA facts"
"$PY" - <<'PY'
import json, sys
try:
    from survey_lib import gpu
except ImportError as exc:
    sys.exit(f"cannot import survey_lib/torch with {sys.executable} ({exc}): run `make install`")
facts = gpu.cuda_facts()
print(json.dumps(facts, indent=2, default=str))
if not facts["torch.cuda.is_available()"]:
    print(gpu.cuda_message(facts), file=sys.stderr)
    sys.exit(2)
PY
rc=$?
[ $rc -eq 0 ] || exit $rc
mkdir -p "$out"
status=0
start=$(date +%s)

echo "== 2. pytest -m gpu"
(cd "$root" && "$PY" -m pytest -m gpu -q -p no:cacheprovider) 2>&1 | tee "$out/pytest-gpu.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "pytest -m gpu FAILED"; status=1; }

echo "== 3. smoke reproduction of l2sp_vs_bss (fresh results root and checkpoints)"
fresh=$(mktemp -d)
(cd "$root" && "$PY" -m survey_lib.reproduce --scale smoke --only l2sp_vs_bss --no-book \
  --results-root "$fresh") 2>&1 | tee "$out/smoke-l2sp_vs_bss.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "smoke l2sp_vs_bss FAILED (see $fresh)"; status=1; }

echo "== 4. step times"
(cd "$root" && "$PY" scripts/gpu_bench.py --out "$out") 2>&1 | tee "$out/bench.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "step timing FAILED"; status=1; }

echo "== 5. runs per second: fit_many against sequential fit"
(cd "$root" && "$PY" benchmarks/bench_runs.py --device cuda --ks 1,8,16 --repeats 2) 2>&1 \
  | tee "$out/bench_runs.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "runs-per-second bench FAILED"; status=1; }

echo "== done in $(( $(date +%s) - start )) s, status $status; report: $out/report.txt"
exit $status
