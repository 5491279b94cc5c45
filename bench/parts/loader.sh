#!/usr/bin/env bash
# Stage three's loader alone: samples/s from the decoded-data cache against the decode path (JPEG + resize + WAV +
# spectrogram per sample), same clips, plan, batch 32, 128 px crops, 1 s of audio and worker threads.
# Reads the extracted clips of LOADER_DATA (default data/); where it has none (a fresh clone before
# `make captions`), AVS-Synth is generated in the extracted layout under OUT/loader first.
set -euo pipefail
out=$1
data=${LOADER_DATA:-data}
workers=${LOADER_WORKERS:-2}
target="${CARGO_TARGET_DIR:-target}"
# Built with the whole workspace so feature unification matches `make build` (no second polars build).
cargo build --quiet --release --workspace --bins --examples
if [ ! -f "$data/dataset/manifest.csv" ] || [ ! -d "$data/extract/frames" ]; then
  own="$(cd "$out" && pwd)/loader" # absolute: a config's root is read relative to the config file
  echo "loader: no extracted clips under $data; generating AVS-Synth (extracted layout) under $own/data"
  mkdir -p "$own"
  sed -e "s|^root = .*|root = \"$own/data\"|" "${CONFIG:-pipeline.toml}" > "$own/pipeline.toml"
  "$target/release/oassl" --config "$own/pipeline.toml" synth --layout extracted
  data="$own/data"
fi
"$target/release/examples/loader_throughput" "$data" 128 400 "$workers" | tee "$out/loader.txt"
last=$(grep '^round' "$out/loader.txt" | tail -1)
echo "loader (128 px, batch 32, $workers workers): ${last#*workers: }" | tee "$out/loader.summary"
