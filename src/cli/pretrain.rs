//! `oassl pretrain`: the visual trunk's pretraining on the AVS-Synth pretraining split.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// Pretrain even if nothing changed since the last run.
    #[arg(long)]
    pub force: bool,
}

pub fn run(config: &Path, args: PretrainArgs) -> Result<ExitCode> {
    let (loaded, layout) = super::load(config)?;
    let s = oassl_train::pretrain::run(&loaded.config.pretrain, &layout, args.force)?;
    let state = if s.up_to_date {
        "up to date".to_string()
    } else {
        format!("{}; {:.1} samples/s", s.reason, s.samples_per_s)
    };
    println!(
        "pretrain ({state}): {} classes, {} frames, {} steps, final loss {:.4}; held out ({} frames): exact class \
         set {:.1} %, per-class decisions {:.1} % -> {}",
        s.classes.len(),
        s.train_frames,
        s.steps,
        s.final_loss,
        s.held_out_frames,
        s.held_out_exact * 100.0,
        s.held_out_label_accuracy * 100.0,
        s.weights.display()
    );
    Ok(ExitCode::SUCCESS)
}
