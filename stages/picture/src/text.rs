//! Text drawn with the [`glyphs`](crate::glyphs) font at an integer scale: each glyph cell is a
//! `scale × scale` square of ink, glyphs advance by six cells (one blank column between them).

use image::{Rgb, RgbImage};

use crate::glyphs::{inked, GLYPH_HEIGHT, GLYPH_WIDTH};

/// Cells from one glyph's left edge to the next one's.
pub const ADVANCE: u32 = GLYPH_WIDTH + 1;

/// Size and colour of drawn text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextStyle {
    /// Pixels per glyph cell (at least 1).
    pub scale: u32,
    /// Ink colour.
    pub colour: Rgb<u8>,
}

impl TextStyle {
    /// Text of `scale` in `colour`.
    pub fn new(scale: u32, colour: [u8; 3]) -> Self {
        Self {
            scale: scale.max(1),
            colour: Rgb(colour),
        }
    }

    /// The same size in another colour.
    pub fn in_colour(self, colour: [u8; 3]) -> Self {
        Self {
            colour: Rgb(colour),
            ..self
        }
    }

    /// Width of `text` on one line, without the blank column after its last glyph.
    pub fn width(&self, text: &str) -> u32 {
        match text.chars().count() as u32 {
            0 => 0,
            n => (n * ADVANCE - 1) * self.scale,
        }
    }

    /// Height of a line of glyphs.
    pub fn height(&self) -> u32 {
        GLYPH_HEIGHT * self.scale
    }

    /// Distance between the tops of two lines (one blank cell under the descenders).
    pub fn line_height(&self) -> u32 {
        (GLYPH_HEIGHT + 1) * self.scale
    }

    /// `text` cut to at most `chars` characters, the last two replaced by `..` when cut.
    pub fn fit(text: &str, chars: usize) -> String {
        if text.chars().count() <= chars {
            return text.to_string();
        }
        let kept: String = text.chars().take(chars.saturating_sub(2)).collect();
        format!("{kept}..")
    }
}

/// Draws `text` with its top-left corner at (`x`, `y`); ink off the image is dropped. Returns the x just after it
/// (where a following piece of the same line starts).
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, style: TextStyle) -> i64 {
    draw_glyphs(img, text, style, |gx, gy| (x + gx, y + gy));
    x + i64::from(style.width(text) + style.scale)
}

/// Draws `text` centred on `centre_x`, its top at `y`.
pub fn draw_text_centred(img: &mut RgbImage, centre_x: u32, y: u32, text: &str, style: TextStyle) {
    let x = i64::from(centre_x) - i64::from(style.width(text) / 2);
    draw_text(img, x, i64::from(y), text, style);
}

/// Draws `text` turned a quarter turn anticlockwise (read from bottom to top), its first glyph's bottom-left
/// corner at (`x`, `y`): for an axis title beside a vertical axis.
pub fn draw_text_upward(img: &mut RgbImage, x: i64, y: i64, text: &str, style: TextStyle) {
    draw_glyphs(img, text, style, |gx, gy| (x + gy, y - gx));
}

/// Inks every cell of every glyph at `place(x, y)`, with (x, y) the pixel's offset along and across the line.
fn draw_glyphs(
    img: &mut RgbImage,
    text: &str,
    style: TextStyle,
    place: impl Fn(i64, i64) -> (i64, i64),
) {
    let s = style.scale;
    for (i, c) in text.chars().enumerate() {
        let left = i as u32 * ADVANCE;
        for cy in 0..GLYPH_HEIGHT {
            for cx in (0..GLYPH_WIDTH).filter(|&cx| inked(c, cx, cy)) {
                for dy in 0..s {
                    for dx in 0..s {
                        let along = i64::from((left + cx) * s + dx);
                        let (px, py) = place(along, i64::from(cy * s + dy));
                        if px >= 0
                            && py >= 0
                            && px < i64::from(img.width())
                            && py < i64::from(img.height())
                        {
                            img.put_pixel(px as u32, py as u32, style.colour);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INK: [u8; 3] = [0, 0, 0];
    const PAPER: Rgb<u8> = Rgb([255, 255, 255]);

    fn drawn(text: &str, scale: u32) -> RgbImage {
        let style = TextStyle::new(scale, INK);
        let mut img = RgbImage::from_pixel(style.width(text) + 4, style.height() + 4, PAPER);
        draw_text(&mut img, 2, 2, text, style);
        img
    }

    #[test]
    fn a_drawn_string_inks_exactly_its_glyph_cells() {
        let (text, scale) = ("Hi 7", 3);
        let img = drawn(text, scale);
        assert_eq!(
            img.dimensions(),
            ((4 * ADVANCE - 1) * 3 + 4, GLYPH_HEIGHT * 3 + 4)
        );
        for (x, y, px) in img.enumerate_pixels() {
            let (cx, cy) = ((x as i64 - 2).div_euclid(3), (y as i64 - 2).div_euclid(3));
            let expected = cx >= 0 && cy >= 0 && {
                let (i, col) = ((cx as u32) / ADVANCE, (cx as u32) % ADVANCE);
                text.chars()
                    .nth(i as usize)
                    .is_some_and(|c| inked(c, col, cy as u32))
            };
            assert_eq!(*px == Rgb(INK), expected, "pixel ({x}, {y})");
        }
        // 'H' has ink in both side columns of its middle row, the blank ' ' none.
        assert_eq!(*img.get_pixel(2, 2 + 3 * 3), Rgb(INK));
        assert_eq!(*img.get_pixel(2 + 4 * 3, 2 + 3 * 3), Rgb(INK));
        let blank = 2 * ADVANCE * 3 + 2;
        assert!((blank..blank + 5 * 3)
            .all(|x| (0..img.height()).all(|y| *img.get_pixel(x, y) == PAPER)));
    }

    #[test]
    fn different_strings_draw_differently() {
        let (a, b) = (drawn("loss 0.25", 1), drawn("loss 0.26", 1));
        assert_eq!(a.dimensions(), b.dimensions());
        let differing = a.pixels().zip(b.pixels()).filter(|(p, q)| p != q).count();
        assert!(differing > 0 && differing < 35, "{differing} pixels differ");
        assert_ne!(drawn("step", 2).as_raw(), drawn("stop", 2).as_raw());
    }

    #[test]
    fn upward_text_is_the_line_turned_a_quarter() {
        let style = TextStyle::new(2, INK);
        let flat = drawn("ab", 2);
        let (w, h) = (style.width("ab"), style.height());
        let mut up = RgbImage::from_pixel(h + 4, w + 4, PAPER);
        draw_text_upward(&mut up, 2, i64::from(w) + 1, "ab", style);
        for along in 0..w {
            for across in 0..h {
                assert_eq!(
                    flat.get_pixel(2 + along, 2 + across),
                    up.get_pixel(2 + across, w + 1 - along),
                    "({along}, {across})"
                );
            }
        }
    }

    #[test]
    fn long_text_is_cut_with_two_dots() {
        assert_eq!(TextStyle::fit("test_duet/000012", 20), "test_duet/000012");
        assert_eq!(TextStyle::fit("abcdefgh", 6), "abcd..");
        assert_eq!(TextStyle::new(2, INK).width(""), 0);
        assert_eq!(TextStyle::new(2, INK).width("ab"), 22);
    }
}
