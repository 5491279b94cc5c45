//! The whole of stage one: manifest -> extraction -> caption requests -> `captions/captions.parquet`.
//!
//! Every finished request is in the journal before the run goes on, and the table is rebuilt from the manifest
//! and the journals at the end, so a run killed at any moment resumes where it stopped and never writes a
//! sample twice. With `--shard I/N` a run handles its part of the manifest and writes
//! `captions.shard-I-of-N.parquet` and its own journal; a later run without `--shard` (or with `--merge`, which
//! sends no requests) finds every shard's answers and writes the one table.
//!
//! [`run`] is its phases: [`plan`] (inputs, fingerprint, whether anything is to do), [`extract`] (frames and
//! audio), [`requests`] (the model, one request key per sample, what the journals lack), sending or a Batch API
//! file, and [`finish`] (the table and the lock).

mod extract;
mod finish;
mod plan;
mod requests;

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use oassl_pipeline::config::CaptionsConfig;
use oassl_pipeline::Layout;

use crate::shard::Shard;

/// Where requests go.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Base URLs (`http://host:port/v1`).
    pub urls: Vec<String>,
    /// Model id to use when the config names none (the stand-in's); `None` asks `/v1/models`.
    pub default_model: Option<String>,
    /// Check `/health` and `/v1/models` before sending (real endpoints).
    pub check: bool,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Ignore the stage lock, the extraction cache and the journal: extract and ask everything again.
    pub force: bool,
    /// Ask again for captions recorded `invalid` or `failed`.
    pub retry_failed: bool,
    pub shard: Shard,
    /// Send no requests: build the table from the journals (shards' included); missing captions are `failed`.
    pub merge: bool,
    /// Write the pending requests as OpenAI Batch API lines to this file instead of sending them.
    pub export_batch: Option<PathBuf>,
    /// Read Batch API result lines from this file instead of sending requests.
    pub import_batch: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            force: false,
            retry_failed: false,
            shard: Shard::ALL,
            merge: false,
            export_batch: None,
            import_batch: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub up_to_date: bool,
    pub reason: String,
    pub samples: usize,
    pub extracted: usize,
    pub extract_cached: usize,
    pub extract_failed: usize,
    /// Captions found in the journal.
    pub cached: usize,
    /// Captions asked for in this run.
    pub requested: usize,
    /// HTTP requests sent (retries and re-asks included).
    pub http_requests: u64,
    pub ok: usize,
    pub invalid: usize,
    pub failed: usize,
    pub requests_per_second: f64,
    /// Requests written by `--export-batch` / results read by `--import-batch`.
    pub exported: usize,
    pub imported: usize,
    pub table: PathBuf,
}

/// Runs stage one.
pub fn run(
    cfg: &CaptionsConfig,
    prompt_path: &Path,
    layout: &Layout,
    endpoints: &Endpoints,
    opts: &RunOptions,
) -> Result<Summary> {
    let plan = plan::Plan::read(cfg, prompt_path, layout, endpoints)?;
    let reason = match plan.work_to_do(cfg, layout, opts)? {
        Some(reason) => reason,
        None => return Ok(plan.up_to_date_summary(layout)),
    };
    tracing::info!("captions: running ({reason})");
    let rows = plan.rows(opts.shard);
    let mut summary = Summary {
        reason,
        samples: rows.len(),
        ..Summary::default()
    };
    let outcomes = extract::run(&plan, &rows, cfg, layout, opts, &mut summary)?;
    let mut session = requests::Session::start(cfg, endpoints, opts)?;
    let samples = requests::sample_requests(&rows, &outcomes, layout, &plan.prompt, &session.gen)?;
    let mut index = requests::journal_index(layout, opts)?;
    let pending = requests::pending(&rows, &samples, &index, &plan.prompt, opts, &mut summary);
    if let Some(path) = &opts.export_batch {
        crate::batch::export(path, &pending, &session.gen)?;
        summary.exported = pending.len();
        summary.reason = format!("exported {} requests to {}", pending.len(), path.display());
        return Ok(summary);
    }
    let pending = session.import_batch(pending, layout, opts, &mut index, &mut summary)?;
    if !pending.is_empty() && !opts.merge {
        session.send(pending, layout, opts, &mut index, &mut summary)?;
    }
    let records = finish::records(
        &rows,
        &samples,
        &index,
        &session.model,
        &plan.prompt,
        &mut summary,
    );
    finish::write(&plan, &records, layout, opts, &mut summary)?;
    Ok(summary)
}

/// The API key from the environment variable the config names (never logged).
fn api_key(cfg: &CaptionsConfig) -> Result<Option<String>> {
    if cfg.api_key_env.is_empty() {
        return Ok(None);
    }
    match std::env::var(&cfg.api_key_env) {
        Ok(k) if !k.is_empty() => Ok(Some(k)),
        _ => anyhow::bail!(
            "[captions] api_key_env: environment variable {} is not set",
            cfg.api_key_env
        ),
    }
}
