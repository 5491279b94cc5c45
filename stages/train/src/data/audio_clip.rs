//! Audio: WAV → mono window → normalised log spectrogram `[1, 257, T]` (docs/method.md §1.2).
//!
//! Integer samples are scaled by `1 / (2^(bits−1) − 1)` (1/32767 for 16 bit, as NoPrior), float samples are
//! taken as they are, channels are averaged. Training uses the first `seconds` of the file, evaluation the centre;
//! a shorter file is tiled. The spectrogram is `log(S + 1e-7) / 12` with scipy's defaults at the file's rate.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::audio::spectrogram::{normalised_log_spectrogram, SpectrogramConfig};

/// Which part of the file is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioWindow {
    /// The first seconds (training, NoPrior).
    First,
    /// The centre seconds (evaluation, NoPrior).
    Centre,
}

/// A spectrogram ready for the batch: `n_bins × n_frames` values, bin-major.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioInput {
    /// Frequency bins (257).
    pub n_bins: usize,
    /// Time frames (276 for 3 s at 22,050 Hz).
    pub n_frames: usize,
    /// The values.
    pub data: Vec<f32>,
}

/// Reads the mono samples and sample rate of a WAV file.
pub fn read_wav(path: &Path) -> Result<(Vec<f32>, u32)> {
    let mut reader =
        hound::WavReader::open(path).with_context(|| format!("opening WAV {}", path.display()))?;
    let spec = reader.spec();
    let channels = spec.channels.max(1) as usize;
    let interleaved: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .collect::<std::result::Result<_, _>>()
            .with_context(|| format!("reading WAV samples of {}", path.display()))?,
        hound::SampleFormat::Int => {
            let scale = 1.0 / ((1i64 << (spec.bits_per_sample.clamp(2, 32) - 1)) - 1) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|v| v as f32 * scale))
                .collect::<std::result::Result<_, _>>()
                .with_context(|| format!("reading WAV samples of {}", path.display()))?
        }
    };
    let mono = interleaved
        .chunks(channels)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect::<Vec<_>>();
    if mono.is_empty() {
        bail!("WAV {} has no samples", path.display());
    }
    Ok((mono, spec.sample_rate))
}

/// The `n`-sample window of `samples`, tiled when the file is shorter.
pub fn window(samples: &[f32], n: usize, which: AudioWindow) -> Vec<f32> {
    if samples.is_empty() {
        return vec![0.0; n];
    }
    let start = match which {
        AudioWindow::First => 0,
        AudioWindow::Centre => samples.len().saturating_sub(n) / 2,
    };
    (0..n)
        .map(|i| samples[(start + i) % samples.len()])
        .collect()
}

/// WAV at `path` → the audio encoder's input for `seconds` of audio.
pub fn audio_input(path: &Path, seconds: f64, which: AudioWindow) -> Result<AudioInput> {
    let (samples, rate) = read_wav(path)?;
    samples_input(&samples, rate, seconds, which).with_context(|| format!("WAV {}", path.display()))
}

/// Mono `samples` at `rate` Hz → the audio encoder's input for `seconds` of audio.
pub fn samples_input(
    samples: &[f32],
    rate: u32,
    seconds: f64,
    which: AudioWindow,
) -> Result<AudioInput> {
    let n = (seconds * rate as f64).round() as usize;
    let cfg = SpectrogramConfig {
        sample_rate: rate as f64,
        ..SpectrogramConfig::default()
    };
    let spec = normalised_log_spectrogram(&window(samples, n, which), &cfg)
        .context("computing the spectrogram")?;
    if spec.n_frames == 0 {
        bail!("{seconds} s at {rate} Hz is shorter than one spectrogram window");
    }
    Ok(AudioInput {
        n_bins: spec.n_bins,
        n_frames: spec.n_frames,
        data: spec.data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_tile_short_files_and_centre() {
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(window(&s, 3, AudioWindow::First), vec![1.0, 2.0, 3.0]);
        assert_eq!(window(&s, 3, AudioWindow::Centre), vec![2.0, 3.0, 4.0]);
        assert_eq!(
            window(&s[..2], 5, AudioWindow::First),
            vec![1.0, 2.0, 1.0, 2.0, 1.0]
        );
    }

    #[test]
    fn three_seconds_at_22050_give_257_by_276() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 22_050,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..22_050 * 4 {
            w.write_sample(((i as f32 * 0.05).sin() * 8000.0) as i16)
                .unwrap();
        }
        w.finalize().unwrap();
        let a = audio_input(&path, 3.0, AudioWindow::Centre).unwrap();
        assert_eq!((a.n_bins, a.n_frames), (257, 276));
        let err = audio_input(&dir.path().join("none.wav"), 3.0, AudioWindow::First).unwrap_err();
        assert!(format!("{err:#}").contains("none.wav"));
    }
}
