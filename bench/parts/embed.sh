#!/usr/bin/env bash
# Stage two: sentences/s of our MiniLM encoder against sentence-transformers, same texts, batch and CPU.
set -euo pipefail
out=$1
model=data/models/all-MiniLM-L6-v2
repeats=${EMBED_REPEATS:-20}
batch=${EMBED_BATCH:-32}
if ! python -c 'import sentence_transformers' 2>/dev/null; then
  echo "embed: installing sentence-transformers into .venv (baseline only)"
  pip install --quiet sentence-transformers
fi
# Built with the whole workspace so feature unification matches `make build` (no second polars build).
cargo build --quiet --release --workspace --examples
target/release/examples/throughput "$model" "$repeats" "$batch" cpu | tee "$out/embed.txt"
python stages/embed/examples/throughput_reference.py "$model" "$repeats" "$batch" | tee -a "$out/embed.txt"
ours=$(grep -v '^sentence-transformers' "$out/embed.txt" | grep -o '[0-9.]* sentences/s' | tail -1 | cut -d' ' -f1)
ref=$(grep '^sentence-transformers' "$out/embed.txt" | grep -o '[0-9.]* sentences/s' | cut -d' ' -f1)
ratio=$(python -c "print(f'{$ours/$ref:.2f}')")
echo "embed (MiniLM, CPU, batch $batch): oassl $ours sentences/s, sentence-transformers $ref sentences/s, ratio $ratio" | tee "$out/embed.summary"
