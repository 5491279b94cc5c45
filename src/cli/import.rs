//! `oassl import`: a manifest from a local VGGSound or MUSIC video folder and a benchmark list file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;

use oassl_captions::dataset_import::{import, ImportRequest, ListFormat};
use oassl_pipeline::manifest::Manifest;

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// List conventions: vggsound (`id` or `id,label`) or music (`id,label[,label...]`).
    #[arg(long)]
    pub format: ListFormat,
    /// The list file (e.g. ../shared/datasets/music/train_lists/music_duet_train.txt).
    #[arg(long)]
    pub list: PathBuf,
    /// Folder searched recursively for `<id>.<mp4|mkv|webm|avi|mov|flv>`.
    #[arg(long)]
    pub videos: PathBuf,
    /// Split written into every row.
    #[arg(long)]
    pub split: String,
    /// VGGSound's vggsound.csv (`ytid,start,label,split`), for lists of bare ids.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// VGG-SS vggss.json, for lists of bare ids.
    #[arg(long)]
    pub annotations: Option<PathBuf>,
    /// Leave out clips whose video is missing (counted) instead of stopping.
    #[arg(long)]
    pub skip_missing: bool,
    /// Add the rows to the existing manifest (ids must stay unique).
    #[arg(long, conflicts_with = "force")]
    pub append: bool,
    /// Replace an existing manifest.
    #[arg(long)]
    pub force: bool,
}

pub fn run(config: &Path, args: ImportArgs) -> Result<ExitCode> {
    let (_, layout) = super::load(config)?;
    let path = layout.manifest();
    let outcome = import(&ImportRequest {
        format: args.format,
        list: args.list.clone(),
        videos: args.videos.clone(),
        split: args.split.clone(),
        labels_csv: args.labels.clone(),
        annotations: args.annotations.clone(),
        skip_missing: args.skip_missing,
    })?;
    if outcome.rows.is_empty() {
        bail!(
            "{}: no clip of the list has a video under {} ({} missing)",
            args.list.display(),
            args.videos.display(),
            outcome.missing_videos.len()
        );
    }
    let mut rows = Vec::new();
    if path.exists() {
        if args.append {
            rows = Manifest::read(&path)?.rows;
            let existing: std::collections::HashSet<_> =
                rows.iter().map(|r| r.id.clone()).collect();
            if let Some(dup) = outcome.rows.iter().find(|r| existing.contains(&r.id)) {
                bail!(
                    "{}: sample {} is already in {}",
                    args.list.display(),
                    dup.id,
                    path.display()
                );
            }
        } else if !args.force {
            bail!(
                "{} exists: --append adds the rows to it, --force replaces it",
                path.display()
            );
        }
    }
    let added = outcome.rows.len();
    rows.extend(outcome.rows);
    let base = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Manifest { base, rows }.write(&path)?;
    println!(
        "import: {added} clips ({} split) from {} -> {}; {} without a video left out",
        args.split,
        args.list.display(),
        path.display(),
        outcome.missing_videos.len()
    );
    Ok(ExitCode::SUCCESS)
}
