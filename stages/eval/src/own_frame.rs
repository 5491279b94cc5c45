//! AVGN's class-aware multi-source evaluation (`train.py::validate_multi`): source `j` is
//! localised on its own frame.
//!
//! For source `j` AVGN feeds source `j`'s frame (the pair's frame `j` on VGGSound-Duet, the one
//! shared frame on MUSIC-Duet) with the mixture audio and the class token of `j`; map `j` is
//! resized to 224x224, rescaled `s = (u + 1/τ)/(2/τ)`, min-max normalised, binarised with the
//! EZ-VSL median rule and scored against source `j`'s GT alone (its boxes, box count, on its
//! frame). Each entry also carries the swapped pixel AP `AP(y_true = B, y_score = G)` (AVGN's
//! PIAP) and the confidence of `s` with the sample's box count `nb` (AVGN passes the boxes of the
//! pair's first frame on VGGSound-Duet, and both boxes on MUSIC-Duet).
//!
//! AVGN keeps one evaluator per source index; the aggregates per source and their averages are
//! in [`crate::evaluator_aggregates`].

use crate::annotation::{Annotation, FrameLayout};
use crate::error::EvalError;
use crate::gt_map::{gt_map, GRID};
use crate::map::Map;
use crate::metrics::ciou::ciou;
use crate::protocol::Protocol;
use crate::scoring::{one_map_per_source, pixel_ap, EntryScore, SampleScore};
use crate::upsample::resize;

/// `nb` of AVGN's evaluator: boxes of the first frame of a pair, or of the whole shared frame.
fn gt_boxes(ann: &Annotation) -> usize {
    match ann.layout {
        FrameLayout::OnePerSource => ann.sources.first().map_or(0, |s| s.raw_boxes.len()),
        FrameLayout::Shared => ann.sources.iter().map(|s| s.raw_boxes.len()).sum(),
    }
}

/// Scores the maps of one sample, map `j` for source `j`.
pub(crate) fn score(
    maps: &[Map],
    ann: &Annotation,
    p: &Protocol,
    out: &mut SampleScore,
) -> Result<(), EvalError> {
    one_map_per_source(maps, ann, p, "own-frame")?;
    let nb = gt_boxes(ann);
    for (j, (m, src)) in maps.iter().zip(&ann.sources).enumerate() {
        let u = resize(m, GRID, GRID, p.upsample)?;
        let s = p.normalisation.apply(&u);
        let b = p.binarisation.apply(&s);
        let g = gt_map(&[src], ann.convention, p.box_reading, p.gt_merge);
        let (ap, dropped) = pixel_ap(p.pixel_ap, &g, &b, &s)?;
        out.ap_dropped += dropped;
        out.entries.push(EntryScore {
            ciou: ciou(&b, &g),
            ap,
            iou: None,
            detection: p.detection.as_ref().map(|d| d.detect(&u, nb)),
            slot: Some(j),
            map: Some(j),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::{source, BoxConvention};

    fn pair() -> Annotation {
        Annotation {
            id: "a+b".into(),
            sources: vec![
                source(
                    Some("dog".into()),
                    vec![[0.0, 0.0, 0.5, 1.0], [0.0, 0.0, 0.25, 0.5]],
                    BoxConvention::Xyxy01,
                ),
                source(
                    Some("cat".into()),
                    vec![[0.5, 0.0, 1.0, 1.0]],
                    BoxConvention::Xyxy01,
                ),
            ],
            convention: BoxConvention::Xyxy01,
            layout: FrameLayout::OnePerSource,
            silent_same_class: false,
        }
    }

    fn blank() -> SampleScore {
        SampleScore::empty("a+b", 2)
    }

    /// A 224x224 `cos/τ` map: `hi` on the columns `x0..x1`, `lo` elsewhere.
    fn columns(x0: usize, x1: usize, hi: f64, lo: f64) -> Map {
        let data = (0..GRID * GRID)
            .map(|i| {
                if (x0..x1).contains(&(i % GRID)) {
                    hi
                } else {
                    lo
                }
            })
            .collect();
        Map::from_vec(GRID, GRID, data).unwrap()
    }

    #[test]
    fn each_map_is_scored_on_its_own_frame_against_its_own_source() {
        let p = Protocol::avgn_multi();
        let ann = pair();
        // Map 0 lights the left half (= source 0's union), map 1 the right half (= source 1).
        let maps = [columns(0, 112, 20.0, -20.0), columns(112, 224, 20.0, -20.0)];
        let mut out = blank();
        score(&maps, &ann, &p, &mut out).unwrap();
        // Source 0's count GT has 2s on its second box: Σ(B·G) = Σ G, nothing outside -> 1.
        assert_eq!(out.entries[0].ciou, 1.0);
        assert_eq!(out.entries[1].ciou, 1.0);
        // nb is the first frame's box count for both entries.
        let d = out.entries[1].detection.unwrap();
        assert_eq!(d.gt_boxes, 2);
        // Top quarter of s all at (20 + 1/τ)/(2/τ) = 0.5 + 0.3 = 0.8.
        assert!((d.confidence - (20.0 + 1.0 / 0.03) / (2.0 / 0.03)).abs() < 1e-12);
        // PIAP swapped: labels B, scores G; B = G > 0 exactly -> 1.
        assert_eq!(out.entries[1].ap, Some(1.0));
        // Swapped maps miss entirely.
        let mut out = blank();
        score(&[maps[1].clone(), maps[0].clone()], &ann, &p, &mut out).unwrap();
        assert_eq!((out.entries[0].ciou, out.entries[1].ciou), (0.0, 0.0));
        assert!(score(&maps[..1], &ann, &p, &mut blank()).is_err());
    }
}
