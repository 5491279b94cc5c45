//! Log power spectrogram of docs/method.md §1.2, computed in plain Rust.
//!
//! NoPrior calls `scipy.signal.spectrogram(x, fs, nperseg=512, noverlap=274)` and takes `log(S + 1e-7)`. With
//! scipy's defaults spelled out, for frame t (hop `H = nperseg - noverlap = 238`) and bin k:
//!
//! ```text
//! seg_t[n] = x[tH + n] - mean_n x[tH + n]                      (detrend='constant')
//! X_t[k]   = Σ_n w[n] seg_t[n] e^{-2πi kn/512}                 (w = periodic Tukey, α = 0.25)
//! S[k, t]  = c_k |X_t[k]|² / (fs Σ_n w[n]²)                    (scaling='density', one-sided:
//!                                                                c_k = 2 except at DC and Nyquist)
//! out      = log(S + 1e-7)
//! ```
//!
//! At 22,050 Hz a 3 s clip gives 257 bins × 276 frames. The FFT runs in f64 so the only error against scipy's
//! float64 result is the final rounding to f32 (checked in `tests/fixtures/make_spectrogram_fixture.py`).

use realfft::RealFftPlanner;
use serde::{Deserialize, Serialize};

/// Errors from [`log_spectrogram`].
#[derive(Debug, thiserror::Error)]
pub enum SpectrogramError {
    /// The clip is shorter than one analysis window.
    #[error("audio clip has {samples} samples, fewer than one window of {window}")]
    TooShort {
        /// Samples given.
        samples: usize,
        /// Window length needed.
        window: usize,
    },
    /// The configuration cannot describe a spectrogram.
    #[error("invalid spectrogram config: {0}")]
    Config(String),
}

/// Spectrogram parameters; `Default` is NoPrior's recipe (docs/method.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpectrogramConfig {
    /// Sample rate in Hz; enters the density scaling. 22,050 Hz (docs/method.md §11.13).
    pub sample_rate: f64,
    /// Window and FFT length in samples (`nperseg = 512`, NoPrior).
    pub window_len: usize,
    /// Samples shared by neighbouring windows (`noverlap = 274`, NoPrior), so the hop is 238.
    pub overlap: usize,
    /// Shape parameter of scipy's default Tukey window (0.25, scipy docs).
    pub tukey_alpha: f64,
    /// Added before the log (`1e-7`, NoPrior).
    pub log_floor: f64,
    /// Divisor applied by [`normalised_log_spectrogram`] (`Normalize(0, 12)`, NoPrior).
    pub normaliser: f64,
}

impl Default for SpectrogramConfig {
    fn default() -> Self {
        Self {
            sample_rate: 22_050.0,
            window_len: 512,
            overlap: 274,
            tukey_alpha: 0.25,
            log_floor: 1e-7,
            normaliser: 12.0,
        }
    }
}

impl SpectrogramConfig {
    /// Hop between frames in samples.
    pub fn hop(&self) -> usize {
        self.window_len - self.overlap
    }

    /// Number of one-sided frequency bins, `window_len / 2 + 1`.
    pub fn n_bins(&self) -> usize {
        self.window_len / 2 + 1
    }

    /// Number of frames scipy produces for `n_samples`: `(n - overlap) / hop`, 0 if shorter than a window.
    pub fn n_frames(&self, n_samples: usize) -> usize {
        if n_samples < self.window_len {
            0
        } else {
            (n_samples - self.overlap) / self.hop()
        }
    }

    fn validate(&self) -> Result<(), SpectrogramError> {
        if self.window_len < 2 || !self.window_len.is_multiple_of(2) {
            return Err(SpectrogramError::Config(format!(
                "window_len must be even and >= 2, got {}",
                self.window_len
            )));
        }
        if self.overlap >= self.window_len {
            return Err(SpectrogramError::Config(format!(
                "overlap {} must be smaller than window_len {}",
                self.overlap, self.window_len
            )));
        }
        if self.sample_rate.is_nan()
            || self.sample_rate <= 0.0
            || !(0.0..=1.0).contains(&self.tukey_alpha)
        {
            return Err(SpectrogramError::Config(
                "sample_rate must be > 0 and tukey_alpha in [0, 1]".into(),
            ));
        }
        Ok(())
    }
}

