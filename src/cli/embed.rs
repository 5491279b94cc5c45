//! `oassl embed`: stage two.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use oassl_embed::stage::{run as run_stage, RunOptions};

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Run even if nothing changed since the last run.
    #[arg(long)]
    pub force: bool,
}

pub fn run(config: &Path, args: EmbedArgs) -> Result<ExitCode> {
    let (loaded, layout) = super::load(config)?;
    let cfg = &loaded.config.embed;
    let model_dir = loaded.resolve(&cfg.model_dir);
    let summary = run_stage(cfg, &model_dir, &layout, &RunOptions { force: args.force })?;
    if summary.up_to_date {
        println!(
            "embed: up to date ({})",
            layout.stage_lock("embed").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "embed ({}): {} samples, {} distinct texts: {} cached, {} embedded ({:.1} sentences/s), {} truncated, {} caption rows not ok",
        summary.reason,
        summary.samples,
        summary.distinct_texts,
        summary.cached,
        summary.embedded,
        summary.sentences_per_second,
        summary.truncated,
        summary.skipped_not_ok
    );
    Ok(ExitCode::SUCCESS)
}
