//! A chart's two axes: round tick values spanning the data, and the frame, grid, ticks, tick labels and axis
//! titles around a plot area.

use image::{Rgb, RgbImage};

use crate::stroke::{dot, line};
use crate::text::{draw_text, draw_text_upward, TextStyle};

/// Length of a tick mark outside the plot area, in text cells.
const TICK_CELLS: u32 = 2;

/// One axis: the range it shows, whose ends are ticks, and its ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Value at the start (left, bottom).
    pub lo: f64,
    /// Value at the end.
    pub hi: f64,
    /// Tick values, from `lo` to `hi` by a round step (1, 2 or 5 times a power of ten).
    pub ticks: Vec<f64>,
    /// Decimals the tick labels need to tell the ticks apart.
    pub decimals: usize,
}

impl Axis {
    /// An axis covering `lo..=hi` with about `ticks` ticks (at least two), widened to round values; `whole`
    /// keeps the step at 1 or more (step numbers). An empty or reversed range is widened around `lo`.
    pub fn covering(lo: f64, hi: f64, ticks: usize, whole: bool) -> Self {
        let (lo, hi) = match (lo.is_finite(), hi.is_finite()) {
            (true, true) => (lo, hi),
            (true, false) => (lo, lo),
            (false, true) => (hi, hi),
            (false, false) => (0.0, 1.0),
        };
        let (lo, hi) = if hi > lo {
            (lo, hi)
        } else if whole {
            (lo, lo + 1.0)
        } else {
            let pad = (lo.abs() * 0.1).max(1e-3);
            (lo - pad, lo + pad)
        };
        let mut step = round_step((hi - lo) / ticks.max(2).saturating_sub(1) as f64);
        if whole {
            step = step.max(1.0);
        }
        let (first, last) = ((lo / step).floor() as i64, (hi / step).ceil() as i64);
        let ticks: Vec<f64> = (first..=last).map(|k| k as f64 * step).collect();
        let decimals = if step >= 1.0 {
            0
        } else {
            ((-step.log10() - 1e-9).ceil() as usize).min(9)
        };
        Self {
            lo: ticks[0],
            hi: ticks[ticks.len() - 1],
            ticks,
            decimals,
        }
    }

    /// The label of a tick value.
    pub fn label(&self, v: f64) -> String {
        // `+ 0.0` turns -0 into 0.
        format!("{:.*}", self.decimals, v + 0.0)
    }

    /// Where `v` falls between the ends: 0 at `lo`, 1 at `hi`.
    pub fn fraction(&self, v: f64) -> f64 {
        (v - self.lo) / (self.hi - self.lo)
    }
}

/// 1, 2, 5 or 10 times the power of ten at or below `raw` (raw > 0), the smallest not below `raw`.
fn round_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let mantissa = raw / power;
    let nice = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .find(|m| mantissa <= m + 1e-9)
        .unwrap_or(10.0);
    nice * power
}

/// A plot area on a picture with an axis for each direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Left pixel column of the plot area.
    pub left: u32,
    /// Top pixel row of the plot area.
    pub top: u32,
    /// Width of the plot area.
    pub width: u32,
    /// Height of the plot area.
    pub height: u32,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
}

impl Chart {
    /// Pixel column of `x`.
    pub fn px(&self, x: f64) -> f64 {
        f64::from(self.left) + self.x.fraction(x) * f64::from(self.width - 1)
    }

    /// Pixel row of `y` (up is larger).
    pub fn py(&self, y: f64) -> f64 {
        f64::from(self.top + self.height - 1) - self.y.fraction(y) * f64::from(self.height - 1)
    }

    /// Room left of the plot area that [`Chart::draw_axes`] needs for the y tick labels and title.
    pub fn left_margin(y: &Axis, style: TextStyle) -> u32 {
        let widest = y
            .ticks
            .iter()
            .map(|&t| style.width(&y.label(t)))
            .max()
            .unwrap_or(0);
        widest + style.line_height() + (TICK_CELLS + 3) * style.scale
    }

    /// Room below the plot area that [`Chart::draw_axes`] needs for the x tick labels and title.
    pub fn bottom_margin(style: TextStyle) -> u32 {
        2 * style.line_height() + (TICK_CELLS + 2) * style.scale
    }

