//! The request phase: the model and the endpoints, one request key per extracted sample, the requests the
//! journals do not answer yet, and sending them (or reading a Batch API result file).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use oassl_pipeline::config::CaptionsConfig;
use oassl_pipeline::fingerprint::hash_file;
use oassl_pipeline::manifest::ManifestRow;
use oassl_pipeline::progress::bar;
use oassl_pipeline::Layout;

use super::{api_key, Endpoints, RunOptions, Summary};
use crate::caption_request::{request_key, GenerationParams};
use crate::client::{caption_all, http_client, CaptionClient, CaptionJob, ClientSettings};
use crate::extraction::ExtractOutcome;
use crate::journal::{load_index, CaptionStatus, Journal, JournalEntry};
use crate::prompt::PromptTemplate;

/// A sample's request, or why it has none.
pub(super) enum SampleRequest {
    Ready {
        key: String,
        image_hash: String,
        frame: PathBuf,
    },
    /// Extraction failed or the frame cannot be read; the text lands in the row's `error`.
    Unavailable(String),
}

/// One request key per row (same order): the frame's hash, the labels, the prompt and the generation settings.
pub(super) fn sample_requests(
    rows: &[&ManifestRow],
    outcomes: &[ExtractOutcome],
    layout: &Layout,
    prompt: &PromptTemplate,
    gen: &GenerationParams,
) -> Result<Vec<SampleRequest>> {
    rows.iter()
        .zip(outcomes)
        .map(|(row, outcome)| {
            if let ExtractOutcome::Failed(e) = outcome {
                return Ok(SampleRequest::Unavailable(format!("extraction: {e}")));
            }
            let frame = layout.frame(&row.id);
            Ok(match hash_file(&frame) {
                Ok(image_hash) => SampleRequest::Ready {
                    key: request_key(prompt.hash(), &image_hash, &row.labels, gen)?,
                    image_hash,
                    frame,
                },
                Err(e) => {
                    SampleRequest::Unavailable(format!("extraction: unreadable frame: {e:#}"))
                }
            })
        })
        .collect()
}

/// Every journal's answers by request key (none under `--force`).
pub(super) fn journal_index(
    layout: &Layout,
    opts: &RunOptions,
) -> Result<HashMap<String, JournalEntry>> {
    if opts.force {
        return Ok(HashMap::new());
    }
    load_index(&layout.stage_dir("captions"))
}

/// The requests to send: samples the journals do not answer (or answered badly, with `--retry-failed`), one per
/// distinct key; answered samples are counted as cached.
pub(super) fn pending(
    rows: &[&ManifestRow],
    samples: &[SampleRequest],
    index: &HashMap<String, JournalEntry>,
    prompt: &PromptTemplate,
    opts: &RunOptions,
    summary: &mut Summary,
) -> Vec<CaptionJob> {
    let wanted = |entry: Option<&JournalEntry>| match entry {
        None => true,
        Some(e) => opts.retry_failed && e.status != CaptionStatus::Ok,
    };
    let mut seen = HashSet::new();
    let mut pending = Vec::new();
    for (row, sample) in rows.iter().zip(samples) {
        let SampleRequest::Ready {
            key,
            image_hash,
            frame,
        } = sample
        else {
            continue;
        };
        if !wanted(index.get(key)) {
            summary.cached += 1;
        } else if seen.insert(key.clone()) {
            pending.push(CaptionJob {
                request_key: key.clone(),
                sample_id: row.id.to_string(),
                labels: row.labels.clone(),
                frame: frame.clone(),
                image_hash: image_hash.clone(),
                prompt: prompt.render(&row.labels),
                prompt_hash: prompt.hash().to_string(),
            });
        }
    }
    pending
}

/// The journal this run appends to (a shard has its own).
fn journal_path(layout: &Layout, opts: &RunOptions) -> PathBuf {
    let name = match opts.shard.suffix() {
        Some(s) => format!("journal.{s}.jsonl"),
        None => "journal.jsonl".to_string(),
    };
    layout.stage_dir("captions").join(name)
}

/// The client settings of `[captions]`.
fn client_settings(cfg: &CaptionsConfig) -> Result<ClientSettings> {
    Ok(ClientSettings {
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
    })
}

