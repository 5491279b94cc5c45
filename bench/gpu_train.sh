#!/usr/bin/env bash
# Short AVS-Synth training run on a CUDA host with the FFmpeg-free release binary:
# synth (extracted layout) -> label captions -> embed (MiniLM) -> train -> eval, then a short table of
# samples/s, peak GPU memory, the test metrics and the cost table (oassl cost).
#
# Usage (repository root, after `make setup` so .venv has torch 2.11 and data/models has MiniLM):
#   bench/gpu_train.sh [SCALE] [EPOCHS]
# SCALE multiplies the AVS-Synth split sizes (default 10: 960 + 960 train clips), EPOCHS overrides
# [train] epochs of pipeline.gpu.toml (default 10). Everything is written under bench/out/.
set -euo pipefail

SCALE="${1:-10}"
EPOCHS="${2:-10}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/bench/out"
BIN="$ROOT/target/release/oassl"
MINILM="$ROOT/data/models/all-MiniLM-L6-v2"

cd "$ROOT"
export LIBTORCH_USE_PYTORCH=1
if [ -d "$ROOT/.venv" ]; then
  export PATH="$ROOT/.venv/bin:$PATH"
  TORCH_LIB="$(ls -d "$ROOT"/.venv/lib/python3*/site-packages/torch/lib 2>/dev/null | head -n1 || true)"
  [ -n "$TORCH_LIB" ] && export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

if [ ! -x "$BIN" ]; then
  cargo build --release --no-default-features
fi
"$BIN" info

mkdir -p "$OUT"
CONFIG="$OUT/pipeline.toml"
# The GPU profile with the data folder and epochs of this run.
sed -e "s|^root = .*|root = \"$OUT/data\"|" -e "s|^epochs = .*|epochs = $EPOCHS|" "$ROOT/pipeline.gpu.toml" > "$CONFIG"
cat >> "$CONFIG" <<TOML

[embed]
model_dir = "$MINILM"
device = "cuda"
batch_size = 256
TOML

"$BIN" --config "$CONFIG" synth --layout extracted --scale "$SCALE"
"$BIN" --config "$CONFIG" label-captions --force
"$BIN" --config "$CONFIG" embed

# Peak GPU memory of the training process, sampled by nvidia-smi while it runs.
MEMLOG="$OUT/gpu_memory.csv"
: > "$MEMLOG"
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >> "$MEMLOG" &
SMI=$!
trap 'kill "$SMI" 2>/dev/null || true' EXIT
START=$(date +%s)
"$BIN" --config "$CONFIG" train --force | tee "$OUT/train.log"
END=$(date +%s)
kill "$SMI" 2>/dev/null || true
"$BIN" --config "$CONFIG" eval | tee "$OUT/eval.log"
# Table 4: s/iter and peak memory per objective, s/image at inference, each phase in its own process.
"$BIN" --config "$CONFIG" cost --iterations 20 --warmup 5 > "$OUT/cost.log"

STEPS="$OUT/data/train/steps.csv"
PEAK=$(sort -n "$MEMLOG" | tail -n1)
# Median samples/s over the steps after the first 10 (cuDNN autotuning and warm-up excluded).
SPS=$(awk -F, 'NR>11 {print $9}' "$STEPS" | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}')
echo
echo "| quantity | value |"
echo "|---|---|"
echo "| train clips | $(awk -F, 'NR>1 && $4 ~ /^train/' "$OUT/data/dataset/manifest.csv" | wc -l) |"
echo "| steps | $(($(wc -l < "$STEPS") - 1)) |"
echo "| wall time train (s) | $((END - START)) |"
echo "| median samples/s | $SPS |"
echo "| peak GPU memory (MiB, whole GPU) | $PEAK |"
echo "| final loss | $(tail -n1 "$STEPS" | cut -d, -f3) |"
echo
grep '^|' "$OUT/eval.log" || true
echo
grep '^|' "$OUT/cost.log" || true
