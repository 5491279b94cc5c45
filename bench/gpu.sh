#!/usr/bin/env bash
# Stage three at hardware speed, one command, on a one-GPU host with PyTorch in python3 and no Rust or FFmpeg:
# a small AVS-Synth (extracted layout, no FFmpeg) -> label captions -> MiniLM embeddings -> short `oassl train`
# runs per method and precision -> `oassl cost` (step time and peak memory per method, inference at batch 512 and
# 1) -> the PyTorch reference (bench/reference_step.py) on the same shapes. Prints one markdown table.
#
# Usage (repository root or anywhere):  bench/gpu.sh          # CUDA, pipeline.gpu.toml sizes, fp32 and fp16
#                                       bench/gpu.sh --cpu    # small sizes on CPU, fp32 only (the test form)
# The binary: OASSL_BIN, else target/release/oassl next to this folder (`cargo build --release
# --no-default-features` elsewhere, copied with the repository). MiniLM: MINILM_DIR, else
# data/models/all-MiniLM-L6-v2 (`make setup` puts it there; copy it along). Output: GPU_BENCH_OUT, else
# bench/out/gpu (its data/ is rebuilt on every run).
set -euo pipefail

MODE=cuda
case "${1:-}" in
  --cpu) MODE=cpu ;;
  "") ;;
  *) echo "usage: $0 [--cpu]" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${OASSL_BIN:-$ROOT/target/release/oassl}"
MINILM="${MINILM_DIR:-$ROOT/data/models/all-MiniLM-L6-v2}"
OUT="${GPU_BENCH_OUT:-$ROOT/bench/out/gpu}"
PY="${PYTHON:-python3}"

[ -x "$BIN" ] || { echo "gpu.sh: no oassl binary at $BIN (set OASSL_BIN)" >&2; exit 1; }
[ -f "$MINILM/config.json" ] || { echo "gpu.sh: no MiniLM at $MINILM (set MINILM_DIR or run make setup)" >&2; exit 1; }
TORCH_DIR="$("$PY" -c 'import torch,os;print(os.path.dirname(torch.__file__))' 2>/dev/null)" \
  || { echo "gpu.sh: $PY cannot import torch (set PYTHON to a Python that has torch 2.11)" >&2; exit 1; }
export LD_LIBRARY_PATH="$TORCH_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

if [ "$MODE" = cuda ]; then
  # pipeline.gpu.toml's training shapes; 768 training clips = 6 steps of 128 per epoch.
  DEVICE=cuda SIDE=224 AUDIO_S=3.0 BATCH=128 STRIDE=32 WORKERS=12 EPOCHS=3
  TRAIN_CLIPS=384 TEST_CLIPS=4 PRETRAIN=16 INFER_BATCH=512 WARMUP=5 ITERATIONS=10 LOG_EVERY=6
  PRECISIONS="fp32 fp16"
  # Tuned eager PyTorch runs channels-last on CUDA, as oassl does there by default.
  REF_LAYOUT=--channels-last
else
  # Small enough for two CPU cores in about two minutes; the same steps as the CUDA form.
  DEVICE=cpu SIDE=64 AUDIO_S=0.5 BATCH=4 STRIDE=16 WORKERS=2 EPOCHS=1
  TRAIN_CLIPS=4 TEST_CLIPS=1 PRETRAIN=4 INFER_BATCH=8 WARMUP=1 ITERATIONS=1 LOG_EVERY=1
  PRECISIONS="fp32"
  # oassl ignores channels_last on the CPU; the reference keeps the default layout too.
  REF_LAYOUT=
fi

rm -rf "$OUT/data"
mkdir -p "$OUT"
LOG="$OUT/gpu.log"
: > "$LOG"

config() { # METHOD AUTOCAST [IOI_BUDGET, "exact" for none] -> $OUT/pipeline.toml; CHANNELS_LAST=false for NCHW
  local budget="ioi_iteration_budget = ${3:-16}"
  [ "${3:-}" = exact ] && budget=""
  cat > "$OUT/pipeline.toml" <<TOML
[data]
root = "$OUT/data"

[synth]
width = $SIDE
height = $SIDE
train_single = $TRAIN_CLIPS
train_duet = $TRAIN_CLIPS
test_single = $TEST_CLIPS
test_duet = $TEST_CLIPS
pretrain = $PRETRAIN

[embed]
model_dir = "$MINILM"
device = "$DEVICE"
batch_size = 256

[train]
method = "$1"
device = "$DEVICE"
image_size = $SIDE
audio_seconds = $AUDIO_S
batch_size = $BATCH
epochs = $EPOCHS
learning_rate = 1e-4
autocast = $2
channels_last = ${CHANNELS_LAST:-true}
checkpoint_every = 1000
workers = $WORKERS
freeze_visual = false
visual_output_stride = $STRIDE
visual_weights = ""
log_every = $LOG_EVERY

[train.loss]
$budget
TOML
}

