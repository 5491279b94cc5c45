//! `oassl`: the command-line front of the OA-SSL pipeline.
//!
//! A thin dispatcher: each subcommand loads `pipeline.toml` (or `--config`), resolves the data layout and calls
//! the library crate of its stage. Errors print as one chain; the exit code is 0 when done, 1 when some items
//! failed, 2 on a fatal error.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    cap_onednn_isa();
    let args = cli::Cli::parse();
    init_tracing(args.verbose);
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("oassl: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Variable oneDNN reads once, at its first kernel, to cap the instruction sets it dispatches to.
const ONEDNN_MAX_CPU_ISA: &str = "ONEDNN_MAX_CPU_ISA";

/// Keeps oneDNN off AMX unless the user chose otherwise. The AMX bf16 convolutions of the bundled libtorch
/// (oneDNN 3.10) return non-finite values for some shapes, in a few runs out of ten with identical inputs and
/// weights (an audio trunk's `layer4.0.conv1` on a 17×2 map, for one). AVX-512 BF16 kernels compute the same
/// bf16 arithmetic without that fault; f32 never uses AMX and CUDA never uses oneDNN, so only bf16 on an AMX
/// CPU is slower. Set before any thread exists, so nothing reads the environment concurrently.
fn cap_onednn_isa() {
    if std::env::var_os(ONEDNN_MAX_CPU_ISA).is_none() {
        std::env::set_var(ONEDNN_MAX_CPU_ISA, "AVX512_CORE_BF16");
    }
}

fn init_tracing(verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
