//! Batches as plain buffers, built by rayon workers and handed to the training thread over a bounded channel.
//!
//! Workers never touch libtorch (its intra-op pool would fight rayon's); the training thread turns a [`Batch`]
//! into tensors with [`Batch::tensors`]. Each step's samples and augmentation depend only on the seed, the step
//! and the sample's position, so a resumed run sees exactly the batches the interrupted one would have seen.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{anyhow, bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tch::{Device, Kind, Tensor};

use oassl_pipeline::SampleId;

use super::audio_clip::{audio_input, read_wav, samples_input, AudioWindow};
use super::frames::{frame_tensor_data, read_frame, FrameTransform};
use super::samples::TrainSample;

/// splitmix64 finaliser: decorrelates seeds built from small integers.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The sample order of one epoch: a permutation of `0..n` fixed by `(seed, epoch)`.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed ^ mix(epoch as u64 + 1)));
    order.shuffle(&mut rng);
    order
}

/// One batch, as plain buffers.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The step this batch is for.
    pub step: usize,
    /// Its clips.
    pub ids: Vec<SampleId>,
    /// `[B, 3, S, S]` normalised frames.
    pub frames: Vec<f32>,
    /// S.
    pub image_size: usize,
    /// `[B, 1, F, T]` normalised log spectrograms.
    pub spec: Vec<f32>,
    /// F and T.
    pub spec_shape: (usize, usize),
    /// `[B, K_max, D]` foreground text vectors, zero-padded.
    pub foreground: Vec<f32>,
    /// `[B, K_max]`: which foreground rows are real.
    pub fg_valid: Vec<bool>,
    /// K_max.
    pub k_max: usize,
    /// `[B, D]` background text vectors.
    pub background: Vec<f32>,
    /// D.
    pub text_dim: usize,
}

/// A batch on the device.
#[derive(Debug)]
pub struct BatchTensors {
    /// `[B, 3, S, S]`.
    pub frames: Tensor,
    /// `[B, 1, F, T]`.
    pub spec: Tensor,
    /// `[B, K_max, D]`.
    pub foreground: Tensor,
    /// `[B, D]`.
    pub background: Tensor,
    /// `[B, K_max]` bool, `None` when every sample has K_max captions.
    pub fg_valid: Option<Tensor>,
}

impl Batch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for a batch without samples.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Creates the tensors on `device` (call on the training thread).
    pub fn tensors(&self, device: Device) -> Result<BatchTensors> {
        let b = self.len() as i64;
        let s = self.image_size as i64;
        let (f, t) = (self.spec_shape.0 as i64, self.spec_shape.1 as i64);
        let k = self.k_max as i64;
        let d = self.text_dim as i64;
        let to = |v: &[f32], shape: &[i64]| -> Result<Tensor> {
            Ok(Tensor::f_from_slice(v)?
                .f_view(shape)?
                .f_to_device(device)?)
        };
        let fg_valid = if self.fg_valid.iter().all(|&v| v) {
            None
        } else {
            Some(
                Tensor::f_from_slice(&self.fg_valid)?
                    .f_view([b, k])?
                    .f_to_device(device)?,
            )
        };
        Ok(BatchTensors {
            frames: to(&self.frames, &[b, 3, s, s])?,
            spec: to(&self.spec, &[b, 1, f, t])?,
            foreground: to(&self.foreground, &[b, k, d])?,
            background: to(&self.background, &[b, d])?,
            fg_valid,
        })
    }
}

/// How the loader builds each sample.
#[derive(Debug, Clone, Copy)]
pub struct LoaderSettings {
    /// Frame augmentation.
    pub transform: FrameTransform,
    /// Seconds of audio (the first seconds of each file).
    pub audio_seconds: f64,
    /// Seed of the augmentation.
    pub seed: u64,
    /// Rayon threads.
    pub workers: usize,
    /// Batches prepared ahead.
    pub prefetch: usize,
}

struct Item {
    frame: Vec<f32>,
    spec: Vec<f32>,
    spec_shape: (usize, usize),
}

fn load_train_item(
    sample: &TrainSample,
    settings: &LoaderSettings,
    step: usize,
    pos: usize,
) -> Result<Item> {
    let mut rng =
        ChaCha8Rng::seed_from_u64(mix(settings.seed ^ mix(((step as u64) << 20) | pos as u64)));
    let img = read_frame(&sample.frame).with_context(|| format!("sample {}", sample.id))?;
    let frame = frame_tensor_data(&img, settings.transform, &mut rng);
    let audio = audio_input(&sample.audio, settings.audio_seconds, AudioWindow::First)
        .with_context(|| format!("sample {}", sample.id))?;
    Ok(Item {
        frame,
        spec_shape: (audio.n_bins, audio.n_frames),
        spec: audio.data,
    })
}

