//! Hand-computed pixel corners for literal boxes from the dataset READMEs.

use super::*;

fn area(m: &Map) -> f64 {
    m.data.iter().sum()
}

#[test]
fn vggss_box_truncates_each_corner() {
    // [0.403125, 0.253125, 0.6, 0.75]·224 = [90.3, 56.7, 134.4, 168] -> [90, 56, 134, 168].
    let b = pixel_box(
        [0.403125, 0.253125, 0.6, 0.75],
        BoxConvention::Xyxy01,
        BoxReading::AsAnnotated,
    );
    assert_eq!(b, [90, 56, 134, 168]);
    assert_eq!(area(&paint(&[b], GtMerge::Union)), 44.0 * 112.0);
}

#[test]
fn dirty_vggss_boxes_clip_or_vanish() {
    let sentinel = pixel_box(
        [-2.8823037615171176e16, 0.1, 0.5, 0.6],
        BoxConvention::Xyxy01,
        BoxReading::AsAnnotated,
    );
    // 0.1·224 = 22.4 -> 22; 0.5·224 = 112; 0.6·224 = 134.4 -> 134.
    assert_eq!(sentinel, [0, 22, 112, 134]);
    let degenerate = pixel_box(
        [0.5, 0.5, 0.5, 0.9],
        BoxConvention::Xyxy01,
        BoxReading::AsAnnotated,
    );
    assert_eq!(area(&paint(&[degenerate], GtMerge::Union)), 0.0);
    // Outside the frame entirely (after clipping both x corners are 224): empty.
    let outside = pixel_box(
        [1.2, 0.0, 1.5, 1.0],
        BoxConvention::Xyxy01,
        BoxReading::AsAnnotated,
    );
    assert_eq!(area(&paint(&[outside], GtMerge::Union)), 0.0);
}

#[test]
fn music_xywh_truncates_terms_before_adding() {
    // x = 0.328125·224 = 73.5 -> 73, w = 0.234375·224 = 52.5 -> 52, x2 = 125
    // (int(224·(x+w)) would be 126); y = 27.38 -> 27, h = 190.4 -> 190, y2 = 217.
    let raw = [0.328125, 0.12222222222222222, 0.234375, 0.85];
    let b = pixel_box(raw, BoxConvention::Xywh01, BoxReading::AsAnnotated);
    assert_eq!(b, [73, 27, 125, 217]);
    // AVGN's misreading as xyxy gives x2 = 52 < x1 = 73: an empty GT.
    let bug = pixel_box(raw, BoxConvention::Xywh01, BoxReading::XywhAsXyxy);
    assert_eq!(bug, [73, 27, 52, 190]);
    assert_eq!(area(&paint(&[bug], GtMerge::Union)), 0.0);
    // DSOL adds before truncating: 73.5 + 52.5 = 126; 27.377… + 190.4 = 217.77… -> 217.
    let dsol = pixel_box(raw, BoxConvention::Xywh01, BoxReading::XywhSummed);
    assert_eq!(dsol, [73, 27, 126, 217]);
}

#[test]
fn flickr_consensus_and_count_merge() {
    // 42·224/256 = 36.75 -> 36; 60 -> 52.5 -> 52; 180 -> 157.5 -> 157; 250 -> 218.75 -> 218.
    let b = pixel_box(
        [42.0, 60.0, 180.0, 250.0],
        BoxConvention::Pixel256,
        BoxReading::AsAnnotated,
    );
    assert_eq!(b, [36, 52, 157, 218]);
    // Two overlapping boxes: [0,0,4,2] and [2,0,6,2] -> overlap 2x2 weighs 1, the rest 0.5.
    let boxes = [[0, 0, 4, 2], [2, 0, 6, 2]];
    let c = paint(&boxes, GtMerge::Consensus);
    assert_eq!(c.at(0, 0), 0.5);
    assert_eq!(c.at(1, 3), 1.0);
    assert_eq!(area(&c), 4.0 * 0.5 + 4.0 + 4.0 * 0.5);
    let n = paint(&boxes, GtMerge::Count);
    assert_eq!(n.at(0, 2), 2.0);
    let u = paint(&boxes, GtMerge::Union);
    assert_eq!(area(&u), 12.0);
    // Three annotators all covering a pixel: min(1, 3/2) = 1.
    let three = paint(&[[0, 0, 1, 1]; 3], GtMerge::Consensus);
    assert_eq!(three.at(0, 0), 1.0);
}
