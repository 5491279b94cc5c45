//! Straight lines and filled rectangles, clipped to the picture.

use image::{Rgb, RgbImage};

/// Colours the pixel at (`x`, `y`) when it lies on the picture.
pub fn dot(img: &mut RgbImage, x: i64, y: i64, colour: Rgb<u8>) {
    if x >= 0 && y >= 0 && x < i64::from(img.width()) && y < i64::from(img.height()) {
        img.put_pixel(x as u32, y as u32, colour);
    }
}

/// Fills the `w × h` rectangle whose top-left pixel is (`x`, `y`).
pub fn fill_rect(img: &mut RgbImage, x: i64, y: i64, w: u32, h: u32, colour: Rgb<u8>) {
    for yy in y..y + i64::from(h) {
        for xx in x..x + i64::from(w) {
            dot(img, xx, yy, colour);
        }
    }
}

/// A line from `a` to `b` (pixel coordinates, pixel centres at integers), `width` pixels thick.
pub fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), width: u32, colour: Rgb<u8>) {
    if ![a.0, a.1, b.0, b.1].iter().all(|v| v.is_finite()) {
        return;
    }
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()).ceil() as usize).max(1);
    let back = i64::from(width.max(1) - 1) / 2;
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let x = (a.0 + t * (b.0 - a.0)).round() as i64 - back;
        let y = (a.1 + t * (b.1 - a.1)).round() as i64 - back;
        fill_rect(img, x, y, width.max(1), width.max(1), colour);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_join_their_ends_and_stay_on_the_picture() {
        let black = Rgb([0, 0, 0]);
        let mut img = RgbImage::from_pixel(10, 10, Rgb([255, 255, 255]));
        line(&mut img, (1.0, 1.0), (8.0, 8.0), 1, black);
        let inked: Vec<(u32, u32)> = img
            .enumerate_pixels()
            .filter(|p| *p.2 == black)
            .map(|p| (p.0, p.1))
            .collect();
        assert_eq!(inked, (1..=8).map(|i| (i, i)).collect::<Vec<_>>());
        // Off the picture: clipped, no panic.
        line(&mut img, (-5.0, 3.0), (20.0, 3.0), 3, black);
        assert!((0..10).all(|x| (2..=4).all(|y| *img.get_pixel(x, y) == black)));
        line(&mut img, (0.0, 0.0), (f64::NAN, 1.0), 1, Rgb([9, 9, 9]));
        assert!(img.pixels().all(|p| p.0 != [9, 9, 9]));
    }
}
