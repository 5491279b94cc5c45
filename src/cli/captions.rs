//! `oassl captions`: stage one. Without `[captions] endpoints` (or `--endpoint`) it starts the local MLLM
//! stand-in (`[stub]`) on a free loopback port for the run and stops it afterwards.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use oassl_captions::shard::Shard;
use oassl_captions::stage::{run as run_stage, Endpoints, RunOptions};

#[derive(Debug, Args)]
pub struct CaptionsArgs {
    /// Extract and ask everything again (ignores the stage lock, the extraction cache and the journal).
    #[arg(long)]
    pub force: bool,
    /// Ask again for captions recorded `invalid` or `failed`.
    #[arg(long)]
    pub retry_failed: bool,
    /// Handle only shard I of N of the manifest (0-based), e.g. `--shard 0/4`.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// Send no requests: write the table from every shard's journal.
    #[arg(long)]
    pub merge: bool,
    /// Send the requests to this OpenAI-compatible base URL (`http://host:8000/v1`) instead of
    /// `[captions] endpoints`; repeat for several (e.g. the servers one job array task started for itself).
    #[arg(long = "endpoint", value_name = "URL")]
    pub endpoints: Vec<String>,
    /// Write the pending requests as OpenAI Batch API JSONL (for `vllm run-batch`) instead of sending them.
    #[arg(long, value_name = "FILE")]
    pub export_batch: Option<PathBuf>,
    /// Read `vllm run-batch` / Batch API result JSONL into the table instead of sending requests.
    #[arg(long, value_name = "FILE")]
    pub import_batch: Option<PathBuf>,
}

pub fn run(config: &Path, args: CaptionsArgs) -> Result<ExitCode> {
    let (loaded, layout) = super::load(config)?;
    let mut section = loaded.config.captions.clone();
    if !args.endpoints.is_empty() {
        if let Some(bad) = args
            .endpoints
            .iter()
            .find(|e| !(e.starts_with("http://") || e.starts_with("https://")))
        {
            bail!(
                "--endpoint {bad:?} is not an http(s) URL (for example http://127.0.0.1:8000/v1)"
            );
        }
        section.endpoints = args.endpoints.clone();
    }
    let cfg = &section;
    let prompt_path = loaded.resolve(&cfg.prompt_file);
    let mut stand_in = None;
    let endpoints = if cfg.endpoints.is_empty() {
        let stub_cfg = &loaded.config.stub;
        let handle = oassl_stub::spawn(stub_cfg, None)?;
        tracing::info!("captions: MLLM stand-in on {}", handle.base_url());
        let urls = vec![handle.base_url()];
        stand_in = Some(handle);
        Endpoints {
            urls,
            default_model: Some(stub_cfg.model.clone()),
            check: false,
        }
    } else {
        Endpoints {
            urls: cfg.endpoints.clone(),
            default_model: None,
            check: true,
        }
    };
    let opts = RunOptions {
        force: args.force,
        retry_failed: args.retry_failed,
        shard: args.shard.unwrap_or(Shard::ALL),
        merge: args.merge,
        export_batch: args.export_batch,
        import_batch: args.import_batch,
    };
    let result = run_stage(cfg, &prompt_path, &layout, &endpoints, &opts);
    if let Some(handle) = stand_in {
        handle.stop();
    }
    let summary = result?;
    if summary.up_to_date {
        println!(
            "captions: up to date ({})",
            layout.stage_lock("captions").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if summary.reason.starts_with("exported") {
        println!("captions: {}", summary.reason);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "captions ({}): {} samples; extraction {} new, {} cached, {} failed; captions {} cached, {} requested ({} HTTP requests, {:.1} captions/s); {} ok, {} invalid, {} failed -> {}",
        summary.reason,
        summary.samples,
        summary.extracted,
        summary.extract_cached,
        summary.extract_failed,
        summary.cached,
        summary.requested,
        summary.http_requests,
        summary.requests_per_second,
        summary.ok,
        summary.invalid,
        summary.failed,
        summary.table.display()
    );
    if summary.invalid + summary.failed > 0 {
        eprintln!(
            "captions: {} samples are not ok (see the `status` and `error` columns; `--retry-failed` asks again)",
            summary.invalid + summary.failed
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
