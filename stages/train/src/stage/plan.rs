//! The first phase of a training run: read and check the inputs, fingerprint them, and decide whether the run
//! is up to date, starts over or resumes an interrupted one.

use std::path::Path;

use anyhow::{bail, Result};

use oassl_pipeline::config::TrainConfig;
use oassl_pipeline::fingerprint::{hash_json, hash_parts, FileDigest};
use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::stage_lock::{self, StageLock, Staleness};
use oassl_pipeline::tables::read_sample_texts;
use oassl_pipeline::Layout;

use super::checkpoint::{CheckpointState, Checkpoints};
use super::{settings, ModelMeta, TrainFiles, TrainOptions, TrainSummary};
use crate::data::{training_set, StepPlan, TrainSet};

/// What a run will do, decided before any weight exists.
pub(super) struct RunPlan {
    /// The usable training clips.
    pub set: TrainSet,
    /// How the epochs are cut into steps.
    pub steps: StepPlan,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// Fingerprint of the result-relevant `[train]` settings.
    pub config_hash: String,
    /// Content digests of every input file (manifest, text vectors, frames, WAVs, visual weights).
    pub digests: Vec<FileDigest>,
    /// One hash over `digests`, recorded in checkpoints.
    pub inputs_hash: String,
    /// The checkpoint to continue, for `--resume` after an interrupted run.
    pub resume_from: Option<CheckpointState>,
    /// Why the stage runs.
    pub staleness: Staleness,
}

/// The outcome of planning: nothing to do, or a run.
pub(super) enum Planned {
    /// The lock vouches for the existing model and nothing was forced.
    UpToDate(TrainSummary),
    /// Train.
    Run(Box<RunPlan>),
}

/// Reads the manifest and text vectors, checks every training clip, fingerprints the inputs and takes the
/// resume decision (a plain rerun after an interruption refuses, naming `--resume` and `--restart`).
pub(super) fn plan(
    cfg: &TrainConfig,
    layout: &Layout,
    files: &TrainFiles,
    opts: &TrainOptions,
) -> Result<Planned> {
    let manifest_path = layout.manifest();
    if !manifest_path.exists() {
        bail!(
            "manifest {} not found: run `make data` first",
            manifest_path.display()
        );
    }
    let sample_text_path = layout.stage_dir("embed").join("sample_text.parquet");
    if !sample_text_path.exists() {
        bail!(
            "text vectors {} not found: run `make captions` and `make embed` first",
            sample_text_path.display()
        );
    }
    let manifest = Manifest::read(&manifest_path)?;
    let texts = read_sample_texts(&sample_text_path)?;
    let set = training_set(
        layout,
        &manifest,
        &cfg.splits,
        &texts,
        &sample_text_path,
        cfg.skip_bad_samples,
    )?;
    let steps = StepPlan::new(&set.samples, cfg.batch_size, cfg.compose, cfg.seed)?;
    let total_steps = steps.steps_per_epoch() * cfg.epochs;

    // Fingerprint: the [train] settings that matter and every input file.
    let mut deps = vec![manifest_path, sample_text_path];
    for s in &set.samples {
        deps.push(s.frame.clone());
        deps.push(s.audio.clone());
    }
    if let Some(w) = &opts.visual_weights {
        deps.push(w.clone());
    }
    let config_hash = hash_json(&settings::result_relevant(cfg))?;
    let checkpoints = files.checkpoints();
    let staleness = stage_lock::check(&files.lock(), &config_hash, &deps)?;
    let interrupted = interrupted_run(&checkpoints, &files.lock())?;
    if interrupted.is_none() && staleness == Staleness::UpToDate && !opts.force && !opts.restart {
        let meta = ModelMeta::read(&files.meta())?;
        return Ok(Planned::UpToDate(TrainSummary {
            up_to_date: true,
            reason: staleness.to_string(),
            samples: set.samples.len(),
            skipped: set.skipped.len(),
            step: meta.step,
            total_steps,
            final_loss: meta.final_loss,
            model: files.model(),
            ..TrainSummary::default()
        }));
    }
    let digests: Vec<FileDigest> = deps
        .iter()
        .map(|p| FileDigest::of(p))
        .collect::<Result<_>>()?;
    let inputs_hash = hash_parts(digests.iter().map(|d| d.hash.as_bytes()));
    let resume_from = match interrupted {
        Some(state) if !opts.restart => Some(resumable(
            state,
            opts,
            &checkpoints,
            &config_hash,
            &inputs_hash,
        )?),
        _ => None,
    };
    Ok(Planned::Run(Box::new(RunPlan {
        set,
        steps,
        total_steps,
        config_hash,
        digests,
        inputs_hash,
        resume_from,
        staleness,
    })))
}

/// The newest checkpoint of a run that did not finish: one the stage lock does not record as the end of the
/// run it vouches for (a run killed or stopped early, or killed between its last checkpoint and its lock).
fn interrupted_run(checkpoints: &Checkpoints, lock_path: &Path) -> Result<Option<CheckpointState>> {
    let Some(latest) = checkpoints.latest()? else {
        return Ok(None);
    };
    let finished = StageLock::read(lock_path)?.is_some_and(|lock| {
        lock.config_hash == latest.config_hash
            && lock.counts.get("steps") == Some(&(latest.step as u64))
            && latest.step == latest.total_steps
    });
    Ok((!finished).then_some(latest))
}

/// An interrupted run's checkpoint, if this invocation may continue it: only with `--resume`, and only when
/// the settings and inputs are the ones it was trained with. Otherwise the run stops before touching anything.
fn resumable(
    state: CheckpointState,
    opts: &TrainOptions,
    checkpoints: &Checkpoints,
    config_hash: &str,
    inputs_hash: &str,
) -> Result<CheckpointState> {
    let latest = checkpoints.latest_path();
    if !opts.resume {
        bail!(
            "an interrupted training run stopped at step {} of {} ({}): continue it with `oassl train --resume` \
             (`make train ARGS=--resume`) or discard its checkpoints and start over with `oassl train --restart`",
            state.step,
            state.total_steps,
            latest.display()
        );
    }
    if state.config_hash != config_hash || state.inputs_hash != inputs_hash {
        bail!(
            "cannot resume from {}: the [train] settings or the training inputs changed since; start over \
             with `oassl train --restart`",
            latest.display()
        );
    }
    Ok(state)
}
