//! The whole of stage one: manifest -> extraction -> caption requests -> `captions/captions.parquet`.
//!
//! Every finished request is in the journal before the run goes on, and the table is rebuilt from the manifest
//! and the journals at the end, so a run killed at any moment resumes where it stopped and never writes a
//! sample twice. With `--shard I/N` a run handles its part of the manifest and writes
//! `captions.shard-I-of-N.parquet` and its own journal; a later run without `--shard` (or with `--merge`, which
//! sends no requests) finds every shard's answers and writes the one table.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use oassl_pipeline::config::CaptionsConfig;
use oassl_pipeline::fingerprint::{hash_file, hash_json, FileDigest};
use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::stage_lock::{self, StageLock, Staleness, LOCK_SCHEMA};
use oassl_pipeline::Layout;

use crate::caption_request::{request_key, GenerationParams};
use crate::client::{caption_all, http_client, CaptionClient, CaptionJob, ClientSettings};
use crate::extraction::{extract_all, first_stale, ExtractJob, ExtractOutcome, ExtractParams};
use crate::journal::{load_index, CaptionStatus, Journal, JournalEntry};
use crate::prompt::PromptTemplate;
use crate::shard::Shard;
use crate::table::{write_table, CaptionRecord};
use oassl_pipeline::progress::bar;

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

/// Input files of the stage, for its lock.
fn lock_deps(layout: &Layout, prompt_path: &Path) -> Vec<PathBuf> {
    vec![layout.manifest(), prompt_path.to_path_buf()]
}

/// The stage's config fingerprint: the section, the prompt and the model the stand-in would give.
fn config_hash(
    cfg: &CaptionsConfig,
    prompt: &PromptTemplate,
    endpoints: &Endpoints,
) -> Result<String> {
    hash_json(&(cfg, prompt.hash(), &endpoints.default_model))
}

