//! The loss-curve picture `<data>/train/loss_curve.png`: one chart of every loss term against the step.
//!
//! x = step, y = loss, on axes with round tick values, tick labels and titles; one line per term named in the
//! legend on the right by its `steps.csv` column (total, lvs, osc, oca, ori, each in its own colour). The strong
//! line of a term is its running mean over `max(1, steps / 50)` steps and, from 100 steps on, a faint line under it
//! its value at each step (both named at the legend's foot). Terms that stay 0 (not part of the method) are left
//! out. All text is drawn with `oassl_picture`'s bitmap font.

use std::path::Path;

use anyhow::Result;
use image::{Rgb, RgbImage};

use oassl_picture::axes::{Axis, Chart};
use oassl_picture::stroke::{fill_rect, line};
use oassl_picture::text::{draw_text, draw_text_centred, TextStyle};

use super::step_log::StepRow;

/// Width of the picture.
pub const WIDTH: u32 = 880;
/// Height of the picture.
pub const HEIGHT: u32 = 520;
/// Pixels per font cell of the titles, tick labels and legend.
const SCALE: u32 = 2;
const PAD: u32 = 12;
const INK: [u8; 3] = [30, 30, 30];
const PAPER: Rgb<u8> = Rgb([255, 255, 255]);

type Term = fn(&StepRow) -> f64;

/// Each term: its `steps.csv` column, how to read it, its colour.
const TERMS: [(&str, Term, [u8; 3]); 5] = [
    ("total", |r| r.total, [20, 20, 20]),
    ("lvs", |r| r.lvs, [31, 119, 180]),
    ("osc", |r| r.osc, [44, 160, 44]),
    ("oca", |r| r.oca, [214, 39, 40]),
    ("ori", |r| r.ori, [148, 103, 189]),
];

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

/// A term drawn on the chart.
struct Series {
    name: &'static str,
    colour: [u8; 3],
    values: Vec<f64>,
}

/// Where the parts of the picture go.
struct Layout {
    chart: Chart,
    /// Left column of the legend.
    legend_left: u32,
    /// Smoothing window of the strong lines.
    window: usize,
}

fn series(rows: &[StepRow]) -> Vec<Series> {
    TERMS
        .iter()
        .map(|&(name, read, colour)| Series {
            name,
            colour,
            values: rows.iter().map(read).collect(),
        })
        .filter(|s| s.values.iter().any(|x| *x != 0.0))
        .collect()
}

/// Grey of the legend's line-kind swatches.
const GREY: [u8; 3] = [110, 110, 110];

/// The faint colour of a term's per-step line.
fn faint(colour: [u8; 3]) -> [u8; 3] {
    colour.map(|c| ((u16::from(c) + 2 * 255) / 3) as u8)
}

/// Legend entries: each term, then (when lines are smoothed) what the faint and the strong lines are; each as
/// name, swatch colour and swatch thickness.
fn legend(series: &[Series], window: usize) -> Vec<(String, [u8; 3], u32)> {
    let mut entries: Vec<(String, [u8; 3], u32)> = series
        .iter()
        .map(|s| (s.name.to_string(), s.colour, 3))
        .collect();
    if window > 1 {
        entries.push(("each step".into(), faint(GREY), 1));
        entries.push((format!("mean of {window}"), GREY, 3));
    }
    entries
}

fn layout(rows: &[StepRow], series: &[Series]) -> Layout {
    let style = TextStyle::new(SCALE, INK);
    let window = (rows.len() / 50).max(1);
    let steps = rows.iter().map(|r| r.step as f64);
    let x = Axis::covering(
        steps.clone().fold(f64::INFINITY, f64::min),
        steps.fold(f64::NEG_INFINITY, f64::max),
        8,
        true,
    );
    let finite = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite());
    let y = Axis::covering(
        finite.clone().fold(f64::INFINITY, f64::min),
        finite.fold(f64::NEG_INFINITY, f64::max),
        6,
        false,
    );
    let legend_width = legend(series, window)
        .iter()
        .map(|(name, _, _)| style.width(name) + 11 * SCALE)
        .max()
        .unwrap_or(0);
    let left = PAD + Chart::left_margin(&y, style);
    let top = PAD + style.line_height() + PAD;
    let legend_left = WIDTH - PAD - legend_width;
    let right = legend_left - 2 * PAD;
    let bottom = HEIGHT - PAD - Chart::bottom_margin(style);
    Layout {
        chart: Chart {
            left,
            top,
            width: right - left,
            height: bottom - top,
            x,
            y,
        },
        legend_left,
        window,
    }
}

