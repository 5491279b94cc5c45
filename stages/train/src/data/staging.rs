//! Batches staged as host tensors on their own thread, so the training thread only queues copies.
//!
//! Turning a [`Batch`]'s buffers into tensors is a copy of every buffer (tens of megabytes at 224 px and 3 s of
//! audio), and on CUDA another into page-locked memory for a non-blocking upload. Done on the training thread
//! those copies sit between two steps and, whenever the host is the slower side, leave the device idle.
//! [`StagedBatches`] does them on a thread of its own, one batch ahead, and copies each buffer only once:
//! straight from the buffer into pinned memory.

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use super::batch::{Batch, BatchLoader, BatchTensors};
use super::frames::{IMAGENET_MEAN, IMAGENET_STD};
use super::handover::Handover;
use super::upload::{f32_on_device, host_f32, host_tensor, to_device_async};

/// A batch's buffers as host tensors, pinned when the device is CUDA; [`HostBatch::to_device`] uploads them.
#[derive(Debug)]
pub struct HostBatch {
    /// The step this batch is for.
    pub step: usize,
    /// Samples (composed ones count once).
    pub samples: usize,
    /// Clips per sample.
    compose: i64,
    /// `[B, N·S, S, 3]` u8 RGB crops.
    frames: Tensor,
    /// `[B·N, 1, F, T]` log spectrograms.
    spec: Tensor,
    /// `[B, N·K_max, D]`.
    foreground: Tensor,
    /// `[B·N, D]`.
    background: Tensor,
    /// `[B, N·K_max]` bool, `None` when every row is real.
    fg_valid: Option<Tensor>,
}

impl HostBatch {
    /// Stages `batch` for `device`; fails naming the sample if one has no foreground text vector.
    pub fn new(batch: &Batch, device: Device) -> Result<Self> {
        let clips = batch.ids.len() as i64;
        let n = batch.compose.max(1) as i64;
        let b = clips / n;
        let s = batch.image_size as i64;
        let (f, t) = (batch.spec_shape.0 as i64, batch.spec_shape.1 as i64);
        let k = batch.k_max as i64;
        let d = batch.text_dim as i64;
        if let Some(i) = batch
            .fg_valid
            .chunks(batch.k_max.max(1))
            .position(|row| !row.contains(&true))
        {
            bail!("sample {}: no foreground text vector", batch.ids[i]);
        }
        let fg_valid = if batch.fg_valid.iter().all(|&v| v) {
            None
        } else {
            let bytes: Vec<u8> = batch.fg_valid.iter().map(|&v| u8::from(v)).collect();
            Some(host_tensor(&bytes, &[b, n * k], Kind::Bool, device)?)
        };
        Ok(Self {
            step: batch.step,
            samples: batch.len(),
            compose: n,
            frames: host_tensor(&batch.frames, &[b, n * s, s, 3], Kind::Uint8, device)?,
            spec: host_tensor(&batch.spec, &[clips, 1, f, t], Kind::Float, device)?,
            foreground: host_f32(&batch.foreground, &[b, n * k, d], device)?,
            background: host_f32(&batch.background, &[clips, d], device)?,
            fg_valid,
        })
    }

    /// The batch on `device` (non-blocking copies from pinned memory on CUDA).
    ///
    /// With `compose = N` the N consecutive clips of each sample become one (NoPrior's `concat_num`): their
    /// frames stacked vertically (the `[N, S, S, 3]` bytes already are the `[N·S, S, 3]` image), their
    /// log-spectrograms averaged, their foreground captions side by side (`N·K_max` rows, padding masked) and
    /// the mean of their background vectors as the background. The background is a mean of vectors rather
    /// than the embedding of a joined caption because stage three has no text encoder and compositions are
    /// drawn anew every epoch.
    pub fn to_device(&self, device: Device) -> Result<BatchTensors> {
        let n = self.compose;
        let spec = to_device_async(&self.spec, device)?;
        let background = to_device_async(&self.background, device)?;
        let (spec, background) = if n == 1 {
            (spec, background)
        } else {
            let (clips, f, t) = (spec.size()[0], spec.size()[2], spec.size()[3]);
            let d = background.size()[1];
            (
                spec.f_view([clips / n, n, 1, f, t])?
                    .f_mean_dim(1, false, Kind::Float)?,
                background
                    .f_view([clips / n, n, d])?
                    .f_mean_dim(1, false, Kind::Float)?,
            )
        };
        Ok(BatchTensors {
            frames: normalised_frames(&to_device_async(&self.frames, device)?, device)?,
            spec,
            foreground: to_device_async(&self.foreground, device)?,
            background,
            fg_valid: self
                .fg_valid
                .as_ref()
                .map(|v| to_device_async(v, device))
                .transpose()?,
        })
    }
}

