//! `oassl import`: a manifest from a local VGGSound or MUSIC video folder and a benchmark list file (VGGSound-Duet
//! pair lists included: one row of two videos per pair), or from a plain folder of videos.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;

use oassl_captions::dataset_import::pair_list::{import_pairs, PairRequest};
use oassl_captions::dataset_import::{
    import, import_folder, FolderRequest, ImportRequest, SourceFormat,
};
use oassl_pipeline::manifest::{Manifest, ManifestRow};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// vggsound (list of `id` or `id,label`), vggsound-duet (list of `file,class,mix_file,mix_class`: one pair
    /// sample per line), music (list of `id,label[,label...]`) or folder (every video under --videos, no list).
    #[arg(long)]
    pub format: SourceFormat,
    /// The list file (e.g. MUSIC's `music_duet_train.txt`); not with --format folder.
    #[arg(long)]
    pub list: Option<PathBuf>,
    /// Folder searched recursively for `<id>.<mp4|mkv|webm|avi|mov|flv>`.
    #[arg(long)]
    pub videos: PathBuf,
    /// Split written into every row.
    #[arg(long)]
    pub split: String,
    /// VGGSound's vggsound.csv (`ytid,start,label,split`), for lists of bare ids.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// VGG-SS vggss.json, for lists of bare ids; with --format vggsound-duet, both sides of every pair must have
    /// boxes in it.
    #[arg(long)]
    pub annotations: Option<PathBuf>,
    /// With --format folder: `id,label[,label...]` lines (id = the video's file stem); without it a video's label
    /// is its parent folder's name.
    #[arg(long, value_name = "FILE")]
    pub labels_csv: Option<PathBuf>,
    /// Leave out clips whose video is missing (with --format folder: videos the labels CSV does not list),
    /// counted, instead of stopping.
    #[arg(long)]
    pub skip_missing: bool,
    /// Add the rows to the existing manifest (ids must stay unique).
    #[arg(long, conflicts_with = "force")]
    pub append: bool,
    /// Replace an existing manifest.
    #[arg(long)]
    pub force: bool,
}

/// The imported rows, where they came from (for messages) and what was left out.
struct Imported {
    rows: Vec<ManifestRow>,
    source: String,
    left_out: String,
}

impl Imported {
    /// The rows of a list, refused when none has its video(s); `what` = (what no row had, what was left out).
    fn from_list(
        rows: Vec<ManifestRow>,
        missing: usize,
        list: &std::path::Path,
        args: &ImportArgs,
        (none_had, left_out): (&str, &str),
    ) -> Result<Self> {
        if rows.is_empty() {
            bail!(
                "{}: no {none_had} under {} ({missing} missing)",
                list.display(),
                args.videos.display()
            );
        }
        Ok(Self {
            rows,
            source: list.display().to_string(),
            left_out: format!("{missing} {left_out} left out"),
        })
    }
}

fn from_list(
    args: &ImportArgs,
    format: oassl_captions::dataset_import::ListFormat,
) -> Result<Imported> {
    if args.labels_csv.is_some() {
        bail!("--labels-csv is for --format folder; a list of bare VGGSound ids takes --labels vggsound.csv");
    }
    let list = args
        .list
        .clone()
        .context("--format vggsound and --format music need --list FILE")?;
    let outcome = import(&ImportRequest {
        format,
        list: list.clone(),
        videos: args.videos.clone(),
        split: args.split.clone(),
        labels_csv: args.labels.clone(),
        annotations: args.annotations.clone(),
        skip_missing: args.skip_missing,
    })?;
    Imported::from_list(
        outcome.rows,
        outcome.missing_videos.len(),
        &list,
        args,
        ("clip of the list has a video", "without a video"),
    )
}

fn from_pairs(args: &ImportArgs) -> Result<Imported> {
    if args.labels.is_some() || args.labels_csv.is_some() {
        bail!("--format vggsound-duet reads both labels from the list; it takes no --labels or --labels-csv");
    }
    let list = args
        .list
        .clone()
        .context("--format vggsound-duet needs --list FILE")?;
    let outcome = import_pairs(&PairRequest {
        list: list.clone(),
        videos: args.videos.clone(),
        split: args.split.clone(),
        annotations: args.annotations.clone(),
        skip_missing: args.skip_missing,
    })?;
    Imported::from_list(
        outcome.rows,
        outcome.missing_videos.len(),
        &list,
        args,
        (
            "pair of the list has both videos",
            "pairs without both videos",
        ),
    )
}

fn from_folder(args: &ImportArgs) -> Result<Imported> {
    if let Some(list) = &args.list {
        bail!(
            "--format folder takes no --list ({}): every video under --videos becomes a row",
            list.display()
        );
    }
    if args.labels.is_some() || args.annotations.is_some() {
        bail!("--format folder reads labels from --labels-csv or the parent folders' names, not --labels or --annotations");
    }
    let outcome = import_folder(&FolderRequest {
        videos: args.videos.clone(),
        split: args.split.clone(),
        labels_csv: args.labels_csv.clone(),
        skip_missing: args.skip_missing,
    })?;
    if outcome.rows.is_empty() {
        bail!(
            "no video under {} to import ({} not in the labels CSV)",
            args.videos.display(),
            outcome.unlabelled.len()
        );
    }
    let mut left_out = format!(
        "{} videos not in the labels CSV left out",
        outcome.unlabelled.len()
    );
    if let Some(csv) = &args.labels_csv {
        if let Some(first) = outcome.labels_without_video.first() {
            left_out.push_str(&format!(
                "; {} ids of {} have no video (first: {first})",
                outcome.labels_without_video.len(),
                csv.display()
            ));
        }
    }
    Ok(Imported {
        rows: outcome.rows,
        source: format!("folder {}", args.videos.display()),
        left_out,
    })
}

pub fn run(config: &Path, args: ImportArgs) -> Result<ExitCode> {
    let (_, layout) = super::load(config)?;
    let path = layout.manifest();
    let imported = match args.format {
        SourceFormat::List(format) => from_list(&args, format)?,
        SourceFormat::VggSoundDuet => from_pairs(&args)?,
        SourceFormat::Folder => from_folder(&args)?,
    };
    let mut rows = Vec::new();
    if path.exists() {
        if args.append {
            rows = Manifest::read(&path)?.rows;
            let existing: std::collections::HashSet<_> =
                rows.iter().map(|r| r.id.clone()).collect();
            if let Some(dup) = imported.rows.iter().find(|r| existing.contains(&r.id)) {
                bail!(
                    "{}: sample {} is already in {}",
                    imported.source,
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
    let added = imported.rows.len();
    rows.extend(imported.rows);
    let base = path
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    Manifest { base, rows }.write(&path)?;
    println!(
        "import: {added} clips ({} split) from {} -> {}; {}",
        args.split,
        imported.source,
        path.display(),
        imported.left_out
    );
    Ok(ExitCode::SUCCESS)
}
