//! Integration tests: the built `oassl` binary against real files, processes and HTTP.

mod captions_cli;
mod captions_slurm;
mod common;
mod embed_cli;
mod gpu_bench;
mod import_cli;
mod pairs_cli;
mod score_maps_cli;
mod soak;
mod stub_http;
mod synth_cli;
mod train_cli;