/// Assembles a batch from loaded items; every sample must have the same spectrogram shape.
fn assemble(
    step: usize,
    samples: &[&TrainSample],
    items: Vec<Item>,
    image_size: usize,
) -> Result<Batch> {
    let spec_shape = items.first().map(|i| i.spec_shape).unwrap_or((0, 0));
    let k_max = samples
        .iter()
        .map(|s| s.foreground.len())
        .max()
        .unwrap_or(1);
    let text_dim = samples.first().map(|s| s.background.len()).unwrap_or(0);
    let mut batch = Batch {
        step,
        ids: Vec::with_capacity(samples.len()),
        frames: Vec::with_capacity(items.len() * 3 * image_size * image_size),
        image_size,
        spec: Vec::new(),
        spec_shape,
        foreground: Vec::with_capacity(samples.len() * k_max * text_dim),
        fg_valid: Vec::with_capacity(samples.len() * k_max),
        k_max,
        background: Vec::with_capacity(samples.len() * text_dim),
        text_dim,
    };
    for (sample, item) in samples.iter().zip(items) {
        if item.spec_shape != spec_shape {
            bail!(
                "sample {}: spectrogram of {} is {:?}, the rest of the batch {:?} (all WAVs need one sample rate)",
                sample.id,
                sample.audio.display(),
                item.spec_shape,
                spec_shape
            );
        }
        batch.ids.push(sample.id.clone());
        batch.frames.extend_from_slice(&item.frame);
        batch.spec.extend_from_slice(&item.spec);
        for k in 0..k_max {
            match sample.foreground.get(k) {
                Some(v) => {
                    batch.foreground.extend_from_slice(v);
                    batch.fg_valid.push(true);
                }
                None => {
                    batch.foreground.extend(std::iter::repeat_n(0.0, text_dim));
                    batch.fg_valid.push(false);
                }
            }
        }
        batch.background.extend_from_slice(&sample.background);
    }
    Ok(batch)
}

/// Batches of a run, produced on a background thread; iterate to receive them in step order.
pub struct BatchLoader {
    rx: Receiver<Result<Batch>>,
    handle: Option<JoinHandle<()>>,
}

impl BatchLoader {
    /// Starts building the batches of `plan` (`(step, sample indices)` in order).
    pub fn spawn(
        samples: Arc<Vec<TrainSample>>,
        plan: Vec<(usize, Vec<usize>)>,
        settings: LoaderSettings,
    ) -> Result<Self> {
        let (tx, rx) = sync_channel(settings.prefetch);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(settings.workers)
            .thread_name(|i| format!("oassl-loader-{i}"))
            .build()
            .context("starting the data-loading threads")?;
        let image_size = match settings.transform {
            FrameTransform::Train { crop, .. } => crop,
            FrameTransform::Test { size } => size,
        } as usize;
        let handle = std::thread::Builder::new()
            .name("oassl-batches".into())
            .spawn(move || {
                for (step, indices) in plan {
                    let picked: Vec<&TrainSample> = indices.iter().map(|&i| &samples[i]).collect();
                    let items = pool.install(|| {
                        picked
                            .par_iter()
                            .enumerate()
                            .map(|(pos, s)| load_train_item(s, &settings, step, pos))
                            .collect::<Result<Vec<_>>>()
                    });
                    let batch = items.and_then(|items| assemble(step, &picked, items, image_size));
                    let failed = batch.is_err();
                    if tx.send(batch).is_err() || failed {
                        return;
                    }
                }
            })
            .context("starting the batch thread")?;
        Ok(Self {
            rx,
            handle: Some(handle),
        })
    }
}

impl Iterator for BatchLoader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.rx.recv() {
            Ok(b) => Some(b),
            Err(_) => {
                if let Some(h) = self.handle.take() {
                    if h.join().is_err() {
                        return Some(Err(anyhow!("the batch thread panicked")));
                    }
                }
                None
            }
        }
    }
}

/// One evaluation sample's inputs.
#[derive(Debug, Clone)]
pub struct EvalItem {
    /// `[3, S, S]` normalised frame.
    pub frame: Vec<f32>,
    /// The centre-window spectrogram.
    pub spec: Vec<f32>,
    /// F and T.
    pub spec_shape: (usize, usize),
}

/// Loads a test sample: frame resized to `size × size`, the centre `seconds` of audio.
pub fn load_eval_item(
    id: &str,
    frame: &std::path::Path,
    audio: &std::path::Path,
    size: u32,
    seconds: f64,
) -> Result<EvalItem> {
    let img = read_frame(frame).with_context(|| format!("sample {id}"))?;
    let (samples, rate) = read_wav(audio).with_context(|| format!("sample {id}"))?;
    media_eval_item(&img, &samples, rate, size, seconds).with_context(|| format!("sample {id}"))
}

/// A decoded frame and mono audio at `rate` Hz as a test sample: frame resized to `size × size`, the centre
/// `seconds` of audio.
pub fn media_eval_item(
    img: &image::RgbImage,
    samples: &[f32],
    rate: u32,
    size: u32,
    seconds: f64,
) -> Result<EvalItem> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let frame = frame_tensor_data(img, FrameTransform::Test { size }, &mut rng);
    let a = samples_input(samples, rate, seconds, AudioWindow::Centre)?;
    Ok(EvalItem {
        frame,
        spec_shape: (a.n_bins, a.n_frames),
        spec: a.data,
    })
}

/// Stacks evaluation items into `[B, 3, S, S]` and `[B, 1, F, T]` tensors on `device`.
pub fn eval_tensors(items: &[EvalItem], size: u32, device: Device) -> Result<(Tensor, Tensor)> {
    let b = items.len() as i64;
    let s = size as i64;
    let (f, t) = items.first().map(|i| i.spec_shape).unwrap_or((0, 0));
    if items.iter().any(|i| i.spec_shape != (f, t)) {
        bail!("test WAVs give spectrograms of different shapes (all WAVs need one sample rate)");
    }
    let frames: Vec<f32> = items.iter().flat_map(|i| i.frame.iter().copied()).collect();
    let spec: Vec<f32> = items.iter().flat_map(|i| i.spec.iter().copied()).collect();
    let frames = Tensor::f_from_slice(&frames)?
        .f_view([b, 3, s, s])?
        .f_to_device(device)?;
    let spec = Tensor::f_from_slice(&spec)?
        .f_view([b, 1, f as i64, t as i64])?
        .f_to_device(device)?
        .to_kind(Kind::Float);
    Ok((frames, spec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(10, 3, 0);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_eq!(a, epoch_order(10, 3, 0));
        assert_ne!(a, epoch_order(10, 3, 1));
    }
}
