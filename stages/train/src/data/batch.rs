//! Batches as plain buffers, built by rayon workers and handed to the training thread over a bounded channel.
//!
//! Workers never touch libtorch (its intra-op pool would fight rayon's); a [`Batch`] becomes tensors on another
//! thread ([`super::staging`]). Each step's samples and augmentation depend only on the seed, the step
//! and the sample's position, so a resumed run sees exactly the batches the interrupted one would have seen.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use tch::{Device, Tensor};

use oassl_pipeline::SampleId;

use super::audio_clip::{audio_input, read_wav, samples_input, AudioWindow};
use super::decoded_cache::{train_resize, DecodedCache};
use super::frames::{frame_tensor_data, read_frame, FrameTransform};
use super::handover::Handover;
use super::samples::TrainSample;
use super::upload::f32_on_device;

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
    /// Its clips, `compose` consecutive ones per sample.
    pub ids: Vec<SampleId>,
    /// Clips per sample (see [`super::staging::HostBatch::to_device`]).
    pub compose: usize,
    /// `[B·N, S, S, 3]` RGB crops as bytes, one per clip; normalised on the device by
    /// [`super::staging::HostBatch::to_device`].
    pub frames: Vec<u8>,
    /// S.
    pub image_size: usize,
    /// `[B·N, 1, F, T]` normalised log spectrograms, f32 little-endian bytes (copied from the cache as they are).
    pub spec: Vec<u8>,
    /// F and T.
    pub spec_shape: (usize, usize),
    /// `[B·N, K_max, D]` foreground text vectors, zero-padded.
    pub foreground: Vec<f32>,
    /// `[B·N, K_max]`: which foreground rows are real.
    pub fg_valid: Vec<bool>,
    /// K_max.
    pub k_max: usize,
    /// `[B·N, D]` background text vectors.
    pub background: Vec<f32>,
    /// D.
    pub text_dim: usize,
}

/// A batch on the device.
#[derive(Debug)]
pub struct BatchTensors {
    /// `[B, 3, N·S, S]`.
    pub frames: Tensor,
    /// `[B, 1, F, T]`.
    pub spec: Tensor,
    /// `[B, N·K_max, D]`.
    pub foreground: Tensor,
    /// `[B, D]`.
    pub background: Tensor,
    /// `[B, N·K_max]` bool, `None` when every sample has N·K_max captions.
    pub fg_valid: Option<Tensor>,
}

impl Batch {
    /// Number of samples (composed ones count once).
    pub fn len(&self) -> usize {
        self.ids.len() / self.compose.max(1)
    }

    /// True for a batch without samples.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Where the loader reads each sample from.
#[derive(Clone)]
pub enum Source {
    /// Decode the JPEG and WAV, resize and compute the spectrogram every time (the path before the cache; kept
    /// as the benchmark's baseline).
    Files,
    /// The decoded-data cache: crop, flip and copy only.
    Cache(Arc<DecodedCache>),
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
    /// Clips per sample: a step's indices hold `compose` consecutive clips per sample.
    pub compose: usize,
}

/// The random draws of the sample at `pos` in the batch of `step`: crop x, crop y, flip, in that order for both
/// sources, so they give identical batches.
fn sample_rng(settings: &LoaderSettings, step: usize, pos: usize) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(mix(settings.seed ^ mix(((step as u64) << 20) | pos as u64)))
}

