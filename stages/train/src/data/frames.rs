//! Frames: JPEG/PNG → ImageNet-normalised `[3, S, S]` f32, channel-major (docs/method.md §1.2, §5.2).
//!
//! Train: resize the shorter side to `R = round(S · 246 / 224)` (bicubic), random `S × S` crop, optional
//! horizontal flip. Test: resize to exactly `S × S` (bicubic, aspect not kept); a pair mosaic of `c` frames stacked
//! vertically is cut into its `c` frames, each resized to `S × S` and stacked again (`[3, c·S, S]`), as the
//! evaluators resize each frame of a pair before joining them. Then `x ↦ (x / 255 − μ) / σ` per
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
    /// Resize each of `tiles` vertically stacked frames to exactly `size × size`.
    Test {
        /// Output side of one frame.
        size: u32,
        /// Frames in the image (1, or a pair mosaic's frames).
        tiles: u32,
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
        FrameTransform::Test { size, tiles } => test_frames(img, size, tiles),
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

/// The test resize of every frame of a vertical mosaic of `tiles` frames (rows split as evenly as they go).
fn test_frames(img: &RgbImage, size: u32, tiles: u32) -> RgbImage {
    let tiles = tiles.max(1);
    let (w, h) = img.dimensions();
    let mut out = RgbImage::new(size, size * tiles);
    for t in 0..tiles {
        let (top, bottom) = (h * t / tiles, h * (t + 1) / tiles);
        let band = imageops::crop_imm(img, 0, top, w, bottom - top).to_image();
        let frame = imageops::resize(&band, size, size, FilterType::CatmullRom);
        imageops::replace(&mut out, &frame, 0, i64::from(size * t));
    }
    out
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
        let v = frame_tensor_data(&img, FrameTransform::Test { size: 16, tiles: 1 }, &mut rng);
        assert_eq!(v.len(), 3 * 16 * 16);
        // Blue channel is 255 everywhere: (1 − 0.406) / 0.225.
        assert!((v[2 * 256] - (1.0 - 0.406) / 0.225).abs() < 1e-4);
    }

    #[test]
    fn a_pair_mosaic_is_resized_frame_by_frame() {
        // Top frame red, bottom frame blue, 30×20 each: each becomes its own 8×8 frame, with no colour crossing
        // the seam (a resize of the whole mosaic would blend the rows next to it).
        let img = RgbImage::from_fn(30, 40, |_, y| {
            if y < 20 {
                image::Rgb([255, 0, 0])
            } else {
                image::Rgb([0, 0, 255])
            }
        });
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let v = frame_tensor_data(&img, FrameTransform::Test { size: 8, tiles: 2 }, &mut rng);
        let plane = 8 * 16;
        assert_eq!(v.len(), 3 * plane);
        let red = |row: usize| v[row * 8 + 3];
        let blue = |row: usize| v[2 * plane + row * 8 + 3];
        let red_hi = (1.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0];
        let red_lo = (0.0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0];
        for row in 0..8 {
            assert!((red(row) - red_hi).abs() < 1e-4, "row {row}");
            assert!((red(row + 8) - red_lo).abs() < 1e-4, "row {}", row + 8);
            assert!((blue(row + 8) - (1.0 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]).abs() < 1e-4);
        }
    }
}
