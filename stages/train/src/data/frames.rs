//! Frames: JPEG/PNG → ImageNet-normalised `[3, S, S]` f32, channel-major (docs/method.md §1.2, §5.2).
//!
//! Train: resize the shorter side to `R = round(S · 246 / 224)` (bicubic), random `S × S` crop, optional
//! horizontal flip. Test: resize to exactly `S × S` (bicubic, aspect not kept). Then `x ↦ (x / 255 − μ) / σ` per
//! channel with μ = (0.485, 0.456, 0.406), σ = (0.229, 0.224, 0.225).

use std::path::Path;

use anyhow::{Context, Result};
use image::imageops::{self, FilterType};
use image::RgbImage;
use rand::Rng;

/// ImageNet channel means.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// How a frame is turned into the network input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FrameTransform {
    /// Resize the shorter side to `resize`, random `crop × crop` window, flip with probability ½ if `flip`.
    Train {
        /// Shorter side after the resize.
        resize: u32,
        /// Side of the random crop.
        crop: u32,
        /// Random horizontal flip.
        flip: bool,
    },
    /// Resize to exactly `size × size`.
    Test {
        /// Output side.
        size: u32,
    },
}

/// Decodes the frame at `path`.
pub fn read_frame(path: &Path) -> Result<RgbImage> {
    let img = image::open(path).with_context(|| format!("decoding frame {}", path.display()))?;
    Ok(img.to_rgb8())
}

/// Applies `transform` to `img` and returns the normalised `[3, S, S]` values.
pub fn frame_tensor_data<R: Rng>(
    img: &RgbImage,
    transform: FrameTransform,
    rng: &mut R,
) -> Vec<f32> {
    let out = match transform {
        FrameTransform::Test { size } => imageops::resize(img, size, size, FilterType::CatmullRom),
        FrameTransform::Train { resize, crop, flip } => {
            let resized = super::decoded_cache::train_resize(img, resize, crop);
            let (nw, nh) = resized.dimensions();
            let x = rng.gen_range(0..=nw - crop);
            let y = rng.gen_range(0..=nh - crop);
            let mut cropped = imageops::crop_imm(&resized, x, y, crop, crop).to_image();
            if flip && rng.gen_bool(0.5) {
                imageops::flip_horizontal_in_place(&mut cropped);
            }
            cropped
        }
    };
    normalise(&out)
}

/// ImageNet normalisation into channel-major f32.
pub fn normalise(img: &RgbImage) -> Vec<f32> {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut data = vec![0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            data[c * plane + i] = (px.0[c] as f32 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn train_crop_and_test_resize_have_the_requested_size() {
        let img = RgbImage::from_fn(80, 60, |x, _| image::Rgb([x as u8, 128, 255]));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let t = FrameTransform::Train {
            resize: 35,
            crop: 32,
            flip: true,
        };
        assert_eq!(frame_tensor_data(&img, t, &mut rng).len(), 3 * 32 * 32);
        let v = frame_tensor_data(&img, FrameTransform::Test { size: 16 }, &mut rng);
        assert_eq!(v.len(), 3 * 16 * 16);
        // Blue channel is 255 everywhere: (1 − 0.406) / 0.225.
        assert!((v[2 * 256] - (1.0 - 0.406) / 0.225).abs() < 1e-4);
    }
}