/// A spectrogram stored bin-major, like scipy's `(freq, time)` array.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrogram {
    /// Frequency bins (rows).
    pub n_bins: usize,
    /// Time frames (columns).
    pub n_frames: usize,
    /// `n_bins * n_frames` values, `data[bin * n_frames + frame]`.
    pub data: Vec<f32>,
}

impl Spectrogram {
    /// The encoder input for one clip, `[1, n_bins, n_frames]` f32 (stack clips for a batch).
    pub fn to_tensor(&self) -> tch::Tensor {
        tch::Tensor::from_slice(&self.data).view([1, self.n_bins as i64, self.n_frames as i64])
    }

    /// Value at (`bin`, `frame`).
    pub fn at(&self, bin: usize, frame: usize) -> f32 {
        self.data[bin * self.n_frames + frame]
    }
}

/// Periodic Tukey window as scipy's `get_window(('tukey', alpha), m)`: the symmetric window of length m + 1
/// with its last sample dropped.
pub fn tukey_window(m: usize, alpha: f64) -> Vec<f64> {
    let len = m + 1;
    if alpha <= 0.0 {
        return vec![1.0; m];
    }
    let span = (len - 1) as f64;
    let width = (alpha * span / 2.0).floor() as usize;
    (0..m)
        .map(|n| {
            let nf = n as f64;
            if n <= width {
                0.5 * (1.0 + (std::f64::consts::PI * (-1.0 + 2.0 * nf / alpha / span)).cos())
            } else if n >= len - width - 1 {
                0.5 * (1.0
                    + (std::f64::consts::PI * (-2.0 / alpha + 1.0 + 2.0 * nf / alpha / span)).cos())
            } else {
                1.0
            }
        })
        .collect()
}

/// `log(S + floor)` of `samples` (see the module doc for the formula); bins × frames.
pub fn log_spectrogram(
    samples: &[f32],
    cfg: &SpectrogramConfig,
) -> Result<Spectrogram, SpectrogramError> {
    cfg.validate()?;
    if samples.len() < cfg.window_len {
        return Err(SpectrogramError::TooShort {
            samples: samples.len(),
            window: cfg.window_len,
        });
    }
    let n = cfg.window_len;
    let n_bins = cfg.n_bins();
    let n_frames = cfg.n_frames(samples.len());
    let window = tukey_window(n, cfg.tukey_alpha);
    let scale = 1.0 / (cfg.sample_rate * window.iter().map(|w| w * w).sum::<f64>());
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(n);
    let mut input = fft.make_input_vec();
    let mut spectrum = fft.make_output_vec();
    let mut scratch = fft.make_scratch_vec();
    let mut data = vec![0f32; n_bins * n_frames];
    for frame in 0..n_frames {
        let segment = &samples[frame * cfg.hop()..frame * cfg.hop() + n];
        let mean = segment.iter().map(|&s| f64::from(s)).sum::<f64>() / n as f64;
        for ((slot, &s), w) in input.iter_mut().zip(segment).zip(&window) {
            *slot = (f64::from(s) - mean) * w;
        }
        fft.process_with_scratch(&mut input, &mut spectrum, &mut scratch)
            .map_err(|e| SpectrogramError::Config(e.to_string()))?;
        for (bin, x) in spectrum.iter().enumerate() {
            // One-sided density doubles every bin that has a mirror image (all but DC and Nyquist).
            let one_sided = if bin == 0 || bin == n_bins - 1 {
                1.0
            } else {
                2.0
            };
            let power = x.norm_sqr() * scale * one_sided;
            data[bin * n_frames + frame] = (power + cfg.log_floor).ln() as f32;
        }
    }
    Ok(Spectrogram {
        n_bins,
        n_frames,
        data,
    })
}

