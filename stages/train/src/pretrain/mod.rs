//! `oassl pretrain`: trains the visual ResNet-18 to name the objects of the AVS-Synth pretraining split, our
//! stand-in for the ImageNet weights every peer starts from, and writes it in torchvision's layout for
//! `[train] visual_weights`.
//!
//! Reads `dataset/pretrain/labels.csv` and its frames (written by `oassl synth`), refuses a pretraining split
//! that shares a scene with the manifest's clips, and writes under `pretrain/`: `visual_resnet18.safetensors`
//! (torchvision names, `fc` = the per-pixel classifier, see [`classifier`]), `pretrain.json`
//! ([`PretrainSummary`]) and `stage.lock.json` last. A rerun with the same `[pretrain]` and inputs does nothing.

pub mod classifier;
pub mod frame_bank;
pub mod overlap;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use oassl_pipeline::config::PretrainConfig;
use oassl_pipeline::fingerprint::hash_json;
use oassl_pipeline::stage_lock::{self, StageLock, Staleness};
use oassl_pipeline::{Layout, SampleId};

use crate::model::save_weights;
use crate::stage::adam::{Adam, AdamParams};
use crate::stage::settings;
use classifier::ObjectClassifier;
use frame_bank::FrameBank;

/// File name of the pretrained trunk under `pretrain/`.
pub const WEIGHTS_FILE: &str = "visual_resnet18.safetensors";

/// What a run did; also written as `pretrain/pretrain.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PretrainSummary {
    /// Nothing changed; the existing weights were kept.
    pub up_to_date: bool,
    /// Why it ran.
    pub reason: String,
    /// Class names, in `fc` row order.
    pub classes: Vec<String>,
    /// Frames trained on and held out.
    pub train_frames: usize,
    /// Frames held out to measure the classifier.
    pub held_out_frames: usize,
    /// Steps trained.
    pub steps: usize,
    /// Mean loss of the last 20 steps.
    pub final_loss: f64,
    /// Held-out frames whose predicted class set (sigmoid > 0.5) equals the true one.
    pub held_out_exact: f64,
    /// Held-out per-class decisions that are right.
    pub held_out_label_accuracy: f64,
    /// Training throughput.
    pub samples_per_s: f64,
    /// The written weights.
    pub weights: PathBuf,
}

/// One labelled pretraining frame.
struct LabelledFrame {
    id: SampleId,
    classes: Vec<String>,
}

/// Runs `oassl pretrain`.
pub fn run(cfg: &PretrainConfig, layout: &Layout, force: bool) -> Result<PretrainSummary> {
    let dir = layout.stage_dir("pretrain");
    let weights = dir.join(WEIGHTS_FILE);
    let report = dir.join("pretrain.json");
    let frames = read_labels(layout)?;
    overlap::refuse_shared_scenes(layout, frames.iter().map(|f| &f.id))?;
    let paths: Vec<PathBuf> = frames
        .iter()
        .map(|f| layout.pretrain_frame(&f.id))
        .collect();
    let mut deps = vec![layout.pretrain_labels()];
    deps.extend(paths.iter().cloned());
    let config_hash = hash_json(&PretrainConfig {
        torch_threads: 0,
        ..cfg.clone()
    })?;
    let lock_path = layout.stage_lock("pretrain");
    let staleness = stage_lock::check(&lock_path, &config_hash, &deps)?;
    if staleness == Staleness::UpToDate && !force {
        return previous_summary(&report);
    }
    let reason = if force {
        "forced".to_string()
    } else {
        staleness.to_string()
    };

    let classes = class_list(&frames);
    let targets = multi_hot(&frames, &classes);
    let resize = (f64::from(cfg.image_size) * 246.0 / 224.0).round() as u32;
    let bank = FrameBank::decode(&paths, resize)?;
    let (train_idx, held_idx) = held_out_split(cfg, frames.len())?;

    let device = settings::device(&cfg.device, "pretrain")?;
    if cfg.torch_threads > 0 {
        tch::set_num_threads(cfg.torch_threads as i32);
    }
    tch::manual_seed(cfg.seed as i64);
    let vs = nn::VarStore::new(device);
    let layer4_stride = if cfg.visual_output_stride == 16 { 1 } else { 2 };
    let net = ObjectClassifier::new(&vs.root(), classes.len() as i64, layer4_stride)?;
    let started = Instant::now();
    let losses = train_loop(cfg, &net, &vs, &bank, &targets, &train_idx, device)?;
    let seconds = started.elapsed().as_secs_f64();
    let (exact, label_acc) = held_out_quality(cfg, &net, &bank, &targets, &held_idx, device)?;

    save_weights(&vs, &weights)?;
    let tail = &losses[losses.len().saturating_sub(20)..];
    let summary = PretrainSummary {
        up_to_date: false,
        reason,
        classes,
        train_frames: train_idx.len(),
        held_out_frames: held_idx.len(),
        steps: losses.len(),
        final_loss: tail.iter().sum::<f64>() / tail.len().max(1) as f64,
        held_out_exact: exact,
        held_out_label_accuracy: label_acc,
        samples_per_s: (losses.len() * cfg.batch_size) as f64 / seconds.max(1e-9),
        weights: weights.clone(),
    };
    oassl_pipeline::atomic::write_json(&report, &summary)?;
    StageLock::finished(
        "pretrain",
        config_hash,
        stage_lock::digests(&deps)?,
        &[&weights, &report],
        &[("frames", frames.len()), ("steps", losses.len())],
    )?
    .write(&lock_path)?;
    Ok(summary)
}

