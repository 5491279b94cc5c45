//! `oassl label-captions`: captions made from the manifest labels alone (no MLLM), for hosts without one:
//! foreground `an image of a <label> making a sound`, background `an image of the background behind the
//! <labels>`. Stage two embeds them like stage one's captions.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::tables::captions::{write_captions_minimal, CaptionRow};

#[derive(Debug, Args)]
pub struct LabelCaptionsArgs {
    /// Replace an existing captions table.
    #[arg(long)]
    pub force: bool,
}

pub fn run(config: &Path, args: LabelCaptionsArgs) -> Result<ExitCode> {
    let (_, layout) = super::load(config)?;
    let out = layout.captions();
    if out.exists() && !args.force {
        bail!(
            "captions table {} exists; use --force to replace it with label captions",
            out.display()
        );
    }
    let manifest = Manifest::read(&layout.manifest())?;
    let rows: Vec<CaptionRow> = manifest
        .rows
        .iter()
        .map(|r| CaptionRow {
            sample_id: r.id.clone(),
            labels: r.labels.clone(),
            foreground: r
                .labels
                .iter()
                .map(|l| format!("an image of a {l} making a sound"))
                .collect(),
            background: format!(
                "an image of the background behind the {}",
                r.labels.join(" and the ")
            ),
            status: "ok".into(),
        })
        .collect();
    write_captions_minimal(&out, &rows)?;
    println!(
        "label captions: {} samples -> {}",
        rows.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
