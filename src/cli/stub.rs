//! `oassl mllm-stub`: the local MLLM stand-in in the foreground.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct StubArgs {
    /// Address to bind (loopback by default).
    #[arg(long)]
    pub host: Option<String>,
    /// Port (0 = any free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Delay before each answer, ms.
    #[arg(long)]
    pub latency_ms: Option<u64>,
    /// Share of requests answered 429 / 500 / 503.
    #[arg(long)]
    pub rate_429: Option<f64>,
    #[arg(long)]
    pub rate_500: Option<f64>,
    #[arg(long)]
    pub rate_503: Option<f64>,
    /// Share of connections dropped without an answer.
    #[arg(long)]
    pub drop_rate: Option<f64>,
    /// Share of truncated (invalid JSON) answers.
    #[arg(long)]
    pub malformed_rate: Option<f64>,
    /// Share of answers in a ```json fence.
    #[arg(long)]
    pub fenced_rate: Option<f64>,
    /// Share of answers with prose around the JSON.
    #[arg(long)]
    pub prose_rate: Option<f64>,
    /// Share of answers with a wrong colour word.
    #[arg(long)]
    pub caption_noise: Option<f64>,
    /// Serve canned bodies from this JSONL file, in order.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    #[arg(long)]
    pub seed: Option<u64>,
}

pub fn run(config: &Path, args: StubArgs) -> Result<ExitCode> {
    // The stand-in needs no data folder; without a config file it runs on defaults.
    let mut cfg = if config.exists() {
        super::load(config)?.0.config.stub
    } else {
        Default::default()
    };
    macro_rules! set {
        ($($f:ident),*) => { $( if let Some(v) = args.$f.clone() { cfg.$f = v; } )* };
    }
    set!(
        host,
        port,
        latency_ms,
        rate_429,
        rate_500,
        rate_503,
        drop_rate,
        malformed_rate,
        fenced_rate,
        prose_rate,
        caption_noise,
        seed
    );
    let check = oassl_pipeline::PipelineConfig {
        stub: cfg.clone(),
        ..Default::default()
    };
    check
        .validate()
        .map_err(|e| anyhow::anyhow!("command line: {e}"))?;
    oassl_stub::serve_forever(&cfg, args.replay.as_deref())?;
    Ok(ExitCode::SUCCESS)
}