/// The summary of the run that made the current weights, marked up to date.
fn previous_summary(report: &Path) -> Result<PretrainSummary> {
    let text = std::fs::read(report)
        .with_context(|| format!("reading {} (rerun with --force)", report.display()))?;
    let mut summary: PretrainSummary = serde_json::from_slice(&text)
        .with_context(|| format!("parsing {} (rerun with --force)", report.display()))?;
    summary.up_to_date = true;
    summary.reason = Staleness::UpToDate.to_string();
    Ok(summary)
}

/// Training and held-out frame indices; too few training frames for one batch is refused.
fn held_out_split(cfg: &PretrainConfig, frames: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let (train_idx, held_idx) = split_held_out(frames, cfg.held_out, cfg.seed);
    if train_idx.len() < cfg.batch_size {
        bail!(
            "[pretrain] batch_size = {} but only {} pretraining frames are left after holding out {}: raise \
             [synth] pretrain or lower batch_size",
            cfg.batch_size,
            train_idx.len(),
            held_idx.len()
        );
    }
    Ok((train_idx, held_idx))
}

/// Reads `dataset/pretrain/labels.csv` (`id,classes`, `|`-separated); errors name the file and line.
fn read_labels(layout: &Layout) -> Result<Vec<LabelledFrame>> {
    let path = layout.pretrain_labels();
    if !path.exists() {
        bail!(
            "pretraining labels {} not found: run `make data` (oassl synth writes the pretraining split)",
            path.display()
        );
    }
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut frames = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: line {}", path.display(), line + 2))?;
        let (Some(id), Some(classes)) = (record.get(0), record.get(1)) else {
            bail!(
                "{}: line {}: expected `id,classes`",
                path.display(),
                line + 2
            );
        };
        let id = SampleId::parse(id)
            .with_context(|| format!("{}: line {}: sample id {id:?}", path.display(), line + 2))?;
        let classes: Vec<String> = classes
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect();
        if classes.is_empty() {
            bail!("{}: line {}: `{id}` has no class", path.display(), line + 2);
        }
        frames.push(LabelledFrame { id, classes });
    }
    if frames.is_empty() {
        bail!(
            "{}: no pretraining frames ([synth] pretrain = 0?)",
            path.display()
        );
    }
    Ok(frames)
}

fn class_list(frames: &[LabelledFrame]) -> Vec<String> {
    let mut classes: Vec<String> = frames.iter().flat_map(|f| f.classes.clone()).collect();
    classes.sort();
    classes.dedup();
    classes
}

fn multi_hot(frames: &[LabelledFrame], classes: &[String]) -> Vec<Vec<f32>> {
    frames
        .iter()
        .map(|f| {
            classes
                .iter()
                .map(|c| if f.classes.contains(c) { 1.0 } else { 0.0 })
                .collect()
        })
        .collect()
}

/// A seeded split of `0..n` into training and held-out indices.
fn split_held_out(n: usize, share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x6865_6c64));
    let held = ((n as f64) * share).round() as usize;
    let held_idx = order[..held.min(n)].to_vec();
    (order[held.min(n)..].to_vec(), held_idx)
}