/// The endpoints to use and the model they serve: checked against `/health` and `/v1/models` for real
/// endpoints, taken as configured for the stand-in. `model` is `None` only when neither the config nor the
/// endpoints name one (the session asks the endpoints then).
fn select(
    endpoints: &Endpoints,
    settings: &ClientSettings,
    runtime: &tokio::runtime::Runtime,
    model: Option<&str>,
) -> Result<(Vec<String>, String)> {
    if !endpoints.check {
        let model = model
            .map(str::to_string)
            .context("no model configured ([captions] model or preset)")?;
        return Ok((endpoints.urls.clone(), model));
    }
    let http = http_client(settings)?;
    runtime.block_on(crate::endpoint::select(
        &http,
        &endpoints.urls,
        model,
        settings.api_key.as_deref(),
    ))
}

/// The model and how to reach it.
pub(super) struct Session<'a> {
    endpoints: &'a Endpoints,
    settings: ClientSettings,
    runtime: tokio::runtime::Runtime,
    /// Endpoints already checked while asking them for the model, reused for sending.
    selected: Option<Vec<String>>,
    /// The model the requests name: configured, the stand-in's, or asked of the endpoints.
    pub model: String,
    pub gen: GenerationParams,
}

impl<'a> Session<'a> {
    /// Settles the model, which decides the request keys.
    pub fn start(
        cfg: &CaptionsConfig,
        endpoints: &'a Endpoints,
        opts: &RunOptions,
    ) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let settings = client_settings(cfg)?;
        let (selected, model) = match cfg
            .configured_model()
            .or_else(|| endpoints.default_model.clone())
        {
            Some(m) => (None, m),
            None if opts.merge => bail!("--merge needs the model: set [captions] model or preset"),
            None => {
                let (urls, model) = select(endpoints, &settings, &runtime, None)?;
                (Some(urls), model)
            }
        };
        Ok(Self {
            endpoints,
            settings,
            runtime,
            selected,
            gen: GenerationParams::from_config(cfg, &model),
            model,
        })
    }

    /// With `--import-batch`, journals the answers of a Batch API result file and leaves nothing to send;
    /// otherwise returns `pending` as it is.
    pub fn import_batch(
        &self,
        mut pending: Vec<CaptionJob>,
        layout: &Layout,
        opts: &RunOptions,
        index: &mut HashMap<String, JournalEntry>,
        summary: &mut Summary,
    ) -> Result<Vec<CaptionJob>> {
        let Some(path) = &opts.import_batch else {
            return Ok(pending);
        };
        let by_key: HashMap<String, CaptionJob> = pending
            .drain(..)
            .map(|j| (j.request_key.clone(), j))
            .collect();
        let entries = crate::batch::import(path, &by_key, &self.model)?;
        Journal::open(&journal_path(layout, opts))?.append(&entries)?;
        summary.imported = entries.len();
        for entry in entries {
            index.insert(entry.request_key.clone(), entry);
        }
        Ok(pending)
    }

    /// Sends `pending`, journaling every answer as it arrives, and adds the answers to `index`.
    pub fn send(
        &mut self,
        pending: Vec<CaptionJob>,
        layout: &Layout,
        opts: &RunOptions,
        index: &mut HashMap<String, JournalEntry>,
        summary: &mut Summary,
    ) -> Result<()> {
        let urls = match self.selected.take() {
            Some(u) => u,
            None => {
                select(
                    self.endpoints,
                    &self.settings,
                    &self.runtime,
                    Some(&self.model),
                )?
                .0
            }
        };
        let mut journal = Journal::open(&journal_path(layout, opts))?;
        let client = Arc::new(CaptionClient::new(
            urls,
            self.settings.clone(),
            self.gen.clone(),
        )?);
        summary.requested = pending.len();
        let progress = bar("captions", pending.len());
        let started = Instant::now();
        let finished = self
            .runtime
            .block_on(caption_all(client, pending, &mut journal, |_| {
                progress.inc(1)
            }))?;
        progress.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64().max(1e-9);
        summary.requests_per_second = finished.len() as f64 / seconds;
        for entry in finished {
            summary.http_requests += u64::from(entry.attempts);
            index.insert(entry.request_key.clone(), entry);
        }
        Ok(())
    }
}
