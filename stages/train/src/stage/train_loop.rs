//! The third phase of a training run: batches from the decoded-data cache, staged as (pinned) host tensors on a
//! thread of their own, through forward, backward and Adam. The loss terms stay on the device and are read
//! back every `log_every` steps, before any checkpoint and at the end (the step's only host synchronisation);
//! checkpoints every `checkpoint_every` steps.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;

use oassl_pipeline::config::TrainConfig;
use oassl_pipeline::fingerprint::FileDigest;

use super::checkpoint::CheckpointState;
use super::pending_steps::{PendingSteps, StepTimes};
use super::plan::RunPlan;
use super::session::Session;
use super::{TrainFiles, TrainOptions};
use crate::data::batch::LoaderSettings;
use crate::data::decoded_cache::{CacheParams, CacheState, DecodedCache};
use crate::data::{BatchLoader, FrameTransform, Source, StagedBatches, TrainSample};
use crate::loss;

/// Where the loop stopped.
pub(super) struct LoopOutcome {
    /// Steps completed (the run's total unless stopped early by `stop_after`).
    pub step: usize,
    /// Steps this invocation trained.
    pub trained: usize,
    /// Seconds of this invocation's steps, loader waits included.
    pub elapsed: f64,
}

/// Trains from the session's start step to the end of the run (or `opts.stop_after`).
pub(super) fn train_loop(
    cfg: &TrainConfig,
    plan: &mut RunPlan,
    session: &mut Session,
    files: &TrainFiles,
    opts: &TrainOptions,
) -> Result<LoopOutcome> {
    let total_steps = plan.total_steps;
    let start_step = session.start_step;
    let end_step = opts
        .stop_after
        .map_or(total_steps, |s| s.min(total_steps))
        .max(start_step);
    let batches = StagedBatches::spawn(
        loader(cfg, plan, files, start_step..end_step)?,
        session.device,
    )?;
    let steps_per_epoch = plan.steps.steps_per_epoch();
    let progress = oassl_pipeline::progress::bar("train", total_steps);
    progress.set_position(start_step as u64);

    let run_started = Instant::now();
    let mut trained = 0usize;
    let mut step = start_step;
    let mut pending = PendingSteps::default();
    let mut waited = Instant::now();
    for batch in batches {
        let batch = batch?;
        let mut times = StepTimes {
            loader: waited.elapsed().as_secs_f64(),
            ..StepTimes::default()
        };
        let phase = Instant::now();
        let t = batch.to_device(session.device)?;
        let outputs = crate::model::cuda_autocast(session.autocast, || {
            session
                .model
                .forward(&t.frames, &t.spec, &t.foreground, &t.background, true)
        })?;
        let outputs = match t.fg_valid {
            Some(mask) => outputs.with_fg_valid(mask)?,
            None => outputs,
        };
        let terms = loss::total(&outputs, &cfg.loss, cfg.method)?;
        times.forward = phase.elapsed().as_secs_f64();
        let phase = Instant::now();
        let grads = session.adam.backward(&terms.total)?;
        times.backward = phase.elapsed().as_secs_f64();
        let phase = Instant::now();
        let applied = session.adam.step(grads)?;
        times.optimizer = phase.elapsed().as_secs_f64();
        step = batch.step + 1;
        trained += 1;
        let epoch = batch.step / steps_per_epoch;
        pending.push(
            (step, epoch),
            &terms,
            times,
            applied.as_ref(),
            batch.samples,
        );
        let checkpoint_due = step.is_multiple_of(cfg.checkpoint_every) && step < total_steps;
        if step.is_multiple_of(cfg.log_every) || checkpoint_due || step == end_step {
            // The step's one host synchronisation: a checkpoint is never written after an unread loss.
            if let Err(e) = pending.flush(&mut session.rows, &last_good_text(&session.last_good)) {
                progress.abandon();
                return Err(e);
            }
            if let Some(r) = session.rows.last() {
                progress.set_message(format!(
                    "loss {:.4} | {:.1} samples/s",
                    r.total, r.samples_per_s
                ));
            }
        }
        progress.set_position(step as u64);
        if checkpoint_due {
            session.save_checkpoint(cfg, plan, files, step)?;
        }
        waited = Instant::now();
    }
    progress.finish_and_clear();
    Ok(LoopOutcome {
        step,
        trained,
        elapsed: run_started.elapsed().as_secs_f64(),
    })
}

/// The batches of `steps`, built from the decoded-data cache by the loader threads. The training clips move
/// into the loader.
fn loader(
    cfg: &TrainConfig,
    plan: &mut RunPlan,
    files: &TrainFiles,
    steps: std::ops::Range<usize>,
) -> Result<BatchLoader> {
    let step_clips: Vec<(usize, Vec<usize>)> = steps
        .map(|step| (step, plan.steps.step_clips(step)))
        .collect();
    let cache = decoded_cache(files, &plan.set.samples, &plan.digests, cfg)?;
    let samples = Arc::new(std::mem::take(&mut plan.set.samples));
    BatchLoader::spawn(
        samples,
        Source::Cache(Arc::new(cache)),
        step_clips,
        LoaderSettings {
            transform: FrameTransform::Train {
                resize: cfg.resize_before_crop(),
                crop: cfg.image_size,
                flip: cfg.flip,
            },
            audio_seconds: cfg.audio_seconds,
            seed: cfg.seed,
            workers: cfg.workers,
            prefetch: cfg.prefetch,
            compose: cfg.compose,
        },
    )
}

/// The newest checkpoint, as the non-finite-loss error names it.
fn last_good_text(last_good: &Option<CheckpointState>) -> String {
    match last_good {
        Some(s) => format!("{} (step {})", s.model_file.display(), s.step),
        None => "none (no checkpoint was written yet)".to_string(),
    }
}

/// Opens (or first builds) the decoded-data cache of the training set; `digests` holds the content hash of every
/// frame and WAV.
fn decoded_cache(
    files: &TrainFiles,
    samples: &[TrainSample],
    digests: &[FileDigest],
    cfg: &TrainConfig,
) -> Result<DecodedCache> {
    let hash_of: HashMap<&Path, &str> = digests
        .iter()
        .map(|d| (d.path.as_path(), d.hash.as_str()))
        .collect();
    let content: Vec<(String, String, String)> = samples
        .iter()
        .map(|s| {
            let hash = |p: &PathBuf| hash_of.get(p.as_path()).copied().unwrap_or("").to_string();
            (s.id.to_string(), hash(&s.frame), hash(&s.audio))
        })
        .collect();
    let params = CacheParams {
        resize: cfg.resize_before_crop(),
        crop: cfg.image_size,
        audio_seconds: cfg.audio_seconds,
    };
    let key = DecodedCache::key(&content, &params);
    let started = Instant::now();
    let (cache, state) =
        DecodedCache::open_or_build(&files.decoded(), samples, &key, &params, cfg.workers)?;
    match state {
        CacheState::Reused => tracing::info!("train: decoded cache reused ({} clips)", cache.len()),
        CacheState::Built(why) => tracing::info!(
            "train: decoded cache built ({} clips, {:.1} s): {why}",
            cache.len(),
            started.elapsed().as_secs_f64()
        ),
    }
    Ok(cache)
}
