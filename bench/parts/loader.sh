#!/usr/bin/env bash
# Stage three's loader alone: samples/s from the decoded-data cache against the decode path (JPEG + resize + WAV +
# spectrogram per sample), same clips, plan, batch 32, 128 px crops, 1 s of audio and worker threads.
set -euo pipefail
out=$1
data=${LOADER_DATA:-data}
workers=${LOADER_WORKERS:-2}
if [ ! -f "$data/dataset/manifest.csv" ] || [ ! -d "$data/extract/frames" ]; then
  echo "loader: no extracted clips under $data (run make data && make captions first)" >&2
  exit 1
fi
# Built with the whole workspace so feature unification matches `make build` (no second polars build).
cargo build --quiet --release --workspace --examples
target="${CARGO_TARGET_DIR:-target}"
"$target/release/examples/loader_throughput" "$data" 128 400 "$workers" | tee "$out/loader.txt"
last=$(grep '^round' "$out/loader.txt" | tail -1)
echo "loader (128 px, batch 32, $workers workers): ${last#*workers: }" | tee "$out/loader.summary"
