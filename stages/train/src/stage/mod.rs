//! Stage three, `oassl train`: trains the OA-SSL model (or an LVS / NoPrior baseline) on the manifest's
//! training splits.
//!
//! Reads `dataset/manifest.csv`, `extract/frames/*.jpg`, `extract/audio/*.wav` and `embed/sample_text.parquet`;
//! writes under `train/`:
//! - `checkpoints/` (see [`checkpoint`]), every `checkpoint_every` steps and at the end;
//! - `steps.csv` (see [`step_log`]) and `loss_curve.png` (see [`loss_curve`]);
//! - `model.safetensors` and `model.json` ([`ModelMeta`]): the final weights that `oassl eval` reads;
//! - `stage.lock.json`, last.
//!
//! A rerun is skipped when the lock says nothing changed (inputs, `[train]`). After an interrupted run a plain
//! rerun refuses and touches nothing: `--resume` continues its newest checkpoint to the same final step,
//! `--restart` discards it; a non-finite loss stops the run with the step,
//! the loss terms and the last good checkpoint.

pub mod adam;
pub mod checkpoint;
pub mod loss_curve;
pub mod pending_steps;
pub mod settings;
pub mod step_log;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tch::nn;

use oassl_pipeline::config::{TrainConfig, TrainLossConfig};
use oassl_pipeline::fingerprint::{hash_json, hash_parts, FileDigest};
use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::stage_lock::{self, StageLock, Staleness, LOCK_SCHEMA};
use oassl_pipeline::tables::read_sample_texts;
use oassl_pipeline::Layout;

use crate::data::batch::LoaderSettings;
use crate::data::decoded_cache::{CacheParams, CacheState, DecodedCache};
use crate::data::{training_set, BatchLoader, FrameTransform, Source, StepPlan, TrainSample};
use crate::loss;
use crate::model::resnet::Compute;
use crate::model::{load_torchvision_trunk, ModelConfig, OasslModel};
use adam::{Adam, AdamParams};
use checkpoint::{CheckpointState, Checkpoints};
use pending_steps::{PendingSteps, StepTimes};
use step_log::StepRow;

/// Options of one run (command-line flags).
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue the newest checkpoint instead of starting over.
    pub resume: bool,
    /// Train even if the stage lock says nothing changed.
    pub force: bool,
    /// Discard the checkpoints of an interrupted run and train from the start.
    pub restart: bool,
    /// Stop (as if killed) once this many steps are done, without the final checkpoint; for testing resume.
    pub stop_after: Option<usize>,
    /// Resolved `[train] visual_weights` (None = random init).
    pub visual_weights: Option<PathBuf>,
}

/// What the trained model needs besides its weights; written as `train/model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Objective it was trained with.
    pub method: String,
    /// Steps trained.
    pub step: usize,
    /// Width D of the text vectors.
    pub text_dim: usize,
    /// Input side S.
    pub image_size: u32,
    /// Seconds of audio.
    pub audio_seconds: f64,
    /// Whether the visual trunk was frozen.
    pub freeze_visual: bool,
    /// Output stride of the visual trunk (32 for runs that predate the setting).
    #[serde(default = "default_visual_output_stride")]
    pub visual_output_stride: i64,
    /// Whether a trainable 1×1 projection follows the visual trunk.
    #[serde(default)]
    pub visual_projection: bool,
    /// The loss constants (IOI thresholds are reused at evaluation).
    pub loss: TrainLossConfig,
    /// Loss of the last step.
    pub final_loss: f64,
}

impl ModelMeta {
    /// Reads `train/model.json`.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading {} (run `make train` first)", path.display()))?;
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
    }

    /// The model shape it describes.
    pub fn model_config(&self) -> ModelConfig {
        ModelConfig {
            text_dim: self.text_dim as i64,
            freeze_visual: self.freeze_visual,
            freeze_audio: false,
            visual_output_stride: self.visual_output_stride,
            visual_projection: self.visual_projection,
        }
    }
}