    /// Draws light grid lines at the ticks, the frame, tick marks, tick labels, and the axis titles: `x_title`
    /// centred under the x tick labels, `y_title` read upward left of the y tick labels.
    pub fn draw_axes(&self, img: &mut RgbImage, style: TextStyle, x_title: &str, y_title: &str) {
        let grid = Rgb([228, 228, 228]);
        let frame = Rgb([90, 90, 90]);
        let (l, t) = (f64::from(self.left), f64::from(self.top));
        let (r, b) = (
            l + f64::from(self.width - 1),
            t + f64::from(self.height - 1),
        );
        let tick = i64::from(TICK_CELLS * style.scale);
        for &v in &self.x.ticks {
            let x = self.px(v);
            line(img, (x, t), (x, b), 1, grid);
            for d in 1..=tick {
                dot(img, x.round() as i64, b as i64 + d, frame);
            }
            let label = self.x.label(v);
            let lx = x.round() as i64 - i64::from(style.width(&label) / 2);
            draw_text(
                img,
                lx,
                b as i64 + tick + i64::from(style.scale) * 2,
                &label,
                style,
            );
        }
        for &v in &self.y.ticks {
            let y = self.py(v);
            line(img, (l, y), (r, y), 1, grid);
            for d in 1..=tick {
                dot(img, l as i64 - d, y.round() as i64, frame);
            }
            let label = self.y.label(v);
            let lx = l as i64 - tick - i64::from(style.scale + style.width(&label));
            draw_text(
                img,
                lx,
                y.round() as i64 - i64::from(style.height() / 2),
                &label,
                style,
            );
        }
        for (a, z) in [
            ((l, t), (r, t)),
            ((l, b), (r, b)),
            ((l, t), (l, b)),
            ((r, t), (r, b)),
        ] {
            line(img, a, z, 1, frame);
        }
        let title_y = b as i64 + tick + i64::from(2 * style.scale + style.line_height());
        let centre = (l + r) / 2.0;
        draw_text(
            img,
            centre as i64 - i64::from(style.width(x_title) / 2),
            title_y,
            x_title,
            style,
        );
        let widest = self
            .y
            .ticks
            .iter()
            .map(|&v| style.width(&self.y.label(v)))
            .max()
            .unwrap_or(0);
        let title_x = l as i64 - tick - i64::from(2 * style.scale + widest + style.line_height());
        let middle = (t + b) / 2.0;
        draw_text_upward(
            img,
            title_x,
            middle as i64 + i64::from(style.width(y_title) / 2),
            y_title,
            style,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_data() {
        let a = Axis::covering(0.37, 4.2, 6, false);
        assert_eq!(a.ticks, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!((a.lo, a.hi, a.decimals), (0.0, 5.0, 0));
        let a = Axis::covering(2.31, 2.52, 5, false);
        // Step 0.21 / 4 = 0.0525 → 0.1: 2.3, 2.4, 2.5, 2.6.
        assert_eq!(
            a.ticks.iter().map(|&t| a.label(t)).collect::<Vec<_>>(),
            ["2.3", "2.4", "2.5", "2.6"]
        );
        let a = Axis::covering(-0.012, 0.031, 5, false);
        assert_eq!(a.decimals, 2);
        assert_eq!(
            a.ticks.iter().map(|&t| a.label(t)).collect::<Vec<_>>(),
            ["-0.02", "0.00", "0.02", "0.04"]
        );
        let steps = Axis::covering(1.0, 1000.0, 6, true);
        assert_eq!(steps.ticks, [0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
    }

    #[test]
    fn whole_axes_never_step_below_one_and_empty_ranges_widen() {
        let a = Axis::covering(1.0, 2.0, 6, true);
        assert_eq!(a.ticks, [1.0, 2.0]);
        assert_eq!(Axis::covering(5.0, 5.0, 6, true).ticks, [5.0, 6.0]);
        let flat = Axis::covering(0.5, 0.5, 5, false);
        assert!(flat.lo < 0.5 && flat.hi > 0.5, "{flat:?}");
        let none = Axis::covering(f64::INFINITY, f64::NEG_INFINITY, 5, false);
        assert_eq!((none.lo, none.hi), (0.0, 1.0));
    }

    #[test]
    fn values_map_to_the_plot_area_ends() {
        let chart = Chart {
            left: 50,
            top: 10,
            width: 101,
            height: 51,
            x: Axis::covering(0.0, 10.0, 6, true),
            y: Axis::covering(0.0, 1.0, 6, false),
        };
        assert_eq!(
            (chart.px(0.0), chart.px(10.0), chart.px(5.0)),
            (50.0, 150.0, 100.0)
        );
        assert_eq!((chart.py(0.0), chart.py(1.0)), (60.0, 10.0));
        let style = TextStyle::new(1, [0, 0, 0]);
        let mut img = RgbImage::from_pixel(200, 100, Rgb([255, 255, 255]));
        chart.draw_axes(&mut img, style, "step", "loss");
        // Frame corners, and the label "10" under the last x tick (ink in its cells, below the frame).
        assert_eq!(img.get_pixel(50, 60).0, [90, 90, 90]);
        assert_eq!(img.get_pixel(150, 10).0, [90, 90, 90]);
        let below_last = (140..160).flat_map(|x| (63..74).map(move |y| (x, y)));
        assert!(
            below_last
                .filter(|&(x, y)| img.get_pixel(x, y).0 == [0, 0, 0])
                .count()
                > 10
        );
        // Nothing of the labels reaches into the plot area.
        assert!((51..150).all(|x| (11..60).all(|y| img.get_pixel(x, y).0 != [0, 0, 0])));
    }
}