/// Builds the batch of `step` from `source`: frames and spectrograms are written in place, one slot per sample,
/// by the loader threads.
fn load_batch(
    samples: &[TrainSample],
    indices: &[usize],
    source: &Source,
    settings: &LoaderSettings,
    step: usize,
) -> Result<Batch> {
    let FrameTransform::Train { resize, crop, flip } = settings.transform else {
        bail!("the training loader needs a training transform");
    };
    let picked: Vec<&TrainSample> = indices.iter().map(|&i| &samples[i]).collect();
    match source {
        Source::Cache(cache) => {
            let mut batch =
                Batch::with_texts(step, &picked, settings, crop as usize, cache.spec_shape());
            let frame_len = (crop * crop * 3) as usize;
            let spec_len = batch.spec.len() / picked.len().max(1);
            batch
                .frames
                .par_chunks_mut(frame_len)
                .zip(batch.spec.par_chunks_mut(spec_len.max(1)))
                .zip(indices.par_iter().enumerate())
                .for_each(|((frame, spec), (pos, &i))| {
                    let mut rng = sample_rng(settings, step, pos);
                    let (h, w, bytes) = cache.frame(i);
                    random_crop(frame, bytes, (h, w), crop, flip, &mut rng);
                    spec.copy_from_slice(cache.spectrogram_bytes(i));
                });
            Ok(batch)
        }
        Source::Files => {
            let decoded = indices
                .par_iter()
                .enumerate()
                .map(|(pos, &i)| {
                    let sample = &samples[i];
                    let mut rng = sample_rng(settings, step, pos);
                    let img = read_frame(&sample.frame)
                        .with_context(|| format!("sample {}", sample.id))?;
                    let resized = train_resize(&img, resize, crop);
                    let (w, h) = resized.dimensions();
                    let mut frame = vec![0u8; (crop * crop * 3) as usize];
                    random_crop(
                        &mut frame,
                        resized.as_raw(),
                        (h as usize, w as usize),
                        crop,
                        flip,
                        &mut rng,
                    );
                    let audio =
                        audio_input(&sample.audio, settings.audio_seconds, AudioWindow::First)
                            .with_context(|| format!("sample {}", sample.id))?;
                    Ok((frame, audio))
                })
                .collect::<Result<Vec<_>>>()?;
            let spec_shape = decoded
                .first()
                .map_or((0, 0), |(_, a)| (a.n_bins, a.n_frames));
            let mut batch = Batch::with_texts(step, &picked, settings, crop as usize, spec_shape);
            let frame_len = (crop * crop * 3) as usize;
            let spec_len = spec_shape.0 * spec_shape.1 * 4;
            for (pos, (sample, (frame, audio))) in picked.iter().zip(decoded).enumerate() {
                if (audio.n_bins, audio.n_frames) != spec_shape {
                    bail!(
                        "sample {}: spectrogram of {} is {:?}, the rest of the batch {:?} (all WAVs need one sample \
                         rate)",
                        sample.id,
                        sample.audio.display(),
                        (audio.n_bins, audio.n_frames),
                        spec_shape
                    );
                }
                batch.frames[pos * frame_len..(pos + 1) * frame_len].copy_from_slice(&frame);
                let slot = &mut batch.spec[pos * spec_len..(pos + 1) * spec_len];
                for (dst, v) in slot.chunks_exact_mut(4).zip(&audio.data) {
                    dst.copy_from_slice(&v.to_le_bytes());
                }
            }
            Ok(batch)
        }
    }
}

/// Writes a `crop × crop` window of the `h × w` RGB image `src` at a random place into `out`, mirrored with
/// probability ½ if `flip` (draws: x, y, then the flip).
fn random_crop<R: Rng>(
    out: &mut [u8],
    src: &[u8],
    (h, w): (usize, usize),
    crop: u32,
    flip: bool,
    rng: &mut R,
) {
    let c = crop as usize;
    let x = rng.gen_range(0..=w - c);
    let y = rng.gen_range(0..=h - c);
    let mirrored = flip && rng.gen_bool(0.5);
    for (r, dst) in out.chunks_exact_mut(c * 3).enumerate() {
        let row = y + r;
        let line = &src[(row * w + x) * 3..(row * w + x + c) * 3];
        if mirrored {
            for (d, px) in dst.chunks_exact_mut(3).zip(line.chunks_exact(3).rev()) {
                d.copy_from_slice(px);
            }
        } else {
            dst.copy_from_slice(line);
        }
    }
}

