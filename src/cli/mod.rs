//! Argument parsing and dispatch to the stage crates.

mod captions;
mod cost;
mod embed;
mod eval;
mod import;
mod info;
mod label_captions;
mod localize;
mod pretrain;
mod report;
mod score_maps;
mod stub;
mod synth;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use oassl_pipeline::config::{LoadedConfig, PipelineConfig};
use oassl_pipeline::Layout;

/// Object-aware sound source localisation (OA-SSL): captions -> embed -> train/eval, through files on disk.
#[derive(Debug, Parser)]
#[command(name = "oassl", version, about)]
pub struct Cli {
    /// Pipeline config file.
    #[arg(long, global = true, env = "CONFIG", default_value = "pipeline.toml")]
    pub config: PathBuf,
    /// More logging (same as RUST_LOG=debug).
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the AVS-Synth dataset (videos or extracted frames + audio, manifest, ground truth).
    Synth(synth::SynthArgs),
    /// Build the manifest from a local VGGSound or MUSIC video folder and a benchmark list file.
    Import(import::ImportArgs),
    /// Stage one: extract frames and audio, caption them with the MLLM.
    Captions(captions::CaptionsArgs),
    /// Run the local OpenAI-compatible MLLM stand-in.
    MllmStub(stub::StubArgs),
    /// Captions from the manifest labels alone (no MLLM), for stage two.
    LabelCaptions(label_captions::LabelCaptionsArgs),
    /// Stage two: embed the captions with the configured text encoder.
    Embed(embed::EmbedArgs),
    /// Pretrain the visual ResNet-18 on the AVS-Synth pretraining split (object classification).
    Pretrain(pretrain::PretrainArgs),
    /// Stage three: train the OA-SSL model (or a baseline) on the training splits.
    Train(train::TrainArgs),
    /// Evaluate the trained model on the test splits (metrics, table, gallery).
    Eval(eval::EvalArgs),
    /// Run the trained model on one's own clips (videos or frame + WAV): overlay PNGs and maps.
    Localize(localize::LocalizeArgs),
    /// Score heatmaps of any method against annotations under a named evaluation protocol.
    ScoreMaps(score_maps::ScoreMapsArgs),
    /// Train and evaluate the comparison runs of `[report]` (objectives, λ sweep, text encoders); write the tables.
    Report(report::ReportArgs),
    /// Measure training and inference cost (the supplementary's Table 4) on this machine.
    Cost(cost::CostArgs),
    /// Show versions, the libtorch in use and whether CUDA is available.
    Info,
}

/// Loads the config and the data layout it names.
pub(crate) fn load(path: &std::path::Path) -> Result<(LoadedConfig, Layout)> {
    let loaded = PipelineConfig::load(path)?;
    let layout = Layout::new(loaded.data_root());
    Ok((loaded, layout))
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Synth(args) => synth::run(&cli.config, args),
        Command::Import(args) => import::run(&cli.config, args),
        Command::Captions(args) => captions::run(&cli.config, args),
        Command::MllmStub(args) => stub::run(&cli.config, args),
        Command::LabelCaptions(args) => label_captions::run(&cli.config, args),
        Command::Embed(args) => embed::run(&cli.config, args),
        Command::Pretrain(args) => pretrain::run(&cli.config, args),
        Command::Train(args) => train::run(&cli.config, args),
        Command::Eval(args) => eval::run(&cli.config, args),
        Command::Localize(args) => localize::run(&cli.config, args),
        Command::ScoreMaps(args) => score_maps::run(args),
        Command::Report(args) => report::run(&cli.config, args),
        Command::Cost(args) => cost::run(&cli.config, args),
        Command::Info => info::run(),
    }
}
