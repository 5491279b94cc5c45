#!/usr/bin/env bash
# Runs bench/gpu.sh on a GPU host from a folder made by bench/gpu_pack.sh: unpacks the binary, points it at the
# libtorch of python3's torch, samples GPU utilisation while it runs, and gathers the table, the log, the raw
# results and the utilisation trace in OUT.
#
# Usage (repository root on the host):  bench/gpu_host.sh PACK OUT [SECONDS]
# SECONDS bounds bench/gpu.sh (default 480). GPU_HOST_ARGS is passed to bench/gpu.sh (`--cpu` in the test
# suite). Exits with bench/gpu.sh's status.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PACK="$(cd "${1:?usage: bench/gpu_host.sh PACK OUT [SECONDS]}" && pwd)"
OUT="${2:?usage: bench/gpu_host.sh PACK OUT [SECONDS]}"
LIMIT="${3:-480}"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
gunzip -c "$PACK/oassl.gz" > "$WORK/oassl" && chmod +x "$WORK/oassl" || { echo "gpu_host.sh: cannot unpack $PACK/oassl.gz" >&2; exit 1; }

TRACE=""
if command -v nvidia-smi >/dev/null; then
  nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -lms 250 \
    > "$OUT/utilisation.csv" 2>&1 &
  TRACE=$!
fi
# Each line of gpu.sh's progress with the time it was printed, to line up with the utilisation trace.
OASSL_BIN="$WORK/oassl" MINILM_DIR="$PACK/minilm" GPU_BENCH_OUT="$WORK/gpu" timeout "$LIMIT" "$ROOT/bench/gpu.sh" ${GPU_HOST_ARGS:-} 2>&1 \
  | while IFS= read -r line; do printf '%s %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$line"; done
status=${PIPESTATUS[0]}
[ -n "$TRACE" ] && kill "$TRACE" 2>/dev/null
cp "$PACK/commit" "$OUT/commit" 2>/dev/null
cp "$WORK/gpu/gpu.md" "$WORK/gpu/gpu.log" "$OUT/" 2>/dev/null
tar czf "$OUT/results.tgz" -C "$WORK/gpu" results 2>/dev/null
rm -rf "$WORK"
echo "gpu_host.sh: bench/gpu.sh exited $status; files in $OUT"
exit "$status"
