//! A pair sample's frame and audio from its clips' (VGGSound-Duet, as AVGN builds it).
//!
//! With N clips, each frame `F_i` already at `s`×`s` (what a single clip's extraction gives) and each audio
//! window `a_i` at the same rate and length:
//!
//! - frame: `M(x, y) = F_i(x, y - i·s)` for `i·s ≤ y < (i+1)·s`, an `s`×`N·s` vertical mosaic, clip 0 on top
//!   (manifest order: the i-th tile is source i+1);
//! - audio: `m[t] = Σ_i a_i[t]`, the waveforms summed sample by sample before any spectrogram.
//!
//! The sum is not rescaled, as in AVGN; where it leaves [-1, 1] the 16-bit WAV writer saturates it (see
//! [`super::write_outputs`]) rather than letting it wrap around.

use image::RgbImage;

/// The frames stacked top to bottom; `None` when there are none or their sizes differ.
pub fn stack_vertically(frames: &[RgbImage]) -> Option<RgbImage> {
    let first = frames.first()?;
    let (w, h) = first.dimensions();
    if frames.iter().any(|f| f.dimensions() != (w, h)) {
        return None;
    }
    let mut mosaic = RgbImage::new(w, h * frames.len() as u32);
    for (i, frame) in frames.iter().enumerate() {
        image::imageops::replace(&mut mosaic, frame, 0, i64::from(h) * i as i64);
    }
    Some(mosaic)
}

/// The waveforms summed sample by sample; `None` when there are none or their lengths differ.
pub fn mix(waves: &[Vec<f32>]) -> Option<Vec<f32>> {
    let first = waves.first()?;
    if waves.iter().any(|w| w.len() != first.len()) {
        return None;
    }
    let mut sum = vec![0.0f32; first.len()];
    for wave in waves {
        for (s, x) in sum.iter_mut().zip(wave) {
            *s += x;
        }
    }
    Some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_land_in_order_top_to_bottom() {
        let a = RgbImage::from_fn(3, 3, |x, y| image::Rgb([x as u8, y as u8, 1]));
        let b = RgbImage::from_fn(3, 3, |x, y| image::Rgb([x as u8, y as u8, 2]));
        let m = stack_vertically(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(m.dimensions(), (3, 6));
        for (x, y, p) in m.enumerate_pixels() {
            let (tile, ty) = if y < 3 { (&a, y) } else { (&b, y - 3) };
            assert_eq!(p, tile.get_pixel(x, ty), "({x}, {y})");
        }
        assert!(stack_vertically(&[a, RgbImage::new(3, 4)]).is_none());
        assert!(stack_vertically(&[]).is_none());
    }

    #[test]
    fn waves_are_summed_sample_by_sample() {
        let m = mix(&[vec![0.5, -0.25, 0.0], vec![0.75, 0.25, -1.0]]).unwrap();
        assert_eq!(m, vec![1.25, 0.0, -1.0]);
        assert!(mix(&[vec![0.0], vec![0.0, 1.0]]).is_none());
        assert!(mix(&[]).is_none());
    }
}
