//! The gallery picture `<data>/eval/gallery.png` (the supplementary's Figure 1 layout): one row per sample,
//! labelled on the left with its sample id, the classes of its sources (each in the colour of its boxes) and
//! its mean cIoU; then the frame with its ground-truth boxes, then each predicted map as a heatmap over the frame
//! with the same boxes. Rows with a green edge are the best samples by mean cIoU, rows with a red edge the worst
//! (failure cases). Under the rows, one colour bar shows the heatmap's scale from low to high.
//!
//! Tiles are `tile` pixels tall and keep the frame's aspect (a pair mosaic, two frames stacked, is half as wide);
//! boxes are normalised to the frame, so they land on the same objects in every tile. Maps are upsampled
//! bilinearly (half-pixel centres) to the tile, min–max scaled on their own and coloured with the jet-like ramp of
//! `oassl_picture::colour_bar`, then blended 1:1 with the frame. A sample without any predicted map (IOI found no
//! source) shows a grey tile. Text uses `oassl_picture`'s bitmap font.

use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use oassl_eval::{resize, Map, Upsample};
use oassl_picture::colour_bar::{heat, ColourBar};
use oassl_picture::text::{draw_text, TextStyle};

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
    /// The text left of the tiles (none for a clip without ground truth).
    pub label: Option<RowLabel>,
}

/// The text of a gallery row.
#[derive(Debug, Clone, PartialEq)]
pub struct RowLabel {
    /// Sample id.
    pub id: String,
    /// Class of each source, in source order (the order of the box colours); `None` where the annotation names
    /// no class.
    pub classes: Vec<Option<String>>,
    /// Mean cIoU over the sample's scored entries.
    pub ciou: Option<f64>,
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
const GAP: u32 = 2;
const BACKGROUND: Rgb<u8> = Rgb([40, 40, 40]);
const TEXT: [u8; 3] = [235, 235, 235];
/// Longest line of a row label, in characters (longer ones are cut).
const LABEL_CHARS: usize = 28;

/// Text size for tiles of `tile` pixels: one font cell per pixel up to 111-pixel tiles, larger above.
fn text_style(tile: u32) -> TextStyle {
    TextStyle::new(((tile + 32) / 96).clamp(1, 3), TEXT)
}

/// Room around text, in pixels.
fn pad(style: TextStyle) -> u32 {
    3 * style.scale
}

/// Height of the colour bar band under the rows, for tiles of `tile` pixels.
pub fn colour_bar_band(tile: u32) -> u32 {
    let style = text_style(tile);
    bar(style, 0).height() + 2 * pad(style)
}

fn bar(style: TextStyle, length: u32) -> ColourBar<'static> {
    ColourBar {
        low: "low",
        high: "high",
        style,
        length,
    }
}

/// Width of a tile of `frame` at height `tile`: the frame's aspect, within 1/4 and 4 times square.
fn tile_width(frame: &RgbImage, tile: u32) -> u32 {
    let (w, h) = frame.dimensions();
    let aspect = f64::from(w.max(1)) / f64::from(h.max(1));
    ((f64::from(tile) * aspect).round() as u32).clamp((tile / 4).max(1), 4 * tile)
}

/// The three lines of a label, each as pieces of text and their colours.
fn label_lines(label: &RowLabel) -> [Vec<(String, [u8; 3])>; 3] {
    let mut classes = Vec::new();
    for (i, class) in label.classes.iter().enumerate() {
        if i > 0 {
            classes.push((", ".to_string(), TEXT));
        }
        let name = class.clone().unwrap_or_else(|| "(no class)".into());
        classes.push((name, BOX_COLOURS[i % BOX_COLOURS.len()]));
    }
    if classes.is_empty() {
        classes.push(("(no source)".into(), TEXT));
    }
    let ciou = match label.ciou {
        // `+ 0.0` turns a -0 (a mean of zeros may be one) into 0, which prints without a sign.
        Some(c) => format!("cIoU {:.3}", c.max(0.0) + 0.0),
        None => "cIoU -".into(),
    };
    [vec![(label.id.clone(), TEXT)], classes, vec![(ciou, TEXT)]]
}

