#!/usr/bin/env bash
# Stage three: seconds per training step of `oassl cost` against the eager PyTorch reference
# (bench/reference_step.py), same shapes, threads and machine, in alternating pairs for lvs; noprior and oassl
# (ours only) beside them. Shapes come from [train] of the config (pipeline.toml: the CPU profile).
#
# Usage: bench/parts/step_vs_pytorch.sh [OUT]   (OUT defaults to bench/out)
# Environment: OASSL_BIN (default target/release/oassl), CONFIG (default pipeline.toml), PYTHON (default
# python), STEP_PAIRS (2), STEP_ITERATIONS (5), STEP_WARMUP (2), STEP_PRECISION (fp32), STEP_CHANNELS_LAST (0).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(mkdir -p "${1:-bench/out}" && cd "${1:-bench/out}" && pwd)
bin=${OASSL_BIN:-target/release/oassl}
config=${CONFIG:-pipeline.toml}
python=${PYTHON:-python}
pairs=${STEP_PAIRS:-2}
iterations=${STEP_ITERATIONS:-5}
warmup=${STEP_WARMUP:-2}
precision=${STEP_PRECISION:-fp32}
channels_last=${STEP_CHANNELS_LAST:-0}

# The config with its data root under OUT, so the cost files of this run do not replace data/cost.
work="$out/step"
mkdir -p "$work"
sed -e "s|^root = .*|root = \"$work/data\"|" "$config" > "$work/pipeline.toml"

# [train] shapes and the thread count both sides use (0 in the config: libtorch's default, the same library).
read -r batch side seconds stride threads < <("$python" - "$config" <<'PY'
import sys, tomllib
t = tomllib.load(open(sys.argv[1], "rb")).get("train", {})
print(t.get("batch_size", 32), t.get("image_size", 224), t.get("audio_seconds", 3.0),
      t.get("visual_output_stride", 32), t.get("torch_threads", 0))
PY
)
if [ "$threads" = 0 ]; then
  threads=$("$python" -c 'import torch; print(torch.get_num_threads())' 2>/dev/null)
fi
cl_flag=()
[ "$channels_last" = 1 ] && cl_flag=(--channels-last)

ours() { # PHASES LABEL
  "$bin" --config "$work/pipeline.toml" cost --phases "$1" --iterations "$iterations" --warmup "$warmup" \
    --precision "$precision" "${cl_flag[@]}" > "$work/$2.log"
  cp "$work/data/cost/cost.json" "$work/$2.json"
}
reference() { # LABEL
  "$python" bench/reference_step.py --batch-size "$batch" --image-size "$side" --audio-seconds "$seconds" \
    --visual-output-stride "$stride" --threads "$threads" --iterations "$iterations" --warmup "$warmup" \
    --precision "$precision" "${cl_flag[@]}" 2>/dev/null | tail -n1 > "$work/$1.json"
}

for i in $(seq 1 "$pairs"); do
  echo "step: pair $i: oassl train:lvs" >&2
  ours train:lvs "ours_lvs_$i"
  echo "step: pair $i: PyTorch train:lvs" >&2
  reference "ref_lvs_$i"
done
echo "step: oassl train:noprior,train:oassl" >&2
ours train:noprior,train:oassl ours_others

"$python" - "$work" "$pairs" <<'PY' | tee "$out/step.txt"
import json, sys
work, pairs = sys.argv[1], int(sys.argv[2])
load = lambda name: json.load(open(f"{work}/{name}.json"))
print("| objective | pair | oassl s/iter | PyTorch s/iter | ratio (PyTorch ÷ oassl) |")
print("| --- | ---: | ---: | ---: | ---: |")
ratios = []
for i in range(1, pairs + 1):
    ours = load(f"ours_lvs_{i}")[0]["seconds_per_iter"]
    ref = load(f"ref_lvs_{i}")["seconds_per_iter"]
    ratios.append(ref / ours)
    print(f"| lvs | {i} | {ours:.3f} | {ref:.3f} | {ref / ours:.2f}x |")
for row in load("ours_others"):
    print(f"| {row['phase'].split(':')[1]} | 1 | {row['seconds_per_iter']:.3f} | — | — |")
print(f"\nlvs ratio over {pairs} pairs: {min(ratios):.2f}x to {max(ratios):.2f}x")
PY
echo "step (lvs, $(sed -n 's/^Inputs: //p' "$work/ours_lvs_1.log" | head -n1)): $(tail -n1 "$out/step.txt")" \
  | sed "s/\.)/)/" | tee "$out/step.summary"
