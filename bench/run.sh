#!/usr/bin/env bash
# `make bench`: every benchmark with its baseline measured in the same run.
# Writes bench/out/<name>.txt and prints a summary; copy the table into BENCHMARKS.md with the commit it ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
mkdir -p "$out"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m)" | tee "$out/machine.txt"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" | tee -a "$out/machine.txt"

for part in bench/parts/*.sh; do
  echo "== $(basename "$part" .sh)"
  bash "$part" "$out"
done
echo "== summary"
cat "$out"/*.summary