/// The pieces of a line, cut to [`LABEL_CHARS`] characters in all (`..` marks a cut).
fn fit_line(pieces: &[(String, [u8; 3])]) -> Vec<(String, [u8; 3])> {
    let total: usize = pieces.iter().map(|(t, _)| t.chars().count()).sum();
    if total <= LABEL_CHARS {
        return pieces.to_vec();
    }
    let mut left = LABEL_CHARS - 2;
    let mut out = Vec::new();
    for (text, colour) in pieces {
        let kept: String = text.chars().take(left).collect();
        left -= kept.chars().count();
        if !kept.is_empty() {
            out.push((kept, *colour));
        }
        if left == 0 {
            break;
        }
    }
    out.push(("..".into(), TEXT));
    out
}

fn line_text(pieces: &[(String, [u8; 3])]) -> String {
    pieces.iter().map(|(t, _)| t.as_str()).collect()
}

/// Width of the label column: the longest line of any row plus padding; 0 when no row has a label.
fn label_width(rows: &[GalleryRow], style: TextStyle) -> u32 {
    rows.iter()
        .filter_map(|r| r.label.as_ref())
        .flat_map(label_lines)
        .map(|line| style.width(&line_text(&fit_line(&line))) + 2 * pad(style))
        .max()
        .unwrap_or(0)
}

fn draw_label(img: &mut RgbImage, x: u32, y: u32, label: &RowLabel, style: TextStyle) {
    let mut top = i64::from(y + pad(style));
    for line in label_lines(label) {
        let mut left = i64::from(x + pad(style));
        for (text, colour) in fit_line(&line) {
            left = draw_text(img, left, top, &text, style.in_colour(colour));
        }
        top += i64::from(style.line_height());
    }
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
        let colour = heat(if v.is_finite() { v } else { 0.0 }).0;
        let px = frame.get_pixel(x, y).0;
        Rgb([0, 1, 2].map(|c| ((px[c] as u16 + colour[c] as u16) / 2) as u8))
    })
}