/// A batch of frame inputs and targets on `device`.
fn batch_tensors<R: rand::Rng>(
    bank: &FrameBank,
    targets: &[Vec<f32>],
    indices: &[usize],
    crop: u32,
    mut rng: Option<&mut R>,
    device: Device,
) -> Result<(Tensor, Tensor)> {
    let mut pixels = Vec::with_capacity(indices.len() * 3 * (crop * crop) as usize);
    let mut labels = Vec::with_capacity(indices.len() * targets.first().map_or(0, Vec::len));
    for &i in indices {
        pixels.extend(bank.input(i, crop, rng.as_deref_mut()));
        labels.extend_from_slice(&targets[i]);
    }
    let b = indices.len() as i64;
    let c = crop as i64;
    let frames = Tensor::f_from_slice(&pixels)?
        .f_view([b, 3, c, c])?
        .f_to_device(device)?;
    let labels = Tensor::f_from_slice(&labels)?
        .f_view([b, -1])?
        .f_to_device(device)?;
    Ok((frames, labels))
}

/// Adam steps over seeded epochs of the training frames; returns the loss of every step.
fn train_loop(
    cfg: &PretrainConfig,
    net: &ObjectClassifier,
    vs: &nn::VarStore,
    bank: &FrameBank,
    targets: &[Vec<f32>],
    train_idx: &[usize],
    device: Device,
) -> Result<Vec<f64>> {
    let mut adam = Adam::new(
        vs,
        AdamParams {
            lr: cfg.learning_rate,
            ..AdamParams::default()
        },
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let per_epoch = train_idx.len() / cfg.batch_size;
    let mut order = train_idx.to_vec();
    let bar = oassl_pipeline::progress::bar("pretrain", cfg.steps);
    let mut losses = Vec::with_capacity(cfg.steps);
    for step in 0..cfg.steps {
        if step % per_epoch == 0 {
            order.shuffle(&mut rng);
        }
        let offset = (step % per_epoch) * cfg.batch_size;
        let picked = &order[offset..offset + cfg.batch_size];
        let (frames, labels) = batch_tensors(
            bank,
            targets,
            picked,
            cfg.image_size,
            Some(&mut rng),
            device,
        )?;
        let loss = ObjectClassifier::loss(&net.forward_t(&frames, true)?, &labels);
        let grads = adam.backward(&loss)?;
        adam.step(grads)?;
        let value = f64::try_from(loss.to_kind(Kind::Double))?;
        if !value.is_finite() {
            bar.abandon();
            bail!(
                "pretrain step {}: the loss is not finite ({value})",
                step + 1
            );
        }
        losses.push(value);
        bar.set_position(step as u64 + 1);
        bar.set_message(format!("loss {value:.4}"));
    }
    bar.finish_and_clear();
    Ok(losses)
}

/// Exact-set accuracy and per-class accuracy of the classifier on the held-out frames (centre crops).
fn held_out_quality(
    cfg: &PretrainConfig,
    net: &ObjectClassifier,
    bank: &FrameBank,
    targets: &[Vec<f32>],
    held_idx: &[usize],
    device: Device,
) -> Result<(f64, f64)> {
    if held_idx.is_empty() {
        return Ok((f64::NAN, f64::NAN));
    }
    let _guard = tch::no_grad_guard();
    let (mut exact, mut right, mut decisions) = (0usize, 0usize, 0usize);
    for chunk in held_idx.chunks(cfg.batch_size) {
        let (frames, labels) =
            batch_tensors::<ChaCha8Rng>(bank, targets, chunk, cfg.image_size, None, device)?;
        let predicted = net.forward_t(&frames, false)?.gt(0.0).to_kind(Kind::Float);
        let agree = predicted.eq_tensor(&labels).to_kind(Kind::Int64);
        let per_frame = Vec::<i64>::try_from(agree.sum_dim_intlist(1i64, false, None::<Kind>))?;
        let classes = labels.size()[1] as usize;
        exact += per_frame.iter().filter(|&&n| n as usize == classes).count();
        right += per_frame.iter().sum::<i64>() as usize;
        decisions += per_frame.len() * classes;
    }
    Ok((
        exact as f64 / held_idx.len() as f64,
        right as f64 / decisions.max(1) as f64,
    ))
}

#[cfg(test)]
mod tests;