fn default_visual_output_stride() -> i64 {
    32
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrainSummary {
    /// Nothing changed; the existing model was kept.
    pub up_to_date: bool,
    /// Why it ran (or the staleness text).
    pub reason: String,
    /// Training samples used.
    pub samples: usize,
    /// Samples left out (`skip_bad_samples`).
    pub skipped: usize,
    /// Step it started from (non-zero when resumed).
    pub start_step: usize,
    /// Steps completed.
    pub step: usize,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// Stopped early by `stop_after`.
    pub interrupted: bool,
    /// Loss of the last step.
    pub final_loss: f64,
    /// Mean samples/s over the steps of this invocation.
    pub samples_per_s: f64,
    /// Device used.
    pub device: String,
    /// The final weights.
    pub model: PathBuf,
}

/// Files of the training stage.
pub struct TrainFiles {
    /// `train/`.
    pub dir: PathBuf,
}

impl TrainFiles {
    /// The files under `layout`'s `train/`.
    pub fn new(layout: &Layout) -> Self {
        Self {
            dir: layout.stage_dir("train"),
        }
    }
    /// Final weights.
    pub fn model(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }
    /// Final model description.
    pub fn meta(&self) -> PathBuf {
        self.dir.join("model.json")
    }
    /// Per-step log.
    pub fn steps(&self) -> PathBuf {
        self.dir.join("steps.csv")
    }
    /// Loss curve picture.
    pub fn curve(&self) -> PathBuf {
        self.dir.join("loss_curve.png")
    }
    /// The decoded-data cache folder.
    pub fn decoded(&self) -> PathBuf {
        self.dir.join("decoded")
    }
    /// The stage lock, written last.
    pub fn lock(&self) -> PathBuf {
        self.dir.join("stage.lock.json")
    }
    /// Checkpoint folder.
    pub fn checkpoints(&self) -> Checkpoints {
        Checkpoints::new(self.dir.join("checkpoints"))
    }
}

fn bar(total: usize, start: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "train {bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_position(start as u64);
    bar
}

/// The newest checkpoint, as the non-finite-loss error names it.
fn last_good_text(last_good: &Option<CheckpointState>) -> String {
    match last_good {
        Some(s) => format!("{} (step {})", s.model_file.display(), s.step),
        None => "none (no checkpoint was written yet)".to_string(),
    }
}

/// Runs stage three.
pub fn run(cfg: &TrainConfig, layout: &Layout, opts: &TrainOptions) -> Result<TrainSummary> {
    let loss_cfg = settings::loss_config(&cfg.loss)?;
    let method = settings::method(cfg)?;
    let files = TrainFiles::new(layout);
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
    let n = set.samples.len();
    let step_plan = StepPlan::new(&set.samples, cfg.batch_size, cfg.compose, cfg.seed)?;
    let steps_per_epoch = step_plan.steps_per_epoch();
    let total_steps = steps_per_epoch * cfg.epochs;

    // Fingerprint: the [train] settings that matter and every input file.
    let mut deps = vec![manifest_path.clone(), sample_text_path.clone()];
    for s in &set.samples {
        deps.push(s.frame.clone());
        deps.push(s.audio.clone());
    }
    if let Some(w) = &opts.visual_weights {
        deps.push(w.clone());
    }
    let config_hash = hash_json(&settings::result_relevant(cfg))?;
    let lock_path = files.lock();
    let checkpoints = files.checkpoints();
    let staleness = stage_lock::check(&lock_path, &config_hash, &deps)?;
    let interrupted = interrupted_run(&checkpoints, &lock_path)?;
    if interrupted.is_none() && staleness == Staleness::UpToDate && !opts.force && !opts.restart {
        let meta = ModelMeta::read(&files.meta())?;
        return Ok(TrainSummary {
            up_to_date: true,
            reason: staleness.to_string(),
            samples: n,
            skipped: set.skipped.len(),
            step: meta.step,
            total_steps,
            final_loss: meta.final_loss,
            model: files.model(),
            ..TrainSummary::default()
        });
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

    let device = settings::device(&cfg.device, "train")?;
    if cfg.torch_threads > 0 {
        tch::set_num_threads(cfg.torch_threads as i32);
    }
    if device.is_cuda() && cfg.cudnn_benchmark {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    tch::manual_seed(cfg.seed as i64);
    let mut vs = nn::VarStore::new(device);
    let model_cfg = ModelConfig {
        text_dim: set.text_dim as i64,
        freeze_visual: cfg.freeze_visual,
        freeze_audio: false,
        visual_output_stride: i64::from(cfg.visual_output_stride),
        visual_projection: cfg.visual_projection,
    };
    let mut model = OasslModel::new(vs.root(), &model_cfg)?;
    if cfg.autocast && !device.is_cuda() {
        // CPU mixed precision: bf16 trunks over f32 master weights; bf16 keeps fp32's range, so no loss scaling.
        model.set_compute(Compute {
            kind: Some(tch::Kind::BFloat16),
            channels_last: false,
        });
    }
    if let Some(w) = &opts.visual_weights {
        // Fails, naming the file and the tensor, unless every visual trunk tensor is in it with its shape.
        load_torchvision_trunk(&vs, "visual", w)?;
    }
    let autocast = cfg.autocast && device.is_cuda();
    let mut adam = Adam::new(
        &vs,
        AdamParams {
            lr: cfg.learning_rate,
            beta1: cfg.beta1,
            beta2: cfg.beta2,
            eps: cfg.adam_epsilon,
        },
        if autocast { 65536.0 } else { 1.0 },
    );

    let mut rows: Vec<StepRow> = Vec::new();
    let mut start_step = 0;
    let mut last_good: Option<CheckpointState> = None;
    let reason = match resume_from {
        Some(state) => {
            checkpoints.restore(&state, &mut vs, &mut adam)?;
            start_step = state.step;
            rows = step_log::read_rows(&files.steps())?;
            rows.retain(|r| r.step <= start_step);
            last_good = Some(state);
            format!("resumed at step {start_step}")
        }
        None => {
            checkpoints.clear()?;
            if opts.restart {
                "restarted".to_string()
            } else if opts.force {
                "forced".to_string()
            } else {
                staleness.to_string()
            }
        }
    };
    tracing::info!(
        "train ({reason}): {n} samples, {steps_per_epoch} steps/epoch, {total_steps} steps, method {}, device {device:?}",
        cfg.method
    );

    let end_step = opts
        .stop_after
        .map_or(total_steps, |s| s.min(total_steps))
        .max(start_step);
    let plan: Vec<(usize, Vec<usize>)> = (start_step..end_step)
        .map(|step| (step, step_plan.step_clips(step)))
        .collect();
    let cache = decoded_cache(&files, &set.samples, &digests, cfg)?;
    let samples = Arc::new(set.samples);
    let loader = BatchLoader::spawn(
        samples,
        Source::Cache(Arc::new(cache)),
        plan,
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
    )?;

    let progress = bar(total_steps, start_step);
    let state_at = |step: usize, adam: &Adam| CheckpointState {
        step,
        total_steps,
        config_hash: config_hash.clone(),
        inputs_hash: inputs_hash.clone(),
        text_dim: set.text_dim,
        adam_t: adam.t,
        loss_scale: adam.loss_scale,
        clean_steps: adam.clean_steps,
        rng_seed: cfg.seed,
        model_file: PathBuf::new(),
        optim_file: PathBuf::new(),
    };
    let run_started = Instant::now();
    let mut trained = 0usize;
    let mut step = start_step;
    let mut pending = PendingSteps::default();
    let mut waited = Instant::now();
    for batch in loader {
        let batch = batch?;
        let mut times = StepTimes {
            loader: waited.elapsed().as_secs_f64(),
            ..StepTimes::default()
        };
        let phase = Instant::now();
        let t = batch.tensors(device)?;
        let outputs = tch::autocast(autocast, || {
            model.forward(&t.frames, &t.spec, &t.foreground, &t.background, true)
        })?;
        let outputs = match t.fg_valid {
            Some(mask) => outputs.with_fg_valid(mask)?,
            None => outputs,
        };
        let terms = loss::total(&outputs, &loss_cfg, method)?;
        times.forward = phase.elapsed().as_secs_f64();
        let phase = Instant::now();
        adam.zero_grad();
        if autocast {
            (&terms.total * adam.loss_scale).backward();
        } else {
            terms.total.backward();
        }
        times.backward = phase.elapsed().as_secs_f64();
        let phase = Instant::now();
        let applied = adam.step(autocast)?;
        times.optimizer = phase.elapsed().as_secs_f64();
        step = batch.step + 1;
        trained += 1;
        let epoch = batch.step / steps_per_epoch;
        pending.push((step, epoch), &terms, times, applied, batch.len());
        let checkpoint_due = step % cfg.checkpoint_every == 0 && step < total_steps;
        if step % cfg.log_every == 0 || checkpoint_due || step == end_step {
            // The step's one host synchronisation: a checkpoint is never written after an unread loss.
            if let Err(e) = pending.flush(&mut rows, &last_good_text(&last_good)) {
                progress.abandon();
                return Err(e);
            }
            if let Some(r) = rows.last() {
                progress.set_message(format!(
                    "loss {:.4} | {:.1} samples/s",
                    r.total, r.samples_per_s
                ));
            }
        }
        progress.set_position(step as u64);
        if checkpoint_due {
            last_good = Some(checkpoints.save(&vs, &adam, state_at(step, &adam))?);
            step_log::write_rows(&files.steps(), &rows)?;
        }
        waited = Instant::now();
    }
    progress.finish_and_clear();
    let elapsed = run_started.elapsed().as_secs_f64();
    let total_samples = trained * cfg.batch_size;
    let final_loss = rows.last().map_or(f64::NAN, |r| r.total);
    let mut summary = TrainSummary {
        up_to_date: false,
        reason,
        samples: n,
        skipped: set.skipped.len(),
        start_step,
        step,
        total_steps,
        interrupted: step < total_steps,
        final_loss,
        samples_per_s: if elapsed > 0.0 {
            total_samples as f64 / elapsed
        } else {
            0.0
        },
        device: format!("{device:?}"),
        model: files.model(),
    };
    if summary.interrupted {
        return Ok(summary);
    }

    checkpoints.save(&vs, &adam, state_at(step, &adam))?;
    step_log::write_rows(&files.steps(), &rows)?;
    loss_curve::write(&files.curve(), &rows)?;
    oassl_pipeline::atomic::write_via_path(&files.model(), |tmp| {
        vs.save(tmp)
            .with_context(|| format!("saving weights to {}", tmp.display()))
    })?;
    let meta = ModelMeta {
        method: cfg.method.clone(),
        step,
        text_dim: model_cfg.text_dim as usize,
        image_size: cfg.image_size,
        audio_seconds: cfg.audio_seconds,
        freeze_visual: cfg.freeze_visual,
        visual_output_stride: model_cfg.visual_output_stride,
        visual_projection: model_cfg.visual_projection,
        loss: cfg.loss.clone(),
        final_loss,
    };
    oassl_pipeline::atomic::write_json(&files.meta(), &meta)?;
    let mut counts = BTreeMap::new();
    counts.insert("samples".to_string(), n as u64);
    counts.insert("skipped".to_string(), set.skipped.len() as u64);
    counts.insert("steps".to_string(), step as u64);
    let lock = StageLock {
        schema: LOCK_SCHEMA,
        stage: "train".into(),
        oassl_version: env!("CARGO_PKG_VERSION").into(),
        config_hash,
        deps: digests,
        outs: vec![
            FileDigest::of(&files.model())?,
            FileDigest::of(&files.meta())?,
        ],
        counts,
        finished_at: stage_lock::now_stamp(),
    };
    lock.write(&lock_path)?;
    summary.model = files.model();
    Ok(summary)
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

#[cfg(test)]
mod tests;
