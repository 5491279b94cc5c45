//! The heatmap colour scale (a jet-like ramp from dark blue through cyan, yellow to dark red) and a bar that shows
//! it with its two ends named.

use image::{Rgb, RgbImage};

use crate::stroke::fill_rect;
use crate::text::{draw_text, TextStyle};

/// Colour of `v ∈ [0, 1]` on the heatmap scale (values outside are clamped, NaN is the low end).
pub fn heat(v: f64) -> Rgb<u8> {
    let v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) };
    let c = |x: f64| ((1.5 - (4.0 * v - x).abs()).clamp(0.0, 1.0) * 255.0) as u8;
    Rgb([c(3.0), c(2.0), c(1.0)])
}

/// A horizontal colour bar: `low` label, the ramp from low (left) to high (right), `high` label, on one line.
#[derive(Debug, Clone)]
pub struct ColourBar<'a> {
    /// Name of the left end.
    pub low: &'a str,
    /// Name of the right end.
    pub high: &'a str,
    /// Labels' size and colour.
    pub style: TextStyle,
    /// Length of the ramp in pixels.
    pub length: u32,
}

impl ColourBar<'_> {
    /// Height of the bar (that of its labels).
    pub fn height(&self) -> u32 {
        self.style.height() + 2 * self.style.scale
    }

    /// Width of labels and ramp together.
    pub fn width(&self) -> u32 {
        self.style.width(self.low)
            + self.style.width(self.high)
            + self.length
            + 6 * self.style.scale
    }

    /// Draws it with its top-left corner at (`x`, `y`); returns the ramp's first column.
    pub fn draw(&self, img: &mut RgbImage, x: i64, y: i64) -> i64 {
        let gap = i64::from(3 * self.style.scale);
        let text_y = y + i64::from(self.style.scale);
        let ramp =
            draw_text(img, x, text_y, self.low, self.style) - i64::from(self.style.scale) + gap;
        let h = self.height();
        for i in 0..self.length {
            let v = f64::from(i) / f64::from(self.length.max(2) - 1);
            fill_rect(img, ramp + i64::from(i), y, 1, h, heat(v));
        }
        draw_text(
            img,
            ramp + i64::from(self.length) + gap,
            text_y,
            self.high,
            self.style,
        );
        ramp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ramp_runs_from_blue_to_red() {
        let (low, mid, high) = (heat(0.0).0, heat(0.5).0, heat(1.0).0);
        assert!(low[2] > 100 && low[0] == 0, "{low:?}");
        assert!(high[0] > 100 && high[2] == 0, "{high:?}");
        assert!(mid[1] == 255, "{mid:?}");
        assert_eq!(heat(f64::NAN), heat(0.0));
        assert_eq!(heat(7.0), heat(1.0));
    }

    #[test]
    fn the_bar_shows_the_ramp_between_its_labels() {
        let style = TextStyle::new(1, [255, 255, 255]);
        let bar = ColourBar {
            low: "low",
            high: "high",
            style,
            length: 100,
        };
        let mut img = RgbImage::from_pixel(bar.width(), bar.height(), Rgb([0, 0, 0]));
        let ramp = bar.draw(&mut img, 0, 0) as u32;
        assert_eq!(ramp, style.width("low") + 3);
        assert_eq!(*img.get_pixel(ramp, 4), heat(0.0));
        assert_eq!(*img.get_pixel(ramp + 99, 4), heat(1.0));
        // Both labels are inked and the whole bar fits its width.
        let inked = |x0: u32, x1: u32| {
            (x0..x1)
                .flat_map(|x| (0..bar.height()).map(move |y| (x, y)))
                .filter(|&(x, y)| img.get_pixel(x, y).0 == [255, 255, 255])
                .count()
        };
        assert!(inked(0, ramp) > 10 && inked(ramp + 100, bar.width()) > 10);
    }
}
