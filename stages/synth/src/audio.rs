//! Audio of a scene: the mixture of its sounding objects' sounds plus a little noise.

use std::f64::consts::TAU;

use rand::{Rng, SeedableRng};

use crate::catalogue::{SoundSignature, CATALOGUE};
use crate::scene::Scene;

/// One class's sound over `n` samples at `rate` Hz; `phase` shifts the modulation so two clips of a class differ.
pub fn class_sound(sig: &SoundSignature, rate: u32, n: usize, phase: f64) -> Vec<f32> {
    let rate = f64::from(rate);
    let nyquist = rate / 2.0;
    let harmonics: Vec<(f64, f64)> = (1..=12)
        .filter(|k| !sig.odd_only || k % 2 == 1)
        .map(|k| (sig.f0 * f64::from(k), f64::from(k).powf(-sig.rolloff)))
        .filter(|(f, _)| *f < nyquist * 0.9)
        .collect();
    let norm: f64 = harmonics.iter().map(|(_, a)| a).sum::<f64>().max(1e-9);
    (0..n)
        .map(|i| {
            let t = i as f64 / rate;
            let tone: f64 = harmonics
                .iter()
                .map(|(f, a)| a * (TAU * f * t + phase * f / sig.f0).sin())
                .sum::<f64>()
                / norm;
            let envelope = if sig.percussive {
                // A strike every 1/modulation_hz seconds, decaying quickly.
                let period = 1.0 / sig.modulation_hz.max(0.5);
                let since = (t + phase * period / TAU).rem_euclid(period);
                (-since * 12.0).exp()
            } else if sig.modulation_hz > 0.0 {
                0.75 + 0.25 * (TAU * sig.modulation_hz * t + phase).sin()
            } else {
                1.0
            };
            (tone * envelope) as f32
        })
        .collect()
}

/// The scene's audio: `seconds` of mono samples at `rate` Hz, peak-normalised to 0.8 before noise.
pub fn scene_audio(scene: &Scene, rate: u32, seconds: f64, noise_level: f64) -> Vec<f32> {
    let n = (seconds * f64::from(rate)).round() as usize;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(scene.audio_seed);
    let mut mix = vec![0f32; n];
    for obj in scene.objects.iter().filter(|o| o.sounding) {
        let gain = rng.gen_range(0.7..1.0);
        let phase = rng.gen_range(0.0..TAU);
        for (m, s) in mix
            .iter_mut()
            .zip(class_sound(&CATALOGUE[obj.class].sound, rate, n, phase))
        {
            *m += gain * s;
        }
    }
    let peak = mix.iter().fold(0f32, |p, s| p.max(s.abs())).max(1e-6);
    let scale = 0.8 / peak;
    for m in &mut mix {
        // Sum of uniforms: cheap, roughly Gaussian noise.
        let noise: f64 = (0..4).map(|_| rng.gen_range(-1.0..1.0)).sum::<f64>() * 0.5;
        *m = (*m * scale + (noise * noise_level) as f32).clamp(-1.0, 1.0);
    }
    mix
}

/// Writes mono f32 samples as a 32-bit float WAV (the format stage one writes too).
pub fn write_wav(path: &std::path::Path, samples: &[f32], rate: u32) -> anyhow::Result<()> {
    use anyhow::Context;
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(path, spec)
        .with_context(|| format!("creating {}", path.display()))?;
    for &s in samples {
        writer.write_sample(s)?;
    }
    writer
        .finalize()
        .with_context(|| format!("finishing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Power of `x` at frequency `f` (a single DFT bin).
    fn power_at(x: &[f32], rate: u32, f: f64) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in x.iter().enumerate() {
            let a = TAU * f * i as f64 / f64::from(rate);
            re += f64::from(s) * a.cos();
            im += f64::from(s) * a.sin();
        }
        (re * re + im * im) / (x.len() as f64).powi(2)
    }

    #[test]
    fn each_class_is_loudest_at_its_own_fundamental() {
        let rate = 22_050;
        for class in &CATALOGUE {
            let x = class_sound(&class.sound, rate, rate as usize, 0.3);
            let own = power_at(&x, rate, class.sound.f0);
            for other in CATALOGUE.iter().filter(|o| o.name != class.name) {
                let f = other.sound.f0;
                // Skip frequencies that are harmonics of this class's fundamental.
                let ratio = f / class.sound.f0;
                if (ratio - ratio.round()).abs() < 0.05 {
                    continue;
                }
                assert!(
                    own > 20.0 * power_at(&x, rate, f),
                    "{} vs {}",
                    class.name,
                    other.name
                );
            }
        }
    }
}