/// `[B, H, W, 3]` u8 on `device` → `[B, 3, H, W]` ImageNet-normalised f32: `(x / 255 − μ) / σ` in f32, the same
/// operations in the same order as [`super::frames::normalise`], so both give identical values.
pub(super) fn normalised_frames(bytes: &Tensor, device: Device) -> Result<Tensor> {
    // Through pinned memory like the batch: a plain copy of even three floats would make the host wait for
    // the device.
    let stats = |v: [f32; 3]| f32_on_device(&v, &[1, 3, 1, 1], device);
    let x = bytes.f_permute([0, 3, 1, 2])?.f_to_kind(Kind::Float)?;
    Ok(((x / 255.0) - stats(IMAGENET_MEAN)?)
        .f_div(&stats(IMAGENET_STD)?)?
        .f_contiguous()?)
}

/// The loader's batches staged for a device on a thread of their own, one batch ahead of the training thread.
pub struct StagedBatches(Handover<HostBatch>);

impl StagedBatches {
    /// Stages the batches of `loader` for `device`.
    pub fn spawn(loader: BatchLoader, device: Device) -> Result<Self> {
        let staged = loader.map(move |batch| batch.and_then(|b| HostBatch::new(&b, device)));
        Ok(Self(Handover::spawn("oassl-staging", 1, staged)?))
    }
}

impl Iterator for StagedBatches {
    type Item = Result<HostBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::data::batch::{LoaderSettings, Source};
    use crate::data::decoded_cache::tests::clips;
    use crate::data::FrameTransform;

    #[test]
    fn frames_normalised_on_the_device_equal_the_host_normalisation() {
        let img =
            image::RgbImage::from_fn(5, 5, |x, y| image::Rgb([(x * 50) as u8, (y * 60) as u8, 7]));
        let host = super::super::frames::normalise(&img);
        let bytes = host_tensor(img.as_raw(), &[1, 5, 5, 3], Kind::Uint8, Device::Cpu).unwrap();
        let device = normalised_frames(&bytes, Device::Cpu).unwrap();
        assert_eq!(device.size(), [1, 3, 5, 5]);
        let device = Vec::<f32>::try_from(device.flatten(0, -1)).unwrap();
        assert_eq!(
            host.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            device.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    fn loader(samples: &[crate::data::TrainSample], plan: &[(usize, Vec<usize>)]) -> BatchLoader {
        let settings = LoaderSettings {
            transform: FrameTransform::Train {
                resize: 35,
                crop: 32,
                flip: true,
            },
            audio_seconds: 0.5,
            seed: 3,
            workers: 2,
            prefetch: 1,
            compose: 1,
        };
        BatchLoader::spawn(
            Arc::new(samples.to_vec()),
            Source::Files,
            plan.to_vec(),
            settings,
        )
        .unwrap()
    }

    /// The staging thread hands over every batch, in order, with the tensors staging it on this thread gives.
    #[test]
    fn staged_batches_arrive_in_order_with_the_tensors_of_their_batch() {
        let dir = tempfile::tempdir().unwrap();
        let samples = clips(dir.path(), 4);
        let plan = vec![(0, vec![0, 1]), (3, vec![2, 3]), (5, vec![3, 1])];
        let direct: Vec<(usize, usize, BatchTensors)> = loader(&samples, &plan)
            .map(|b| {
                let b = b.unwrap();
                let t = HostBatch::new(&b, Device::Cpu).unwrap();
                (b.step, b.len(), t.to_device(Device::Cpu).unwrap())
            })
            .collect();
        let staged: Vec<(usize, usize, BatchTensors)> =
            StagedBatches::spawn(loader(&samples, &plan), Device::Cpu)
                .unwrap()
                .map(|h| {
                    let h = h.unwrap();
                    (h.step, h.samples, h.to_device(Device::Cpu).unwrap())
                })
                .collect();
        let steps = |v: &[(usize, usize, BatchTensors)]| -> Vec<(usize, usize)> {
            v.iter().map(|(s, n, _)| (*s, *n)).collect()
        };
        assert_eq!(steps(&staged), [(0, 2), (3, 2), (5, 2)]);
        assert_eq!(steps(&staged), steps(&direct));
        for ((_, _, a), (_, _, b)) in staged.iter().zip(&direct) {
            assert_eq!(a.frames.size(), [2, 3, 32, 32]);
            assert!(a.frames.equal(&b.frames) && a.spec.equal(&b.spec));
            assert!(a.foreground.equal(&b.foreground) && a.background.equal(&b.background));
            assert!(a.fg_valid.is_none() && b.fg_valid.is_none());
        }
    }

    /// A batch the loader cannot build reaches the training thread as an error naming the file, and the
    /// stream ends there.
    #[test]
    fn a_loader_error_is_handed_over_and_ends_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let samples = clips(dir.path(), 3);
        std::fs::remove_file(&samples[2].audio).unwrap();
        let plan = vec![(0, vec![0, 1]), (1, vec![1, 2]), (2, vec![0, 1])];
        let mut staged = StagedBatches::spawn(loader(&samples, &plan), Device::Cpu).unwrap();
        assert_eq!(staged.next().unwrap().unwrap().step, 0);
        let err = format!("{:#}", staged.next().unwrap().unwrap_err());
        assert!(err.contains("2.wav"), "{err}");
        assert!(staged.next().is_none());
    }
}
