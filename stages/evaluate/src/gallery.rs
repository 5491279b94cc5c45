//! The gallery picture `<data>/eval/gallery.png` (the supplementary's Figure 1 layout): one row per sample,
//! the frame with its ground-truth boxes first, then each predicted map as a heatmap over the frame with the same
//! boxes. Rows with a green edge are the best samples by mean cIoU, rows with a red edge the worst (failure
//! cases).
//!
//! Maps are upsampled bilinearly (half-pixel centres) to the tile, min–max scaled and coloured with a jet-like
//! ramp, then blended 1:1 with the frame. A sample without any predicted map (IOI found no source) shows a grey
//! tile.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use oassl_eval::{resize, Map, Upsample};

/// One gallery row.
#[derive(Debug, Clone)]
pub struct GalleryRow {
    /// The frame as decoded.
    pub frame: RgbImage,
    /// Predicted maps of the sample (any resolution).
    pub maps: Vec<Map>,
    /// Ground-truth boxes, normalised xyxy, one list per source.
    pub boxes: Vec<Vec<[f64; 4]>>,
    /// Colour of the row's left edge.
    pub kind: RowKind,
}

/// What a gallery row shows, marked by the colour of its left edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// One of the best samples (green).
    Success,
    /// One of the worst samples (red).
    Failure,
    /// A clip without ground truth, e.g. from `oassl localize` (grey).
    Unscored,
}

const BOX_COLOURS: [[u8; 3]; 4] = [[255, 255, 255], [255, 0, 255], [0, 255, 255], [255, 255, 0]];
const EDGE: u32 = 6;

/// Jet-like colour of `v ∈ [0, 1]`.
fn jet(v: f64) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0);
    let c = |x: f64| ((1.5 - (4.0 * v - x).abs()).clamp(0.0, 1.0) * 255.0) as u8;
    [c(3.0), c(2.0), c(1.0)]
}

fn draw_boxes(tile: &mut RgbImage, boxes: &[Vec<[f64; 4]>]) {
    let (w, h) = tile.dimensions();
    for (s, list) in boxes.iter().enumerate() {
        let colour = Rgb(BOX_COLOURS[s % BOX_COLOURS.len()]);
        for b in list {
            let x0 = (b[0] * w as f64).round().clamp(0.0, (w - 1) as f64) as u32;
            let y0 = (b[1] * h as f64).round().clamp(0.0, (h - 1) as f64) as u32;
            let x1 = (b[2] * w as f64).round().clamp(0.0, (w - 1) as f64) as u32;
            let y1 = (b[3] * h as f64).round().clamp(0.0, (h - 1) as f64) as u32;
            for t in 0..2u32 {
                for x in x0..=x1 {
                    tile.put_pixel(x, (y0 + t).min(h - 1), colour);
                    tile.put_pixel(x, y1.saturating_sub(t), colour);
                }
                for y in y0..=y1 {
                    tile.put_pixel((x0 + t).min(w - 1), y, colour);
                    tile.put_pixel(x1.saturating_sub(t), y, colour);
                }
            }
        }
    }
}

fn overlay(frame: &RgbImage, map: &Map) -> RgbImage {
    let (w, h) = frame.dimensions();
    let up = resize(
        map,
        h as usize,
        w as usize,
        Upsample::TorchBilinear {
            align_corners: false,
        },
    )
    .unwrap_or_else(|_| Map::zeros(h as usize, w as usize));
    let lo = up.data.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = up.data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = if hi > lo { hi - lo } else { 1.0 };
    RgbImage::from_fn(w, h, |x, y| {
        let v = (up.at(y as usize, x as usize) - lo) / span;
        let heat = jet(if v.is_finite() { v } else { 0.0 });
        let px = frame.get_pixel(x, y).0;
        Rgb([0, 1, 2].map(|c| ((px[c] as u16 + heat[c] as u16) / 2) as u8))
    })
}

/// Renders the rows with `tile × tile` tiles.
pub fn render(rows: &[GalleryRow], tile: u32) -> RgbImage {
    let columns = 1 + rows.iter().map(|r| r.maps.len().max(1)).max().unwrap_or(1) as u32;
    let width = EDGE + columns * (tile + 2);
    let height = (rows.len().max(1) as u32) * (tile + 2);
    let mut out = RgbImage::from_pixel(width, height, Rgb([40, 40, 40]));
    for (r, row) in rows.iter().enumerate() {
        let top = r as u32 * (tile + 2);
        let edge = match row.kind {
            RowKind::Success => [30, 170, 30],
            RowKind::Failure => [200, 30, 30],
            RowKind::Unscored => [140, 140, 140],
        };
        for y in top..top + tile {
            for x in 0..EDGE - 2 {
                out.put_pixel(x, y, Rgb(edge));
            }
        }
        let frame = imageops::resize(&row.frame, tile, tile, FilterType::Triangle);
        let mut first = frame.clone();
        draw_boxes(&mut first, &row.boxes);
        imageops::replace(&mut out, &first, EDGE as i64, top as i64);
        if row.maps.is_empty() {
            let grey = RgbImage::from_pixel(tile, tile, Rgb([110, 110, 110]));
            imageops::replace(&mut out, &grey, (EDGE + tile + 2) as i64, top as i64);
        }
        for (m, map) in row.maps.iter().enumerate() {
            let mut t = overlay(&frame, map);
            draw_boxes(&mut t, &row.boxes);
            let left = EDGE + (1 + m as u32) * (tile + 2);
            imageops::replace(&mut out, &t, left as i64, top as i64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_has_a_column_per_map_and_a_row_per_sample() {
        let frame = RgbImage::from_pixel(50, 40, Rgb([0, 0, 0]));
        let hot = Map::from_vec(2, 2, vec![0.0, 0.0, 0.0, 1.0]).unwrap();
        let rows = vec![
            GalleryRow {
                frame: frame.clone(),
                maps: vec![hot.clone(), hot],
                boxes: vec![vec![[0.5, 0.5, 1.0, 1.0]]],
                kind: RowKind::Success,
            },
            GalleryRow {
                frame,
                maps: vec![],
                boxes: vec![],
                kind: RowKind::Failure,
            },
        ];
        let img = render(&rows, 32);
        assert_eq!(img.dimensions(), (EDGE + 3 * 34, 2 * 34));
        // The hot corner of the first map is red-ish, the cold corner blue-ish.
        let hot_px = img.get_pixel(EDGE + 34 + 28, 20).0;
        let cold_px = img.get_pixel(EDGE + 34 + 3, 3).0;
        assert!(
            hot_px[0] > hot_px[2] && cold_px[2] > cold_px[0],
            "{hot_px:?} {cold_px:?}"
        );
    }
}
