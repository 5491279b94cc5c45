#!/usr/bin/env bash
# Packs what bench/gpu.sh needs on a GPU host that has PyTorch 2.11 in python3 but no Rust and no FFmpeg: the
# FFmpeg-free release binary (stripped, gzipped) and MiniLM with f16 weights, about 60 MB in one folder. Copy the
# repository with that folder to the host and run bench/gpu_host.sh there.
#
# Usage (repository root, after `make setup`):  bench/gpu_pack.sh [DIR]   (DIR defaults to bench/out/gpu-pack)
# Note: `cargo build --release --no-default-features` replaces target/release/oassl with the FFmpeg-free build;
# the next `make build` builds the full one again.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PACK="${1:-$ROOT/bench/out/gpu-pack}"
MINILM="$ROOT/data/models/all-MiniLM-L6-v2"
PY="$ROOT/.venv/bin/python"

[ -x "$PY" ] || { echo "gpu_pack.sh: no $PY (run make setup)" >&2; exit 1; }
[ -f "$MINILM/model.safetensors" ] || { echo "gpu_pack.sh: no MiniLM at $MINILM (run make setup)" >&2; exit 1; }
cd "$ROOT"
export LIBTORCH_USE_PYTORCH=1 PATH="$ROOT/.venv/bin:$PATH"
cargo build --release --no-default-features

rm -rf "$PACK.tmp"
mkdir -p "$PACK.tmp/minilm"
strip -o "$PACK.tmp/oassl" target/release/oassl
gzip -9 "$PACK.tmp/oassl"
# The tokenizer and module folders (2_Normalize is empty and still needed) as they are, the weights in f16.
cp -R "$MINILM"/. "$PACK.tmp/minilm/"
find "$PACK.tmp/minilm" -type f \( -name '*.safetensors' -o -name '*.bin' -o -name '*.onnx' -o -name '*.h5' \
  -o -name '*.ot' \) -delete
"$PY" -W ignore::UserWarning bench/minilm_f16.py "$MINILM/model.safetensors" "$PACK.tmp/minilm/model.safetensors"
git rev-parse --short HEAD > "$PACK.tmp/commit" 2>/dev/null || echo unknown > "$PACK.tmp/commit"
rm -rf "$PACK"
mv "$PACK.tmp" "$PACK"
echo "gpu_pack.sh: $(du -sh "$PACK" | cut -f1) in $PACK (commit $(cat "$PACK/commit"))"