/// Renders the rows with tiles `tile` pixels tall, and the colour bar under them.
pub fn render(rows: &[GalleryRow], tile: u32) -> RgbImage {
    let style = text_style(tile);
    let labels = label_width(rows, style);
    let row_width = |row: &GalleryRow| {
        let columns = 1 + row.maps.len().max(1) as u32;
        EDGE + labels + columns * (tile_width(&row.frame, tile) + GAP)
    };
    let shortest_bar = bar(style, 48 * style.scale).width() + 2 * pad(style);
    let width = rows
        .iter()
        .map(row_width)
        .chain([EDGE + 2 * (tile + GAP), shortest_bar])
        .max()
        .unwrap_or(shortest_bar);
    let rows_height = rows.len() as u32 * (tile + GAP);
    let height = rows_height + colour_bar_band(tile);
    let mut out = RgbImage::from_pixel(width, height, BACKGROUND);
    for (r, row) in rows.iter().enumerate() {
        let top = r as u32 * (tile + GAP);
        let edge = match row.kind {
            RowKind::Success => [30, 170, 30],
            RowKind::Failure => [200, 30, 30],
            RowKind::Unscored => [140, 140, 140],
        };
        for y in top..top + tile {
            for x in 0..EDGE - GAP {
                out.put_pixel(x, y, Rgb(edge));
            }
        }
        if let Some(label) = &row.label {
            draw_label(&mut out, EDGE, top, label, style);
        }
        let tw = tile_width(&row.frame, tile);
        let frame = imageops::resize(&row.frame, tw, tile, FilterType::Triangle);
        let mut first = frame.clone();
        draw_boxes(&mut first, &row.boxes);
        let left = |column: u32| i64::from(EDGE + labels + column * (tw + GAP));
        imageops::replace(&mut out, &first, left(0), i64::from(top));
        if row.maps.is_empty() {
            let grey = RgbImage::from_pixel(tw, tile, Rgb([110, 110, 110]));
            imageops::replace(&mut out, &grey, left(1), i64::from(top));
        }
        for (m, map) in row.maps.iter().enumerate() {
            let mut t = overlay(&frame, map);
            draw_boxes(&mut t, &row.boxes);
            imageops::replace(&mut out, &t, left(1 + m as u32), i64::from(top));
        }
    }
    let p = pad(style);
    let labels_only = bar(style, 0).width();
    let length = (width - 2 * p - labels_only).min(160 * style.scale);
    bar(style, length).draw(&mut out, i64::from(p), i64::from(rows_height + p));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(id: &str, classes: &[&str], ciou: f64) -> Option<RowLabel> {
        Some(RowLabel {
            id: id.into(),
            classes: classes.iter().map(|c| Some(c.to_string())).collect(),
            ciou: Some(ciou),
        })
    }

    #[test]
    fn layout_has_a_column_per_map_a_row_per_sample_and_one_colour_bar() {
        // Green, so no blend of it with a map colour is a colour of the bar.
        let frame = RgbImage::from_pixel(50, 40, Rgb([0, 200, 0]));
        let hot = Map::from_vec(2, 2, vec![0.0, 0.0, 0.0, 1.0]).unwrap();
        let rows = vec![
            GalleryRow {
                frame: frame.clone(),
                maps: vec![hot.clone(), hot],
                boxes: vec![vec![[0.5, 0.5, 1.0, 1.0]]],
                kind: RowKind::Success,
                label: label("test_single/000001", &["dog"], 0.425),
            },
            GalleryRow {
                frame,
                maps: vec![],
                boxes: vec![],
                kind: RowKind::Failure,
                label: label("test_single/000002", &["cat"], 0.0),
            },
        ];
        let img = render(&rows, 32);
        let style = text_style(32);
        let labels = label_width(&rows, style);
        // "test_single/000001" is the longest line: 18 glyphs.
        assert_eq!(labels, 18 * 6 - 1 + 6);
        // Tiles keep the 5:4 frame: 40 × 32.
        assert_eq!(
            img.dimensions(),
            (EDGE + labels + 3 * 42, 2 * 34 + colour_bar_band(32))
        );
        // The hot corner of the first map is red-ish, the cold corner blue-ish.
        let map0 = EDGE + labels + 42;
        let hot_px = img.get_pixel(map0 + 35, 20).0;
        let cold_px = img.get_pixel(map0 + 3, 3).0;
        assert!(
            hot_px[0] > hot_px[2] && cold_px[2] > cold_px[0],
            "{hot_px:?} {cold_px:?}"
        );
        // Edges: green, then red.
        assert_eq!(img.get_pixel(1, 10).0, [30, 170, 30]);
        assert_eq!(img.get_pixel(1, 34 + 10).0, [200, 30, 30]);
        // One colour bar, under the rows: the ends of the ramp appear there and nowhere else.
        let (low, high) = (heat(0.0).0, heat(1.0).0);
        for (x, y, p) in img.enumerate_pixels() {
            if p.0 == low || p.0 == high {
                assert!(y >= 2 * 34, "ramp colour at ({x}, {y})");
            }
        }
        let band: Vec<[u8; 3]> = (0..img.width())
            .map(|x| img.get_pixel(x, 2 * 34 + 6).0)
            .collect();
        assert!(band.contains(&low) && band.contains(&high));
    }

    #[test]
    fn labels_show_id_classes_and_ciou() {
        let row = |id: &str, ciou: f64| GalleryRow {
            frame: RgbImage::from_pixel(64, 64, Rgb([90, 90, 90])),
            maps: vec![Map::from_vec(1, 1, vec![1.0]).unwrap()],
            boxes: vec![vec![[0.1, 0.1, 0.4, 0.4]], vec![[0.5, 0.5, 0.9, 0.9]]],
            kind: RowKind::Success,
            label: label(id, &["violin", "cello"], ciou),
        };
        let style = text_style(64);
        let img = render(&[row("test_duet/000007", 0.5)], 64);
        // Each line is drawn as the font draws it alone: id, classes in their box colours, cIoU.
        let expect = |text: &str, x: u32, line: u32, colour: [u8; 3]| {
            let s = style.in_colour(colour);
            let mut alone = RgbImage::from_pixel(s.width(text), s.height(), BACKGROUND);
            draw_text(&mut alone, 0, 0, text, s);
            let y = pad(style) + line * style.line_height();
            for (dx, dy, p) in alone.enumerate_pixels() {
                assert_eq!(img.get_pixel(x + dx, y + dy), p, "{text:?} at ({dx}, {dy})");
            }
        };
        let x = EDGE + pad(style);
        expect("test_duet/000007", x, 0, TEXT);
        expect("violin", x, 1, BOX_COLOURS[0]);
        expect(
            "cello",
            x + style.width("violin, ") + style.scale,
            1,
            BOX_COLOURS[1],
        );
        expect("cIoU 0.500", x, 2, TEXT);
        // Another cIoU changes the label and nothing else.
        let other = render(&[row("test_duet/000007", 0.25)], 64);
        assert_eq!(other.dimensions(), img.dimensions());
        let labels = label_width(&[row("x", 0.0)], style);
        for (x, y, p) in img.enumerate_pixels() {
            if p != other.get_pixel(x, y) {
                assert!(
                    x < EDGE + labels && y >= 2 * style.line_height(),
                    "({x}, {y})"
                );
            }
        }
        assert!(img.pixels().zip(other.pixels()).any(|(a, b)| a != b));
    }

    #[test]
    fn a_pair_mosaic_keeps_its_aspect_and_its_boxes_line_up() {
        // Two 32 × 32 frames stacked: black on top, white below; the second source boxed in the lower frame.
        let mosaic = RgbImage::from_fn(32, 64, |_, y| {
            if y < 32 {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let row = GalleryRow {
            frame: mosaic,
            maps: vec![],
            boxes: vec![vec![[0.0, 0.0, 0.5, 0.25]], vec![[0.5, 0.75, 1.0, 1.0]]],
            kind: RowKind::Unscored,
            label: None,
        };
        let img = render(&[row], 64);
        let left = EDGE;
        // No label column; the tile is 32 wide and 64 tall, the grey no-map tile beside it.
        assert_eq!(*img.get_pixel(left + 24, 8), Rgb([0, 0, 0]));
        assert_eq!(*img.get_pixel(left + 8, 40), Rgb([255, 255, 255]));
        assert_eq!(*img.get_pixel(left + 34 + 10, 10), Rgb([110, 110, 110]));
        // Source 2's box: corners at (16, 48) and (31, 63) of the tile, in its colour.
        let magenta = Rgb(BOX_COLOURS[1]);
        for (x, y) in [(16, 48), (31, 48), (16, 63), (31, 63), (24, 48), (16, 56)] {
            assert_eq!(*img.get_pixel(left + x, y), magenta, "({x}, {y})");
        }
        assert_ne!(*img.get_pixel(left + 24, 56), magenta);
        // Source 1's box at the top-left of the upper frame.
        assert_eq!(*img.get_pixel(left, 16), Rgb(BOX_COLOURS[0]));
        assert_eq!(img.height(), 66 + colour_bar_band(64));
    }

    #[test]
    fn long_lines_are_cut() {
        let long = label(
            &"x".repeat(40),
            &["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"],
            1.0,
        )
        .unwrap();
        let [id, classes, _] = label_lines(&long);
        assert_eq!(line_text(&fit_line(&id)), format!("{}..", "x".repeat(26)));
        let cut = fit_line(&classes);
        assert_eq!(line_text(&cut), "a, b, c, d, e, f, g, h, i,..");
        assert_eq!(cut[2], ("b".to_string(), BOX_COLOURS[1]));
    }
}