run() { # quiet unless it fails
  if ! "$@" >> "$LOG" 2>&1; then
    echo "gpu.sh: failed: $*" >&2
    tail -n 30 "$LOG" >&2
    exit 1
  fi
}

reference() { # OUTPUT [ARGS...]: bench/reference_step.py on this run's shapes (later ARGS override), its JSON line
  local output="$1"
  shift
  "$PY" "$ROOT/bench/reference_step.py" --device "$DEVICE" --batch-size "$BATCH" --image-size "$SIDE" \
    --audio-seconds "$AUDIO_S" --visual-output-stride "$STRIDE" --warmup "$WARMUP" --iterations "$ITERATIONS" \
    "$@" 2>>"$LOG" | tail -n1 > "$output"
}

config oassl false
run "$BIN" --config "$OUT/pipeline.toml" synth --layout extracted
run "$BIN" --config "$OUT/pipeline.toml" label-captions --force
run "$BIN" --config "$OUT/pipeline.toml" embed

RES="$OUT/results"
rm -rf "$RES"
mkdir -p "$RES"
for precision in $PRECISIONS; do
  autocast=false
  [ "$precision" = fp16 ] && autocast=true
  for method in lvs noprior oassl; do
    echo "gpu.sh: train $method $precision" >&2
    config "$method" "$autocast"
    run "$BIN" --config "$OUT/pipeline.toml" train --force
    cp "$OUT/data/train/steps.csv" "$RES/train_${method}_$precision.csv"
  done
  echo "gpu.sh: cost $precision" >&2
  config oassl false
  run "$BIN" --config "$OUT/pipeline.toml" cost --phases train:lvs,train:noprior,train:oassl \
    --precision "$precision" --warmup "$WARMUP" --iterations "$ITERATIONS"
  cp "$OUT/data/cost/cost.json" "$RES/cost_$precision.json"
  if [ "$precision" = fp32 ]; then
    echo "gpu.sh: cost noprior fp32, exact IOI" >&2
    config oassl false exact
    run "$BIN" --config "$OUT/pipeline.toml" cost --phases train:noprior --precision fp32 \
      --warmup "$WARMUP" --iterations "$ITERATIONS"
    cp "$OUT/data/cost/cost.json" "$RES/cost_exact_fp32.json"
  fi
  echo "gpu.sh: PyTorch reference $precision" >&2
  reference "$RES/ref_train_$precision.json" --precision "$precision" $REF_LAYOUT
  # The same layout as the CPU rows on the CPU; run there anyway so the test form covers it.
  echo "gpu.sh: lvs $precision in the default layout, oassl and PyTorch" >&2
  CHANNELS_LAST=false config oassl false
  run "$BIN" --config "$OUT/pipeline.toml" cost --phases train:lvs --precision "$precision" \
    --warmup "$WARMUP" --iterations "$ITERATIONS"
  cp "$OUT/data/cost/cost.json" "$RES/cost_nchw_$precision.json"
  reference "$RES/ref_train_nchw_$precision.json" --precision "$precision"
done
# Inference in the default configuration (the loop above left a default-layout or exact-IOI one behind).
config oassl false
for b in "$INFER_BATCH" 1; do
  echo "gpu.sh: inference batch $b" >&2
  run "$BIN" --config "$OUT/pipeline.toml" cost --phases infer --infer-batch "$b" \
    --warmup "$WARMUP" --iterations "$ITERATIONS"
  cp "$OUT/data/cost/cost.json" "$RES/cost_infer_$b.json"
  reference "$RES/ref_infer_$b.json" --phase infer --batch-size "$b" $REF_LAYOUT
done