impl Batch {
    /// A batch of `samples` (composed as `settings` says) with its text vectors filled in and zeroed frame and
    /// spectrogram buffers of the right size.
    fn with_texts(
        step: usize,
        samples: &[&TrainSample],
        settings: &LoaderSettings,
        image_size: usize,
        spec_shape: (usize, usize),
    ) -> Batch {
        let b = samples.len();
        let k_max = samples
            .iter()
            .map(|s| s.foreground.len())
            .max()
            .unwrap_or(1);
        let text_dim = samples.first().map_or(0, |s| s.background.len());
        let mut batch = Batch {
            step,
            ids: samples.iter().map(|s| s.id.clone()).collect(),
            compose: settings.compose,
            frames: vec![0; b * image_size * image_size * 3],
            image_size,
            spec: vec![0; b * spec_shape.0 * spec_shape.1 * 4],
            spec_shape,
            foreground: Vec::with_capacity(b * k_max * text_dim),
            fg_valid: Vec::with_capacity(b * k_max),
            k_max,
            background: Vec::with_capacity(b * text_dim),
            text_dim,
        };
        for sample in samples {
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
        batch
    }
}

/// Batches of a run, produced on a background thread; iterate to receive them in step order.
pub struct BatchLoader(Handover<Batch>);

impl BatchLoader {
    /// Starts building the batches of `plan` (`(step, sample indices)` in order) from `source`.
    pub fn spawn(
        samples: Arc<Vec<TrainSample>>,
        source: Source,
        plan: Vec<(usize, Vec<usize>)>,
        settings: LoaderSettings,
    ) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(settings.workers)
            .thread_name(|i| format!("oassl-loader-{i}"))
            .build()
            .context("starting the data-loading threads")?;
        let batches = plan.into_iter().map(move |(step, indices)| {
            pool.install(|| load_batch(&samples, &indices, &source, &settings, step))
        });
        Ok(Self(Handover::spawn(
            "oassl-batches",
            settings.prefetch,
            batches,
        )?))
    }
}

impl Iterator for BatchLoader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

/// One evaluation sample's inputs.
#[derive(Debug, Clone)]
pub struct EvalItem {
    /// `[3, tiles·S, S]` normalised frame.
    pub frame: Vec<f32>,
    /// Frames stacked vertically in `frame` (1, or a pair's frames).
    pub tiles: u32,
    /// The centre-window spectrogram.
    pub spec: Vec<f32>,
    /// F and T.
    pub spec_shape: (usize, usize),
}

/// Loads a test sample: each of its `tiles` frames resized to `size × size`, the centre `seconds` of audio.
pub fn load_eval_item(
    id: &str,
    frame: &std::path::Path,
    audio: &std::path::Path,
    size: u32,
    tiles: usize,
    seconds: f64,
) -> Result<EvalItem> {
    let img = read_frame(frame).with_context(|| format!("sample {id}"))?;
    let (samples, rate) = read_wav(audio).with_context(|| format!("sample {id}"))?;
    media_eval_item(&img, &samples, rate, size, tiles, seconds)
        .with_context(|| format!("sample {id}"))
}

/// A decoded frame and mono audio at `rate` Hz as a test sample: each of its `tiles` vertically stacked frames
/// resized to `size × size`, the centre `seconds` of audio.
pub fn media_eval_item(
    img: &image::RgbImage,
    samples: &[f32],
    rate: u32,
    size: u32,
    tiles: usize,
    seconds: f64,
) -> Result<EvalItem> {
    let tiles = u32::try_from(tiles.max(1)).context("frames per sample")?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let frame = frame_tensor_data(img, FrameTransform::Test { size, tiles }, &mut rng);
    let a = samples_input(samples, rate, seconds, AudioWindow::Centre)?;
    Ok(EvalItem {
        frame,
        tiles,
        spec_shape: (a.n_bins, a.n_frames),
        spec: a.data,
    })
}

