//! The last phase: one table row per selected sample, in manifest order, the table written, and for a whole
//! run the stage lock that lets the next run skip.

use std::collections::HashMap;

use anyhow::Result;

use oassl_pipeline::manifest::ManifestRow;
use oassl_pipeline::stage_lock::{self, StageLock};
use oassl_pipeline::Layout;

use super::plan::Plan;
use super::requests::SampleRequest;
use super::{RunOptions, Summary};
use crate::journal::{CaptionStatus, JournalEntry};
use crate::prompt::PromptTemplate;
use crate::table::{write_table, CaptionRecord};

/// The table rows: each sample's journal answer, or why it has none; the statuses are counted in `summary`.
pub(super) fn records(
    rows: &[&ManifestRow],
    samples: &[SampleRequest],
    index: &HashMap<String, JournalEntry>,
    model: &str,
    prompt: &PromptTemplate,
    summary: &mut Summary,
) -> Vec<CaptionRecord> {
    let records: Vec<CaptionRecord> = rows
        .iter()
        .zip(samples)
        .map(|(row, sample)| record(row, sample, index, model, prompt))
        .collect();
    for record in &records {
        match record.status.as_str() {
            "ok" => summary.ok += 1,
            "invalid" => summary.invalid += 1,
            _ => summary.failed += 1,
        }
    }
    records
}

fn record(
    row: &ManifestRow,
    sample: &SampleRequest,
    index: &HashMap<String, JournalEntry>,
    model: &str,
    prompt: &PromptTemplate,
) -> CaptionRecord {
    let mut record = CaptionRecord {
        sample_id: row.id.to_string(),
        labels: row.labels.clone(),
        foreground: Vec::new(),
        background: String::new(),
        status: CaptionStatus::Failed.as_str().to_string(),
        error: String::new(),
        attempts: 0,
        latency_ms: 0,
        model: model.to_string(),
        prompt_hash: prompt.hash().to_string(),
        image_hash: String::new(),
        request_key: String::new(),
        raw_response: String::new(),
    };
    let (key, image_hash) = match sample {
        SampleRequest::Unavailable(reason) => {
            record.error = reason.clone();
            return record;
        }
        SampleRequest::Ready {
            key, image_hash, ..
        } => (key, image_hash),
    };
    record.image_hash = image_hash.clone();
    record.request_key = key.clone();
    match index.get(key) {
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
    record
}

/// Writes the table (a shard's own under `--shard`) and, for a whole run, the stage lock.
pub(super) fn write(
    plan: &Plan,
    records: &[CaptionRecord],
    layout: &Layout,
    opts: &RunOptions,
    summary: &mut Summary,
) -> Result<()> {
    let table = match opts.shard.suffix() {
        Some(s) => layout
            .stage_dir("captions")
            .join(format!("captions.{s}.parquet")),
        None => layout.captions(),
    };
    write_table(&table, records)?;
    summary.table = table.clone();
    if opts.shard.count > 1 {
        return Ok(());
    }
    let lock = StageLock::finished(
        "captions",
        plan.cfg_hash.clone(),
        stage_lock::digests(&plan.deps)?,
        &[&table],
        &[
            ("samples", summary.samples),
            ("ok", summary.ok),
            ("invalid", summary.invalid),
            ("failed", summary.failed),
            ("cached", summary.cached),
            ("requested", summary.requested),
        ],
    )?;
    lock.write(&layout.stage_lock("captions"))
}
