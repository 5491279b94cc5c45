//! The loss-curve picture `<data>/train/loss_curve.png`, drawn pixel by pixel.
//!
//! One panel per term (total, L_LVS, L_OSC, L_oca, L_ori, each in its own colour, the legend order), x = step,
//! y = loss scaled to the panel's own min–max; the faint line is the raw value, the strong one its running mean
//! over `max(1, steps / 50)` steps. Terms that stay 0 (not part of the method) are left out.

use std::path::Path;

use anyhow::Result;
use image::{Rgb, RgbImage};

use super::step_log::StepRow;

const WIDTH: u32 = 720;
const PANEL_HEIGHT: u32 = 120;
const MARGIN: u32 = 10;
const COLOURS: [[u8; 3]; 5] = [
    [20, 20, 20],
    [31, 119, 180],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
];

fn line(img: &mut RgbImage, (x0, y0): (f64, f64), (x1, y1): (f64, f64), colour: [u8; 3]) {
    let n = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
    for i in 0..=n {
        let t = i as f64 / n as f64;
        let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
        if x >= 0.0 && y >= 0.0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, Rgb(colour));
        }
    }
}

fn running_mean(v: &[f64], w: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(v.len());
    let mut sum = 0.0;
    for (i, x) in v.iter().enumerate() {
        sum += x;
        if i >= w {
            sum -= v[i - w];
        }
        out.push(sum / (i + 1).min(w) as f64);
    }
    out
}

/// Renders the curves of `rows`.
pub fn render(rows: &[StepRow]) -> RgbImage {
    type Term = fn(&StepRow) -> f64;
    let terms: [Term; 5] = [|r| r.total, |r| r.lvs, |r| r.osc, |r| r.oca, |r| r.ori];
    let series: Vec<(usize, Vec<f64>)> = terms
        .iter()
        .enumerate()
        .map(|(i, f)| (i, rows.iter().map(f).collect::<Vec<_>>()))
        .filter(|(_, v)| v.iter().any(|x| *x != 0.0))
        .collect();
    let panels = series.len().max(1) as u32;
    let height = panels * (PANEL_HEIGHT + MARGIN) + MARGIN;
    let mut img = RgbImage::from_pixel(WIDTH, height, Rgb([255, 255, 255]));
    let x_of = |i: usize| {
        let n = rows.len().saturating_sub(1).max(1) as f64;
        MARGIN as f64 + 14.0 + i as f64 / n * (WIDTH - 2 * MARGIN - 14) as f64
    };
    for (p, (term, values)) in series.iter().enumerate() {
        let top = MARGIN + p as u32 * (PANEL_HEIGHT + MARGIN);
        let colour = COLOURS[*term];
        // Legend swatch and frame.
        for y in top..top + 10 {
            for x in MARGIN..MARGIN + 10 {
                img.put_pixel(x, y, Rgb(colour));
            }
        }
        let (l, r) = (MARGIN as f64 + 14.0, (WIDTH - MARGIN) as f64);
        let (t, b) = (top as f64, (top + PANEL_HEIGHT) as f64);
        for (a, z) in [
            ((l, t), (r, t)),
            ((l, b), (r, b)),
            ((l, t), (l, b)),
            ((r, t), (r, b)),
        ] {
            line(&mut img, a, z, [200, 200, 200]);
        }
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let y_of = |v: f64| b - 4.0 - (v - lo) / span * (PANEL_HEIGHT as f64 - 8.0);
        let faint = colour.map(|c| (c as u16 + 2 * 255).div_euclid(3) as u8);
        let smooth = running_mean(values, (values.len() / 50).max(1));
        for (vals, c) in [(values.as_slice(), faint), (smooth.as_slice(), colour)] {
            for (i, pair) in vals.windows(2).enumerate() {
                if pair[0].is_finite() && pair[1].is_finite() {
                    let (a, b) = ((x_of(i), y_of(pair[0])), (x_of(i + 1), y_of(pair[1])));
                    line(&mut img, a, b, c);
                }
            }
        }
    }
    img
}

/// Writes the picture atomically.
pub fn write(path: &Path, rows: &[StepRow]) -> Result<()> {
    let img = render(rows);
    oassl_pipeline::atomic::write_with(path, |w| {
        img.write_to(w, image::ImageFormat::Png)?;
        Ok(())
    })
}