/// Stacks evaluation items into `[B, 3, tiles·S, S]` and `[B, 1, F, T]` tensors on `device`.
pub fn eval_tensors(items: &[EvalItem], size: u32, device: Device) -> Result<(Tensor, Tensor)> {
    let b = items.len() as i64;
    let s = size as i64;
    let (f, t) = items.first().map(|i| i.spec_shape).unwrap_or((0, 0));
    if items.iter().any(|i| i.spec_shape != (f, t)) {
        bail!("test WAVs give spectrograms of different shapes (all WAVs need one sample rate)");
    }
    let tiles = items.first().map_or(1, |i| i.tiles);
    if items.iter().any(|i| i.tiles != tiles) {
        bail!("test samples of one batch have different numbers of frames");
    }
    let frames: Vec<f32> = items.iter().flat_map(|i| i.frame.iter().copied()).collect();
    let spec: Vec<f32> = items.iter().flat_map(|i| i.spec.iter().copied()).collect();
    let frames = f32_on_device(&frames, &[b, 3, i64::from(tiles) * s, s], device)?;
    let spec = f32_on_device(&spec, &[b, 1, f as i64, t as i64], device)?;
    Ok((frames, spec))
}

#[cfg(test)]
mod tests {
    use super::super::frames::{IMAGENET_MEAN, IMAGENET_STD};
    use super::super::staging::HostBatch;
    use super::*;

    /// Two samples of two clips each: frames stacked (clip 0 on top), spectrograms and background vectors
    /// averaged, the clips' foreground rows side by side with their padding masked.
    #[test]
    fn composed_samples_stack_frames_and_average_audio_and_background() {
        let (s, f, t, d) = (2usize, 1usize, 2usize, 2usize);
        let ids: Vec<SampleId> = (0..4)
            .map(|i| SampleId::parse(&format!("c{i}")).unwrap())
            .collect();
        let frames: Vec<u8> = (0..4)
            .flat_map(|c| std::iter::repeat_n(10 * c as u8, s * s * 3))
            .collect();
        let spec: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let batch = Batch {
            step: 0,
            ids,
            compose: 2,
            frames,
            image_size: s,
            spec,
            spec_shape: (f, t),
            // K_max = 2: clips 0 and 2 have one caption, clips 1 and 3 two.
            foreground: (0..16).map(|v| v as f32).collect(),
            fg_valid: vec![true, false, true, true, true, false, true, true],
            k_max: 2,
            background: vec![0.0, 2.0, 4.0, 6.0, 1.0, 1.0, 3.0, 5.0],
            text_dim: d,
        };
        assert_eq!(batch.len(), 2);
        let t = HostBatch::new(&batch, Device::Cpu)
            .unwrap()
            .to_device(Device::Cpu)
            .unwrap();
        assert_eq!(t.frames.size(), [2, 3, 4, 2]);
        // Rows 0-1 of sample 1 are clip 2 (bytes 20), rows 2-3 clip 3 (bytes 30).
        let red = |v: f64| (v / 255.0 - f64::from(IMAGENET_MEAN[0])) / f64::from(IMAGENET_STD[0]);
        let column = Vec::<f32>::try_from(t.frames.get(1).get(0).select(1, 0)).unwrap();
        for (got, want) in column
            .iter()
            .zip([red(20.0), red(20.0), red(30.0), red(30.0)])
        {
            assert!((f64::from(*got) - want).abs() < 1e-5, "{column:?}");
        }
        assert_eq!(t.spec.size(), [2, 1, 1, 2]);
        assert_eq!(
            Vec::<f32>::try_from(t.spec.flatten(0, -1)).unwrap(),
            [2.0, 3.0, 6.0, 7.0]
        );
        assert_eq!(t.foreground.size(), [2, 4, 2]);
        assert_eq!(
            Vec::<f32>::try_from(t.foreground.get(1).get(2)).unwrap(),
            [12.0, 13.0],
            "clip 3's first caption is sample 1's third row"
        );
        let valid = t.fg_valid.expect("padding rows are masked");
        assert_eq!(
            Vec::<bool>::try_from(valid.flatten(0, -1)).unwrap(),
            [true, false, true, true, true, false, true, true]
        );
        assert_eq!(
            Vec::<f32>::try_from(t.background.flatten(0, -1)).unwrap(),
            [2.0, 4.0, 2.0, 3.0]
        );
    }

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
