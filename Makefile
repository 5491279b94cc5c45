# oassl: every target calls the binary; stages decide themselves whether they are up to date.
# CONFIG=other.toml make <target> uses another config.

CONFIG ?= pipeline.toml
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export LIBTORCH_USE_PYTORCH := 1
# The oassl binary carries an rpath to libtorch; test binaries of the library crates do not, so point them at it.
# Evaluated when make reads this file: targets that need it after `setup` created the venv run in a sub-make.
TORCH_LIB := $(firstword $(wildcard $(VENV)/lib/python3*/site-packages/torch/lib))
export LD_LIBRARY_PATH := $(TORCH_LIB)$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
CARGO ?= cargo
OASSL := target/release/oassl
RUN := $(OASSL) --config $(CONFIG)

.PHONY: setup build build-gpu data captions embed pretrain train eval demo report cost test test-suite soak soak-run bench-run bench-gpu gpu-pack lint fmt bench clean-data

## setup: apt packages, .venv with torch 2.11.0 (libtorch), MiniLM weights (idempotent)
setup:
	@./tools/setup.sh

## build: release binary with every feature
build: setup
	$(CARGO) build --release

## build-gpu: release binary without FFmpeg, for GPU hosts that have only libtorch
build-gpu: setup
	$(CARGO) build --release --no-default-features

## data: generate AVS-Synth (videos, manifest, ground truth)
data: build
	$(RUN) synth

## captions: stage one, frames + audio + MLLM captions (starts the local stand-in unless endpoints are set)
captions: data
	$(RUN) captions

## embed: stage two, text embeddings of the captions (only new caption texts are embedded)
embed: build
	$(RUN) embed

## pretrain: the visual ResNet-18 on the AVS-Synth pretraining split (skipped when up to date)
pretrain: build
	$(RUN) pretrain

## train: stage three, the OA-SSL training run (`--resume` continues an interrupted one: make train ARGS=--resume)
train: build
	$(RUN) train $(ARGS)

## eval: the trained model on the test splits: metrics JSON, results table, gallery
eval: build
	$(RUN) eval

## report: trains and evaluates lvs / noprior / oassl and the λ sweep of [report]; tables in data/report/
report: data
	$(RUN) captions
	$(RUN) embed
	$(RUN) pretrain
	$(RUN) report

## cost: training and inference time and peak memory (the supplementary's Table 4) into data/cost/
cost: build
	$(RUN) cost

## demo: setup + data + every stage, end to end, on the default config
demo: data
	$(RUN) captions
	$(RUN) embed
	$(RUN) pretrain
	$(RUN) train
	$(RUN) eval
	@echo "demo: results in $$(dirname $(CONFIG))/data/eval"

## test: setup + the full test suite
test: setup
	@$(MAKE) --no-print-directory test-suite

# Separate so LD_LIBRARY_PATH is computed after setup has created .venv (a clean clone has none).
test-suite:
	@test -n "$(TORCH_LIB)" || { echo "test: no libtorch under $(VENV); run make setup" >&2; exit 1; }
	$(CARGO) test --workspace

## soak: kill each stage (captions, embed, train, eval) at 10 random points with SIGKILL, rerun, compare
soak: setup
	@$(MAKE) --no-print-directory soak-run

soak-run:
	$(CARGO) test --release --test tests soak::ten_kills -- --ignored --nocapture

## bench: every benchmark against its baseline, same run (see BENCHMARKS.md)
bench: build
	@$(MAKE) --no-print-directory bench-run

bench-run:
	./bench/run.sh

## bench-gpu: stage three on one GPU (train samples/s fp32/fp16, peak memory, inference) beside PyTorch; ARGS=--cpu for the small CPU form
bench-gpu:
	./bench/gpu.sh $(ARGS)

## gpu-pack: the FFmpeg-free binary and f16 MiniLM in bench/out/gpu-pack, for bench/gpu_host.sh on a GPU host
gpu-pack: setup
	./bench/gpu_pack.sh

## lint: formatting and clippy, warnings are errors
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean-data:
	rm -rf data/dataset data/extract data/captions data/embed data/pretrain data/train data/eval
