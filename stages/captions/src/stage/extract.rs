//! The extraction phase: every selected clip's frame and audio, from the cache when still valid.

use anyhow::Result;

use oassl_pipeline::config::CaptionsConfig;
use oassl_pipeline::manifest::ManifestRow;
use oassl_pipeline::progress::bar;
use oassl_pipeline::Layout;

use super::plan::Plan;
use super::{RunOptions, Summary};
use crate::extraction::{extract_all, ExtractJob, ExtractOutcome};

/// Extracts `rows` (one outcome per row, in order) and counts the outcomes in `summary`.
pub(super) fn run(
    plan: &Plan,
    rows: &[&ManifestRow],
    cfg: &CaptionsConfig,
    layout: &Layout,
    opts: &RunOptions,
    summary: &mut Summary,
) -> Result<Vec<ExtractOutcome>> {
    let jobs: Vec<ExtractJob> = rows
        .iter()
        .map(|r| ExtractJob::of_row(&plan.manifest, r))
        .collect();
    let progress = bar("extract", jobs.len());
    let outcomes = extract_all(
        &jobs,
        layout,
        &plan.params,
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
    Ok(outcomes)
}
