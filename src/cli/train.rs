//! `oassl train`: stage three.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use oassl_train::stage::{run as run_stage, TrainOptions};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Continue the newest checkpoint of an interrupted run to the same final step.
    #[arg(long, conflicts_with = "restart")]
    pub resume: bool,
    /// Discard the checkpoints of an interrupted run and train from the start.
    #[arg(long)]
    pub restart: bool,
    /// Train even if nothing changed since the last run.
    #[arg(long)]
    pub force: bool,
    /// Stop once this many steps are done, without the final checkpoint (as if the run were killed).
    #[arg(long, hide = true)]
    pub stop_after: Option<usize>,
}

pub fn run(config: &Path, args: TrainArgs) -> Result<ExitCode> {
    let (loaded, layout) = super::load(config)?;
    let cfg = &loaded.config.train;
    let visual_weights =
        (!cfg.visual_weights.as_os_str().is_empty()).then(|| loaded.resolve(&cfg.visual_weights));
    if let Some(w) = visual_weights.as_ref().filter(|w| !w.exists()) {
        anyhow::bail!(
            "[train] visual_weights {} not found: run `make pretrain` (or `oassl pretrain`), point it at \
             torchvision's resnet18-f37072fd.pth, or set it to \"\" for a random visual trunk",
            w.display()
        );
    }
    let opts = TrainOptions {
        resume: args.resume,
        force: args.force,
        restart: args.restart,
        stop_after: args.stop_after,
        visual_weights,
    };
    let s = run_stage(cfg, &layout, &opts)?;
    if s.up_to_date {
        println!(
            "train: up to date: {} steps, final loss {:.4}, model {} ({})",
            s.step,
            s.final_loss,
            s.model.display(),
            layout.stage_lock("train").display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if s.interrupted {
        println!(
            "train ({}): stopped at step {}/{} (loss {:.4}); continue with `oassl train --resume`",
            s.reason, s.step, s.total_steps, s.final_loss
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "train ({}): {} samples ({} skipped), steps {}..{} of {}, final loss {:.4}, {:.1} samples/s on {} -> {}",
        s.reason,
        s.samples,
        s.skipped,
        s.start_step,
        s.step,
        s.total_steps,
        s.final_loss,
        s.samples_per_s,
        s.device,
        s.model.display()
    );
    Ok(ExitCode::SUCCESS)
}
