#!/usr/bin/env bash
# Stage one: extraction clips/s against the `ffmpeg` CLI once per clip, and client captions/s against an instant
# stand-in at 64 in flight. The example rewrites its own section of BENCHMARKS.md.
set -euo pipefail
out=$1
cargo build --quiet --release --workspace --examples
target/release/examples/captions_bench --out BENCHMARKS.md | tee "$out/captions.txt"
grep -E 'ratio|captions/s' "$out/captions.txt" | sed 's/^/captions: /' > "$out/captions.summary"
