//! The pretraining frames, decoded once: each resized so its shorter side is `resize`, kept as RGB bytes in
//! memory, so a step only crops, flips and normalises (no JPEG decoding per step).

use std::path::PathBuf;

use anyhow::{Context, Result};
use image::imageops::{self, FilterType};
use rand::Rng;
use rayon::prelude::*;

use crate::data::frames::normalise;

/// Decoded, resized frames.
pub struct FrameBank {
    frames: Vec<image::RgbImage>,
}

impl FrameBank {
    /// Decodes every file of `paths` (in parallel) and resizes it; an unreadable frame is an error naming it.
    pub fn decode(paths: &[PathBuf], resize: u32) -> Result<Self> {
        let frames = paths
            .par_iter()
            .map(|p| {
                let img = image::open(p)
                    .with_context(|| format!("decoding pretraining frame {}", p.display()))?
                    .to_rgb8();
                let (w, h) = img.dimensions();
                let scale = f64::from(resize) / f64::from(w.min(h).max(1));
                let nw = ((f64::from(w) * scale).round() as u32).max(resize);
                let nh = ((f64::from(h) * scale).round() as u32).max(resize);
                Ok(imageops::resize(&img, nw, nh, FilterType::CatmullRom))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { frames })
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True without frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Frame `i` as the normalised `[3, crop, crop]` network input: a random crop and flip when `rng` is given,
    /// the centre crop otherwise.
    pub fn input<R: Rng>(&self, i: usize, crop: u32, rng: Option<&mut R>) -> Vec<f32> {
        let img = &self.frames[i];
        let (w, h) = img.dimensions();
        let (max_x, max_y) = (w.saturating_sub(crop), h.saturating_sub(crop));
        let (x, y, flip) = match rng {
            Some(rng) => (
                rng.gen_range(0..=max_x),
                rng.gen_range(0..=max_y),
                rng.gen_bool(0.5),
            ),
            None => (max_x / 2, max_y / 2, false),
        };
        let mut view = imageops::crop_imm(img, x, y, crop.min(w), crop.min(h)).to_image();
        if flip {
            imageops::flip_horizontal_in_place(&mut view);
        }
        normalise(&view)
    }
}