/// Runs stage one.
pub fn run(
    cfg: &CaptionsConfig,
    prompt_path: &Path,
    layout: &Layout,
    endpoints: &Endpoints,
    opts: &RunOptions,
) -> Result<Summary> {
    let manifest_path = layout.manifest();
    if !manifest_path.exists() {
        bail!(
            "manifest {} not found: run `make data` (AVS-Synth) or import a dataset first",
            manifest_path.display()
        );
    }
    let manifest = Manifest::read(&manifest_path)?;
    let prompt = PromptTemplate::load(prompt_path)?;
    let captions_dir = layout.stage_dir("captions");
    let lock_path = layout.stage_lock("captions");
    let deps = lock_deps(layout, prompt_path);
    let cfg_hash = config_hash(cfg, &prompt, endpoints)?;
    let whole = opts.shard.count <= 1;
    let params = ExtractParams::from_config(cfg);
    let mut reason = "forced".to_string();
    if whole && !opts.force {
        let staleness = stage_lock::check(&lock_path, &cfg_hash, &deps)?;
        let clean = StageLock::read(&lock_path)?.is_some_and(|l| {
            l.counts.get("failed").copied().unwrap_or(0) == 0
                && l.counts.get("invalid").copied().unwrap_or(0) == 0
        });
        let batch = opts.export_batch.is_some() || opts.import_batch.is_some();
        let mut stale_clip = None;
        if staleness == Staleness::UpToDate && clean && !opts.retry_failed && !opts.merge && !batch
        {
            // The lock covers the manifest, the prompt and the table, not the extracted files nor the videos
            // they came from: those are checked per clip.
            let jobs: Vec<ExtractJob> = manifest
                .rows
                .iter()
                .map(|r| ExtractJob::of_row(&manifest, r))
                .collect();
            stale_clip = first_stale(&jobs, layout, &params, cfg.extract_threads)?;
            if stale_clip.is_none() {
                return Ok(Summary {
                    up_to_date: true,
                    reason: staleness.to_string(),
                    table: layout.captions(),
                    ..Summary::default()
                });
            }
        }
        reason = match (stale_clip, &staleness) {
            (Some(clip), _) => format!("extraction stale: {clip}"),
            (None, Staleness::UpToDate) => "rows to retry".to_string(),
            (None, other) => other.to_string(),
        };
    }
    tracing::info!("captions: running ({reason})");

    let rows: Vec<_> = manifest
        .rows
        .iter()
        .filter(|r| opts.shard.contains(r.id.as_str()))
        .collect();
    let mut summary = Summary {
        reason,
        samples: rows.len(),
        ..Summary::default()
    };

    // Extraction.
    let jobs: Vec<ExtractJob> = rows
        .iter()
        .map(|r| ExtractJob::of_row(&manifest, r))
        .collect();
    let progress = bar("extract", jobs.len());
    let outcomes = extract_all(
        &jobs,
        layout,
        &params,
        cfg.extract_threads,
        opts.force,
        &progress,
    )?;
    progress.finish_and_clear();
    for o in &outcomes {
        match o {
            ExtractOutcome::Ready { cached: true } => summary.extract_cached += 1,
            ExtractOutcome::Ready { cached: false } => summary.extracted += 1,
            ExtractOutcome::Failed(_) => summary.extract_failed += 1,
        }
    }

    // The model decides the request keys: configured, the stand-in's, or asked of the endpoints.
    let settings = ClientSettings {
        max_in_flight: cfg.max_in_flight,
        max_attempts: cfg.max_attempts,
        max_reasks: cfg.max_reasks,
        // Validated at config load; checked again so a config built in code cannot panic here.
        timeout: Duration::try_from_secs_f64(cfg.timeout_s)
            .ok()
            .filter(|d| !d.is_zero())
            .with_context(|| {
                format!(
                    "[captions] timeout_s: {} is not a usable timeout",
                    cfg.timeout_s
                )
            })?,
        backoff: Duration::from_millis(cfg.backoff_ms),
        backoff_max: Duration::from_millis(cfg.backoff_max_ms),
        api_key: api_key(cfg)?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut selected: Option<Vec<String>> = None;
    let select = |model: Option<&str>| -> Result<(Vec<String>, String)> {
        if !endpoints.check {
            let model = model
                .map(str::to_string)
                .or_else(|| endpoints.default_model.clone())
                .context("no model configured ([captions] model or preset)")?;
            return Ok((endpoints.urls.clone(), model));
        }
        let http = http_client(&settings)?;
        runtime.block_on(crate::endpoint::select(
            &http,
            &endpoints.urls,
            model,
            settings.api_key.as_deref(),
        ))
    };
    let model = match cfg
        .configured_model()
        .or_else(|| endpoints.default_model.clone())
    {
        Some(m) => m,
        None if opts.merge => bail!("--merge needs the model: set [captions] model or preset"),
        None => {
            let (urls, model) = select(None)?;
            selected = Some(urls);
            model
        }
    };
    let gen = GenerationParams::from_config(cfg, &model);

    // Request keys per sample.
    struct Ready {
        key: String,
        image_hash: String,
        frame: PathBuf,
    }
    let mut ready: Vec<Option<Ready>> = Vec::with_capacity(rows.len());
    let mut errors: Vec<String> = vec![String::new(); rows.len()];
    for (i, (row, outcome)) in rows.iter().zip(&outcomes).enumerate() {
        if let ExtractOutcome::Failed(e) = outcome {
            errors[i] = format!("extraction: {e}");
            ready.push(None);
            continue;
        }
        let frame = layout.frame(&row.id);
        match hash_file(&frame) {
            Ok(image_hash) => {
                let key = request_key(prompt.hash(), &image_hash, &row.labels, &gen)?;
                ready.push(Some(Ready {
                    key,
                    image_hash,
                    frame,
                }));
            }
            Err(e) => {
                errors[i] = format!("extraction: unreadable frame: {e:#}");
                ready.push(None);
            }
        }
    }

    let mut index: HashMap<String, JournalEntry> = if opts.force {
        HashMap::new()
    } else {
        load_index(&captions_dir)?
    };
    let wanted = |entry: Option<&JournalEntry>| match entry {
        None => true,
        Some(e) => opts.retry_failed && e.status != CaptionStatus::Ok,
    };
    let mut seen = HashSet::new();
    let mut pending = Vec::new();
    for (row, r) in rows.iter().zip(&ready) {
        let Some(r) = r else { continue };
        if wanted(index.get(&r.key)) {
            if seen.insert(r.key.clone()) {
                pending.push(CaptionJob {
                    request_key: r.key.clone(),
                    sample_id: row.id.to_string(),
                    labels: row.labels.clone(),
                    frame: r.frame.clone(),
                    image_hash: r.image_hash.clone(),
                    prompt: prompt.render(&row.labels),
                    prompt_hash: prompt.hash().to_string(),
                });
            }
        } else {
            summary.cached += 1;
        }
    }

    let journal_name = match opts.shard.suffix() {
        Some(s) => format!("journal.{s}.jsonl"),
        None => "journal.jsonl".to_string(),
    };
    if let Some(path) = &opts.export_batch {
        crate::batch::export(path, &pending, &gen)?;
        summary.exported = pending.len();
        summary.reason = format!("exported {} requests to {}", pending.len(), path.display());
        return Ok(summary);
    }
    if let Some(path) = &opts.import_batch {
        let by_key: HashMap<String, CaptionJob> = pending
            .drain(..)
            .map(|j| (j.request_key.clone(), j))
            .collect();
        let entries = crate::batch::import(path, &by_key, &model)?;
        Journal::open(&captions_dir.join(&journal_name))?.append(&entries)?;
        summary.imported = entries.len();
        for entry in entries {
            index.insert(entry.request_key.clone(), entry);
        }
    }
    if !pending.is_empty() && !opts.merge {
        let urls = match selected.take() {
            Some(u) => u,
            None => select(Some(&model))?.0,
        };
        let mut journal = Journal::open(&captions_dir.join(&journal_name))?;
        let client = Arc::new(CaptionClient::new(urls, settings.clone(), gen.clone())?);
        summary.requested = pending.len();
        let progress = bar("captions", pending.len());
        let started = Instant::now();
        let finished = runtime.block_on(caption_all(client, pending, &mut journal, |_| {
            progress.inc(1)
        }))?;
        progress.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        summary.requests_per_second = finished.len() as f64 / seconds;
        for entry in finished {
            summary.http_requests += u64::from(entry.attempts);
            index.insert(entry.request_key.clone(), entry);
        }
    }

    // The table: one row per selected manifest sample, in manifest order.
    let mut records = Vec::with_capacity(rows.len());
    for (i, (row, r)) in rows.iter().zip(&ready).enumerate() {
        let mut record = CaptionRecord {
            sample_id: row.id.to_string(),
            labels: row.labels.clone(),
            foreground: Vec::new(),
            background: String::new(),
            status: CaptionStatus::Failed.as_str().to_string(),
            error: errors[i].clone(),
            attempts: 0,
            latency_ms: 0,
            model: model.clone(),
            prompt_hash: prompt.hash().to_string(),
            image_hash: String::new(),
            request_key: String::new(),
            raw_response: String::new(),
        };
        if let Some(r) = r {
            record.image_hash = r.image_hash.clone();
            record.request_key = r.key.clone();
            match index.get(&r.key) {
                Some(e) => {
                    record.status = e.status.as_str().to_string();
                    record.foreground = e.foreground.clone();
                    record.background = e.background.clone();
                    record.error = e.error.clone();
                    record.attempts = e.attempts;
                    record.latency_ms = e.latency_ms;
                    record.raw_response = e.raw_response.clone();
                }
                None => record.error = "not captioned (no request was sent for it)".into(),
            }
        }
        match record.status.as_str() {
            "ok" => summary.ok += 1,
            "invalid" => summary.invalid += 1,
            _ => summary.failed += 1,
        }
        records.push(record);
    }
    let table = match opts.shard.suffix() {
        Some(s) => captions_dir.join(format!("captions.{s}.parquet")),
        None => layout.captions(),
    };
    write_table(&table, &records)?;
    summary.table = table.clone();

    if whole {
        let counts: BTreeMap<String, u64> = [
            ("samples", summary.samples),
            ("ok", summary.ok),
            ("invalid", summary.invalid),
            ("failed", summary.failed),
            ("cached", summary.cached),
            ("requested", summary.requested),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v as u64))
        .collect();
        let lock = StageLock {
            schema: LOCK_SCHEMA,
            stage: "captions".into(),
            oassl_version: env!("CARGO_PKG_VERSION").into(),
            config_hash: cfg_hash,
            deps: deps
                .iter()
                .map(|d| FileDigest::of(d))
                .collect::<Result<_>>()?,
            outs: vec![FileDigest::of(&table)?],
            counts,
            finished_at: stage_lock::now_stamp(),
        };
        lock.write(&lock_path)?;
    }
    Ok(summary)
}

/// The API key from the environment variable the config names (never logged).
fn api_key(cfg: &CaptionsConfig) -> Result<Option<String>> {
    if cfg.api_key_env.is_empty() {
        return Ok(None);
    }
    match std::env::var(&cfg.api_key_env) {
        Ok(k) if !k.is_empty() => Ok(Some(k)),
        _ => bail!(
            "[captions] api_key_env: environment variable {} is not set",
            cfg.api_key_env
        ),
    }
}
