//! `oassl score-maps`: score heatmaps from any method against an annotation file under a named protocol.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use oassl_eval::metrics::DetectionReport;
use oassl_eval::{AnnotationFormat, MissingMaps, MultiSourceSelection, Protocol, ScoreOptions};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Vggss,
    MusicSolo,
    MusicDuet,
    Dsol,
    Flickr,
    VggsoundDuet,
    Synth,
}

/// Multi-source scorings (see `oassl_eval::multi_source`).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum MultiSourceArg {
    /// One score per sounding source, normalised per source region (the evaluators' own).
    SourceWise,
    /// One score per input frame: the merged maps against the union of the frame's sources.
    FrameWise,
    /// Both, side by side.
    Both,
}

#[derive(Debug, Args)]
pub struct ScoreMapsArgs {
    /// safetensors file: one tensor per sample id, f32 or f64, [H,W] or [K,H,W].
    #[arg(long)]
    pub maps: PathBuf,
    /// Annotation file (a folder of XML files for `flickr`).
    #[arg(long)]
    pub annotations: PathBuf,
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// vggss.json with the boxes, for `vggsound-duet` pair lists.
    #[arg(long)]
    pub boxes: Option<PathBuf>,
    /// SLAVC extended list (`*_test_plus_silent.csv`): appends its non-sounding pairs, whose maps
    /// are keyed `nonsounding/<video>/<audio>` (slavc-extended only).
    #[arg(long)]
    pub plus_silent: Option<PathBuf>,
    /// The evaluator to reproduce.
    #[arg(long, default_value = "oassl", value_parser = clap::builder::PossibleValuesParser::new(Protocol::NAMES))]
    pub protocol: String,
    /// Multi-source protocols (noprior, oassl, tvsl): score source-wise, frame-wise or both; the
    /// report's `aggregates` hold the first, `frame_wise` the second. Ignored by single-source ones.
    #[arg(long, value_enum, default_value = "both")]
    pub multi_source: MultiSourceArg,
    /// Temperature of `cos/τ` maps for the absolute protocols (slavc-abs, slavc-extended,
    /// avgn-multi; default their 0.03).
    #[arg(long)]
    pub tau: Option<f64>,
    /// Score annotated samples without maps as failures instead of refusing.
    #[arg(long)]
    pub missing_as_failure: bool,
    /// Where to write the JSON report.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: ScoreMapsArgs) -> Result<ExitCode> {
    let Some(mut protocol) = Protocol::by_name(&args.protocol) else {
        bail!(
            "unknown protocol {:?} ({})",
            args.protocol,
            Protocol::NAMES.join(", ")
        );
    };
    if let Some(tau) = args.tau {
        if !protocol.has_fixed_range() {
            bail!(
                "--tau applies to protocols that read cos/τ maps through a fixed range, not `{}`",
                protocol.name
            );
        }
        if !(tau.is_finite() && tau > 0.0) {
            bail!("--tau must be a positive number, got {tau}");
        }
        protocol = protocol.with_tau(tau);
    }
    let format = match args.format {
        FormatArg::Vggss => AnnotationFormat::VggSs,
        FormatArg::MusicSolo | FormatArg::MusicDuet => AnnotationFormat::Music,
        FormatArg::Dsol => AnnotationFormat::Dsol,
        FormatArg::Flickr => AnnotationFormat::FlickrXml,
        FormatArg::Synth => AnnotationFormat::AvsSynth,
        FormatArg::VggsoundDuet => AnnotationFormat::VggSoundPairs {
            boxes: args
                .boxes
                .clone()
                .context("--format vggsound-duet needs --boxes vggss.json")?,
        },
    };
    let format = match args.plus_silent {
        None => format,
        Some(list)
            if matches!(
                protocol.detection.as_ref().map(|d| &d.report),
                Some(DetectionReport::FinalizeStats { .. })
            ) =>
        {
            AnnotationFormat::PlusNonSounding {
                base: Box::new(format),
                list,
            }
        }
        Some(_) => bail!(
            "--plus-silent needs a protocol scoring non-sounding pairs (slavc-extended), not `{}`",
            protocol.name
        ),
    };
    let opts = ScoreOptions {
        missing: if args.missing_as_failure {
            MissingMaps::ScoreAsFailure
        } else {
            MissingMaps::Error
        },
        multi_source: match args.multi_source {
            MultiSourceArg::SourceWise => MultiSourceSelection::SourceWise,
            MultiSourceArg::FrameWise => MultiSourceSelection::FrameWise,
            MultiSourceArg::Both => MultiSourceSelection::Both,
        },
    };
    let report = oassl_eval::score_maps(&args.maps, &args.annotations, format, protocol, opts)?;
    oassl_pipeline::atomic::write_json(&args.out, &report)?;
    print!("{}", oassl_eval::markdown_table(&report));
    print!("{}", oassl_eval::markdown_tables(&report));
    println!("report: {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
