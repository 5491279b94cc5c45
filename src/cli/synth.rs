//! `oassl synth`: generate AVS-Synth.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, ValueEnum};

use oassl_synth::geometry::{AreaReference, GeometryReport};
use oassl_synth::OutputLayout;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LayoutArg {
    /// H.264 + AAC mp4 files that stage one extracts.
    Video,
    /// Frames (JPEG) and audio (WAV) written where stage one would write them, for hosts without FFmpeg.
    Extracted,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// What to write per clip.
    #[arg(long, value_enum, default_value = "video")]
    pub layout: LayoutArg,
    /// Override `[synth] seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Multiply every split's size by this factor (e.g. 20 for a GPU-sized set).
    #[arg(long, default_value_t = 1)]
    pub scale: usize,
    /// Regenerate even if the dataset exists.
    #[arg(long)]
    pub force: bool,
    /// Folder of the benchmarks' annotation files (`vggss/vggss.json`, `music/music_duet.json`) whose box-area
    /// quantiles are printed beside the generated ones; without it (or without the files) the numbers measured
    /// on them are used.
    #[arg(long, env = "OASSL_BENCHMARK_DATASETS")]
    pub benchmarks: Option<std::path::PathBuf>,
}

pub fn run(config: &Path, args: SynthArgs) -> Result<ExitCode> {
    let (loaded, layout) = super::load(config)?;
    let mut cfg = loaded.config.synth.clone();
    if let Some(seed) = args.seed {
        cfg.seed = seed;
    }
    let scale = args.scale.max(1);
    cfg.pretrain *= scale;
    cfg.train_single *= scale;
    cfg.train_duet *= scale;
    cfg.test_single *= scale;
    cfg.test_duet *= scale;
    if oassl_synth::generate::exists(&layout) && !args.force {
        println!(
            "AVS-Synth already present in {} (use --force to regenerate)",
            layout.dataset_dir().display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mode = match args.layout {
        LayoutArg::Video => OutputLayout::Video,
        LayoutArg::Extracted => OutputLayout::Extracted,
    };
    let started = std::time::Instant::now();
    let summary = oassl_synth::generate(&cfg, &layout, mode)?;
    println!(
        "AVS-Synth: {} clips ({} sounding, {} silent objects, {} scenes with a silent twin of a sounding class) in {:.1} s -> {}",
        summary.clips,
        summary.sounding_objects,
        summary.silent_objects,
        summary.same_class_scenes,
        started.elapsed().as_secs_f64(),
        layout.dataset_dir().display()
    );
    println!(
        "pretraining split: {} frames -> {}",
        summary.pretrain_frames,
        layout.pretrain_dir().display()
    );
    let reference = match &args.benchmarks {
        Some(dir) => AreaReference::from_datasets_dir(dir)?,
        None => AreaReference::built_in(),
    };
    let geometry = GeometryReport::new(&summary.single_areas, &summary.duet_areas, &reference);
    print!("{}", geometry.table());
    Ok(ExitCode::SUCCESS)
}
