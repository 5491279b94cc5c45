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
use oassl_pipeline::{run_lock, Layout};

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
    /// Build the manifest from a local VGGSound or MUSIC video folder and a benchmark list file, or a folder of videos.
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

/// The stage folders a command writes and the ones it reads: a run holds their locks (see
/// `oassl_pipeline::run_lock`) until it ends, so no other run writes what it reads or writes.
struct Folders {
    command: &'static str,
    write: Vec<String>,
    read: Vec<&'static str>,
}

impl Folders {
    fn new(command: &'static str, write: &[&str], read: &[&'static str]) -> Self {
        Self {
            command,
            write: write.iter().map(|s| s.to_string()).collect(),
            read: read.to_vec(),
        }
    }
}

impl Command {
    fn folders(&self) -> Option<Folders> {
        Some(match self {
            Command::Synth(_) => Folders::new("oassl synth", &["dataset"], &[]),
            Command::Import(_) => Folders::new("oassl import", &["dataset"], &[]),
            // Shards of one job array run side by side on disjoint samples and files: each holds its own shard
            // and only reads the shared folders, which keeps a whole-manifest run or a merge out meanwhile.
            Command::Captions(args) => match args.shard.and_then(|s| s.suffix()) {
                Some(shard) if !args.merge => Folders {
                    command: "oassl captions --shard",
                    write: vec![format!("captions-{shard}")],
                    read: vec!["dataset", "extract", "captions"],
                },
                _ => Folders::new("oassl captions", &["extract", "captions"], &["dataset"]),
            },
            Command::LabelCaptions(_) => {
                Folders::new("oassl label-captions", &["captions"], &["dataset"])
            }
            Command::Embed(_) => Folders::new("oassl embed", &["embed"], &["captions"]),
            Command::Pretrain(_) => Folders::new("oassl pretrain", &["pretrain"], &["dataset"]),
            Command::Train(_) => Folders::new(
                "oassl train",
                &["train"],
                &["dataset", "extract", "embed", "pretrain"],
            ),
            Command::Eval(_) => {
                Folders::new("oassl eval", &["eval"], &["dataset", "extract", "train"])
            }
            Command::Localize(_) => Folders::new("oassl localize", &[], &["train"]),
            Command::Report(_) => Folders::new(
                "oassl report",
                &["report"],
                &["dataset", "extract", "embed", "pretrain"],
            ),
            // A `--measure` child of `oassl cost` runs under its parent's locks.
            Command::Cost(args) if args.measure.is_some() => return None,
            Command::Cost(_) => {
                Folders::new("oassl cost", &["cost"], &["dataset", "extract", "embed"])
            }
            Command::MllmStub(_) | Command::ScoreMaps(_) | Command::Info => return None,
        })
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let _locks = match cli.command.folders() {
        Some(f) => {
            let (loaded, _) = load(&cli.config)?;
            let write: Vec<&str> = f.write.iter().map(String::as_str).collect();
            run_lock::acquire_all(&loaded.data_root(), &write, &f.read, f.command)?
        }
        None => Vec::new(),
    };
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
