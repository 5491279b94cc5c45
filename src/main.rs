//! `oassl`: the command-line front of the OA-SSL pipeline.
//!
//! A thin dispatcher: each subcommand loads `pipeline.toml` (or `--config`), resolves the data layout and calls
//! the library crate of its stage. Errors print as one chain; the exit code is 0 when done, 1 when some items
//! failed, 2 on a fatal error.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