/// Renders the curves of `rows`.
pub fn render(rows: &[StepRow]) -> RgbImage {
    let style = TextStyle::new(SCALE, INK);
    let series = series(rows);
    let Layout {
        chart,
        legend_left,
        window,
    } = layout(rows, &series);
    let mut img = RgbImage::from_pixel(WIDTH, HEIGHT, PAPER);
    let title = "training loss";
    let centre = chart.left + chart.width / 2;
    draw_text_centred(&mut img, centre, PAD, title, style);
    chart.draw_axes(&mut img, style, "step", "loss");
    if rows.is_empty() {
        let note = "no steps yet";
        let y = chart.top + chart.height / 2;
        draw_text_centred(&mut img, centre, y, note, style);
    }
    let points = |values: &[f64]| -> Vec<(f64, f64)> {
        rows.iter()
            .zip(values)
            .map(|(r, &v)| (chart.px(r.step as f64), chart.py(v)))
            .collect()
    };
    let polyline = |img: &mut RgbImage, pts: &[(f64, f64)], width: u32, colour: [u8; 3]| {
        for pair in pts.windows(2) {
            line(img, pair[0], pair[1], width, Rgb(colour));
        }
        if let [only] = pts {
            line(img, *only, *only, width + 2, Rgb(colour));
        }
    };
    // Every faint line first, so no strong line is hidden under another term's raw values.
    if window > 1 {
        for s in &series {
            polyline(&mut img, &points(&s.values), 1, faint(s.colour));
        }
    }
    for s in &series {
        let smooth = running_mean(&s.values, window);
        polyline(&mut img, &points(&smooth), 2, s.colour);
    }
    // Legend: a swatch of the line, then its name; the line kinds after a blank line.
    let mut y = i64::from(chart.top);
    for (i, (name, colour, thickness)) in legend(&series, window).iter().enumerate() {
        if i == series.len() {
            y += i64::from(style.line_height());
        }
        let mid = y + i64::from(style.height() / 2) - 1;
        fill_rect(
            &mut img,
            i64::from(legend_left),
            mid - i64::from(thickness / 2),
            8 * SCALE,
            *thickness,
            Rgb(*colour),
        );
        draw_text(
            &mut img,
            i64::from(legend_left + 11 * SCALE),
            y,
            name,
            style,
        );
        y += i64::from(style.line_height() + SCALE);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` steps: total falls linearly from 4 to 1, lvs is 0.8 of it, osc a constant 0.3, oca and ori unused.
    fn rows(n: usize) -> Vec<StepRow> {
        (1..=n)
            .map(|step| {
                let total = 4.0 - 3.0 * (step - 1) as f64 / (n - 1).max(1) as f64;
                StepRow {
                    step,
                    epoch: 0,
                    total,
                    base: total,
                    lvs: 0.8 * total,
                    osc: 0.3,
                    oca: 0.0,
                    ori: 0.0,
                    samples_per_s: 10.0,
                    applied: true,
                    loader_s: 0.0,
                    forward_s: 0.0,
                    backward_s: 0.0,
                    optimizer_s: 0.0,
                    ioi_cut_short: 0,
                }
            })
            .collect()
    }

    fn near(img: &RgbImage, (x, y): (f64, f64), colour: [u8; 3]) -> bool {
        let (x, y) = (x.round() as i64, y.round() as i64);
        (x - 2..=x + 2).any(|xx| {
            (y - 2..=y + 2).any(|yy| {
                xx >= 0
                    && yy >= 0
                    && img
                        .get_pixel_checked(xx as u32, yy as u32)
                        .is_some_and(|p| p.0 == colour)
            })
        })
    }

    #[test]
    fn curves_follow_their_values_on_the_axes() {
        let rows = rows(101);
        let img = render(&rows);
        assert_eq!(img.dimensions(), (WIDTH, HEIGHT));
        let chart = layout(&rows, &series(&rows)).chart;
        assert_eq!(chart.x.ticks.first().copied(), Some(0.0));
        assert_eq!(chart.x.ticks.last().copied(), Some(120.0));
        assert_eq!((chart.y.lo, chart.y.hi), (0.0, 4.0));
        let [total, lvs, osc, oca, ori] = TERMS.map(|t| t.2);
        // The strong total line starts at (1, 4) and ends near (101, 1) (a 2-step mean there: 1.015).
        assert!(near(&img, (chart.px(1.0), chart.py(4.0)), total));
        assert!(near(&img, (chart.px(101.0), chart.py(1.015)), total));
        assert!(near(&img, (chart.px(51.0), chart.py(0.8 * 2.5)), lvs));
        assert!(near(&img, (chart.px(80.0), chart.py(0.3)), osc));
        assert!(!near(&img, (chart.px(80.0), chart.py(3.0)), osc));
        // Unused terms are neither drawn nor in the legend.
        assert!(img.pixels().all(|p| p.0 != oca && p.0 != ori));
        // Under the strong lines, the faint per-step ones; the legend ends with the two kinds of line.
        assert!(img.pixels().any(|p| p.0 == faint(lvs)));
        let names: Vec<String> = legend(&series(&rows), 2).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["total", "lvs", "osc", "each step", "mean of 2"]);
    }

    #[test]
    fn the_legend_names_each_drawn_term() {
        let rows = rows(30);
        let series = series(&rows);
        let names: Vec<&str> = series.iter().map(|s| s.name).collect();
        assert_eq!(names, ["total", "lvs", "osc"]);
        let img = render(&rows);
        // 30 steps are not smoothed: one line per term, no line kinds in the legend.
        assert_eq!(legend(&series, 1).len(), 3);
        assert!(img.pixels().all(|p| p.0 != faint(TERMS[1].2)));
        let left = layout(&rows, &series).legend_left + 11 * SCALE;
        let top = layout(&rows, &series).chart.top;
        let style = TextStyle::new(SCALE, INK);
        for (i, s) in series.iter().enumerate() {
            // The name's cells, drawn alone on white, match the picture's legend line pixel for pixel.
            let y = top + i as u32 * (style.line_height() + SCALE);
            let mut alone = RgbImage::from_pixel(style.width(s.name), style.height(), PAPER);
            draw_text(&mut alone, 0, 0, s.name, style);
            for (x, yy, p) in alone.enumerate_pixels() {
                assert_eq!(
                    img.get_pixel(left + x, y + yy),
                    p,
                    "{} at ({x}, {yy})",
                    s.name
                );
            }
            assert!(
                alone.pixels().filter(|p| p.0 == INK).count() > 40,
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn axes_carry_dark_tick_labels_and_titles() {
        let rows = rows(101);
        let img = render(&rows);
        let chart = layout(&rows, &series(&rows)).chart;
        let dark = |x0: u32, x1: u32, y0: u32, y1: u32| {
            (x0..x1)
                .flat_map(|x| (y0..y1).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0 == INK)
                .count()
        };
        let below = chart.top + chart.height;
        assert!(
            dark(chart.left, chart.left + chart.width, below + 2, HEIGHT) > 200,
            "x labels and title"
        );
        assert!(
            dark(0, chart.left - 1, chart.top, below) > 200,
            "y labels and title"
        );
        assert!(dark(0, WIDTH, 0, chart.top - 1) > 50, "title");
        let colours: std::collections::BTreeSet<[u8; 3]> = img.pixels().map(|p| p.0).collect();
        assert!(colours.len() >= 8, "{} colours", colours.len());
    }

    #[test]
    fn short_and_empty_logs_still_make_a_picture() {
        for n in [0, 1, 2] {
            let img = render(&rows(n)[..n]);
            assert_eq!(img.dimensions(), (WIDTH, HEIGHT), "{n} steps");
            assert!(img.pixels().any(|p| p.0 == INK), "{n} steps");
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss_curve.png");
        write(&path, &rows(5)).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back, render(&rows(5)));
    }
}