"$PY" - "$RES" "$MODE" "$PRECISIONS" "$INFER_BATCH" "$BATCH" "$SIDE" "$AUDIO_S" "$LOG_EVERY" <<'PY' | tee "$OUT/gpu.md"
import csv, json, statistics, sys
res, mode, precisions, infer_batch, batch, side, seconds, log_every = sys.argv[1:]
log_every = int(log_every)
load = lambda name: json.load(open(f"{res}/{name}"))
gib = lambda b: "n/a" if b is None else f"{b / 2**30:.2f}"
mem = "peak GPU memory (GiB)" if mode == "cuda" else "peak memory (GiB)"
rows = []
for p in precisions.split():
    label = {"fp32": "fp32", "fp16": "fp16 autocast"}[p]
    cost = {r["phase"].split(":")[1]: r for r in load(f"cost_{p}.json")}
    ref = load(f"ref_train_{p}.json")
    for m in ["lvs", "noprior", "oassl"]:
        with open(f"{res}/train_{m}_{p}.csv") as f:
            rows_csv = list(csv.DictReader(f))
        # samples_per_s is measured per logging window (the loss terms are read every log_every steps), so
        # every row of a window repeats it: one value per window. The first window holds cuDNN's autotuning
        # and the loader's start; the median of the others.
        windows = {}
        for r in rows_csv:
            windows[(int(r["step"]) - 1) // log_every] = float(r["samples_per_s"])
        sps = [windows[k] for k in sorted(windows)]
        steady = sps[1:] if len(sps) > 1 else sps
        step = cost[m]
        r = lambda v: f"{v:.1f}" if m == "lvs" else "—"
        rows.append((f"train {m} {label}: samples/s, `oassl train` (loader included)",
                     f"{statistics.median(steady):.1f}", "—"))
        # Where the training thread spends a step (host clock: a phase that waits for the device shows it).
        later = [r for r in rows_csv if (int(r["step"]) - 1) // log_every > 0] or rows_csv
        ms = lambda col: statistics.median(float(r[col]) for r in later) * 1e3
        rows.append((f"train {m} {label}: ms per step, `oassl train`: loader wait / upload+forward / backward / optimizer",
                     " / ".join(f"{ms(c):.1f}" for c in ["loader_s", "forward_s", "backward_s", "optimizer_s"]),
                     "—"))
        rows.append((f"train {m} {label}: samples/s, step only (`oassl cost`)",
                     f"{step['batch_size'] / step['seconds_per_iter']:.1f}",
                     r(ref["samples_per_s"])))
        rows.append((f"train {m} {label}: {mem}", gib(step["peak_memory_bytes"]),
                     gib(ref["peak_memory_bytes"]) if m == "lvs" else "—"))
        if m != "lvs":
            cut = sum(int(r["ioi_cut_short"]) for r in rows_csv) / (len(rows_csv) * int(batch))
            rows.append((f"train {m} {label}: samples whose IOI the budget cut short (%)", f"{100 * cut:.1f}", "—"))
        if m == "lvs":
            nchw, ref_nchw = load(f"cost_nchw_{p}.json")[0], load(f"ref_train_nchw_{p}.json")
            rows.append((f"train lvs {label}: samples/s, step only, default layout (`channels_last = false`)",
                         f"{nchw['batch_size'] / nchw['seconds_per_iter']:.1f}", f"{ref_nchw['samples_per_s']:.1f}"))
        if m == "noprior" and p == "fp32":
            exact = load("cost_exact_fp32.json")[0]
            rows.append(("train noprior fp32: samples/s, step only, exact IOI (no iteration budget)",
                         f"{exact['batch_size'] / exact['seconds_per_iter']:.1f}", "—"))
for b in [int(infer_batch), 1]:
    ours, ref = load(f"cost_infer_{b}.json")[0], load(f"ref_infer_{b}.json")
    if b == 1:
        rows.append(("inference batch 1: latency (ms)", f"{ours['seconds_per_iter'] * 1e3:.1f}",
                     f"{ref['seconds_per_iter'] * 1e3:.1f}"))
    else:
        rows.append((f"inference batch {b}: samples/s", f"{b / ours['seconds_per_iter']:.1f}",
                     f"{ref['samples_per_s']:.1f}"))
print(f"| measurement ({mode}, batch {batch}, {side} px, {seconds} s audio) | oassl | PyTorch reference |")
print("| --- | ---: | ---: |")
for name, ours, ref in rows:
    print(f"| {name} | {ours} | {ref} |")
PY
echo
echo "IOI (noprior, and oassl with OSC) trains with ioi_iteration_budget = 16: no host read inside the step;"
echo "the exact-IOI row reads IOI's stop flag every 4 iterations. Loader-included samples/s: median over logging"
echo "windows after the first (cuDNN autotuning); ms per step: medians over the same steps, on the host's clock."
echo "PyTorch reference: bench/reference_step.py, the lvs objective only; its inference is the two encoders and"
echo "the sound map (oassl's also runs IOI); its peak GPU memory is torch's reserved peak (oassl's: nvidia-smi,"
echo "CUDA context included). On CUDA both run channels-last (oassl: [train] channels_last, its default there;"
echo "the reference: --channels-last) except in the default-layout rows. Log: $LOG"