/// The audio encoder's input: [`log_spectrogram`] divided by `cfg.normaliser` (12).
pub fn normalised_log_spectrogram(
    samples: &[f32],
    cfg: &SpectrogramConfig,
) -> Result<Spectrogram, SpectrogramError> {
    let mut spec = log_spectrogram(samples, cfg)?;
    let inv = (1.0 / cfg.normaliser) as f32;
    spec.data.iter_mut().for_each(|v| *v *= inv);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same closed-form signal as `test_signal` in tests/fixtures/make_spectrogram_fixture.py.
    fn test_signal(n_samples: usize, fs: f64) -> Vec<f32> {
        let mut state: u64 = 12345;
        (0..n_samples)
            .map(|n| {
                state = (state * 1_103_515_245 + 12_345) % (1 << 31);
                let noise = state as f64 / (1u64 << 31) as f64 - 0.5;
                let t = n as f64 / fs;
                let tau = 2.0 * std::f64::consts::PI;
                let envelope = 1.0 + 0.5 * (tau * 0.7 * t).sin();
                let tones = 0.5 * (tau * 440.0 * t).sin() + 0.2 * (tau * 3001.5 * t + 0.7).sin();
                (envelope * tones + 0.05 * noise + 0.01) as f32
            })
            .collect()
    }

    fn fixture() -> serde_json::Value {
        let text = include_str!("../../tests/fixtures/spectrogram.json");
        serde_json::from_str(text).unwrap()
    }

    fn floats(v: &serde_json::Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    }

    fn assert_rel_close(got: f64, want: f64, what: &str) {
        let tol = 1e-4 * want.abs().max(1.0);
        assert!((got - want).abs() <= tol, "{what}: got {got}, scipy {want}");
    }

    #[test]
    fn shape_of_three_seconds_at_22050_is_257_by_276() {
        let cfg = SpectrogramConfig::default();
        assert_eq!(cfg.hop(), 238);
        assert_eq!(cfg.n_bins(), 257);
        assert_eq!(cfg.n_frames(66_150), 276);
    }

    #[test]
    fn tukey_window_matches_scipy() {
        let fx = fixture();
        let want = floats(&fx["window"]);
        let got = tukey_window(512, 0.25);
        assert_eq!(got.len(), want.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-12, "window[{i}]: {g} vs {w}");
        }
    }

    #[test]
    fn short_clip_matches_scipy_everywhere() {
        let fx = fixture();
        let cfg = SpectrogramConfig::default();
        let x = test_signal(2000, cfg.sample_rate);
        let spec = log_spectrogram(&x, &cfg).unwrap();
        let want = floats(&fx["short"]["log_spec"]);
        assert_eq!((spec.n_bins, spec.n_frames), (257, 7));
        for (i, (g, w)) in spec.data.iter().zip(&want).enumerate() {
            assert_rel_close(f64::from(*g), *w, &format!("entry {i}"));
        }
    }

    #[test]
    fn three_second_clip_matches_scipy_on_sampled_rows_and_columns() {
        let fx = fixture();
        let cfg = SpectrogramConfig::default();
        let x = test_signal(66_150, cfg.sample_rate);
        let spec = log_spectrogram(&x, &cfg).unwrap();
        assert_eq!((spec.n_bins, spec.n_frames), (257, 276));
        let clip = &fx["clip"];
        for (frame, values) in clip["frames"].as_object().unwrap() {
            let f: usize = frame.parse().unwrap();
            for (bin, w) in floats(values).iter().enumerate() {
                assert_rel_close(
                    f64::from(spec.at(bin, f)),
                    *w,
                    &format!("bin {bin} frame {f}"),
                );
            }
        }
        for (bin, values) in clip["bins"].as_object().unwrap() {
            let b: usize = bin.parse().unwrap();
            for (f, w) in floats(values).iter().enumerate() {
                assert_rel_close(f64::from(spec.at(b, f)), *w, &format!("bin {b} frame {f}"));
            }
        }
    }

    #[test]
    fn normalised_divides_by_twelve() {
        let cfg = SpectrogramConfig::default();
        let x = test_signal(1000, cfg.sample_rate);
        let raw = log_spectrogram(&x, &cfg).unwrap();
        let norm = normalised_log_spectrogram(&x, &cfg).unwrap();
        for (r, n) in raw.data.iter().zip(&norm.data) {
            assert!((r / 12.0 - n).abs() < 1e-6);
        }
        let t = norm.to_tensor();
        assert_eq!(t.size(), [1, 257, norm.n_frames as i64]);
        assert_eq!(
            f64::try_from(t.get(0).get(3).get(1)).unwrap(),
            f64::from(norm.at(3, 1))
        );
    }

    #[test]
    fn too_short_clip_is_an_error() {
        let err = log_spectrogram(&[0.0; 100], &SpectrogramConfig::default()).unwrap_err();
        assert!(matches!(
            err,
            SpectrogramError::TooShort {
                samples: 100,
                window: 512
            }
        ));
    }
}
