//! DSOL's class-aware evaluation (`music-exp/eval_duet.py`): the model gives one map per DSOL
//! class and the GT classes of a frame select which maps are scored.
//!
//! For a frame with at least one box (frames without one are skipped):
//! * the boxes are grouped by class (`category_id`, in order of first appearance); each group is
//!   painted as one union GT map (DSOL's `int(y):int(y+h)` rounding, [`BoxReading::XywhSummed`]);
//! * the map of class `c` (index of `c` in [`DSOL_CLASSES`]) is resized to 224x224 and
//!   binarised with the protocol's rule (`u > 0.2·max u`), and scored by cIoU against its group;
//! * the frame's entry is the mean of its classes' cIoUs (`np.mean`);
//! * NSA: each map of a class without a box (a silent class) contributes the fraction of its
//!   pixels with `u ≤ 0.2` ([`NSA_THRESHOLD`], absolute, on the resized map), and the frame's NSA
//!   is their mean; the reported NSA is the mean over the scored frames.
//!
//! DSOL maps clusters to classes with a correspondence matrix (`corr.npy`) and sums the cluster
//! maps of a class; the input here is already per class, in [`DSOL_CLASSES`] order.
//!
//! [`BoxReading::XywhSummed`]: crate::gt_map::BoxReading::XywhSummed

use crate::annotation::{Annotation, Source};
use crate::error::EvalError;
use crate::gt_map::{gt_map, GRID};
use crate::map::Map;
use crate::metrics::ciou::ciou;
use crate::protocol::Protocol;
use crate::scoring::{incompatible, EntryScore, SampleScore};
use crate::summation::numpy_mean;
use crate::upsample::resize;

/// DSOL's class order: its `keylist`, sorted (`eval_duet.py`).
pub const DSOL_CLASSES: [&str; 11] = [
    "accordion",
    "acoustic_guitar",
    "cello",
    "clarinet",
    "erhu",
    "flute",
    "saxophone",
    "trumpet",
    "tuba",
    "violin",
    "xylophone",
];

/// DSOL's fixed NSA threshold on the silent classes' maps (`thresvalue = 0.2`).
pub const NSA_THRESHOLD: f64 = 0.2;

/// The sounding classes of a frame: class index and its sources, in order of first appearance.
fn sounding_classes<'a>(
    ann: &'a Annotation,
    p: &Protocol,
) -> Result<Vec<(usize, Vec<&'a Source>)>, EvalError> {
    let mut groups: Vec<(usize, Vec<&Source>)> = Vec::new();
    for src in &ann.sources {
        let name = src.class.as_deref().unwrap_or("");
        let Some(index) = DSOL_CLASSES.iter().position(|c| *c == name) else {
            let reason = format!("class `{name}` is not one of DSOL's {DSOL_CLASSES:?}");
            return Err(incompatible(&ann.id, p, reason));
        };
        match groups.iter_mut().find(|(i, _)| *i == index) {
            Some((_, members)) => members.push(src),
            None => groups.push((index, vec![src])),
        }
    }
    Ok(groups)
}

/// Scores one frame with at least one box; `maps` are its class maps in [`DSOL_CLASSES`] order.
pub(crate) fn score(
    maps: &[Map],
    ann: &Annotation,
    p: &Protocol,
    out: &mut SampleScore,
) -> Result<(), EvalError> {
    if maps.len() != DSOL_CLASSES.len() {
        let reason = format!(
            "class-map protocol needs one map per DSOL class ({}), got {}",
            DSOL_CLASSES.len(),
            maps.len()
        );
        return Err(incompatible(&ann.id, p, reason));
    }
    let groups = sounding_classes(ann, p)?;
    let resized = |i: usize| -> Result<Map, EvalError> {
        Ok(p.normalisation
            .apply(&resize(&maps[i], GRID, GRID, p.upsample)?))
    };
    let mut cious = Vec::with_capacity(groups.len());
    for (index, sources) in &groups {
        let u = resized(*index)?;
        let g = gt_map(sources, ann.convention, p.box_reading, p.gt_merge);
        cious.push(ciou(&p.binarisation.apply(&u), &g));
    }
    let mut silent = Vec::with_capacity(DSOL_CLASSES.len());
    for index in (0..DSOL_CLASSES.len()).filter(|i| groups.iter().all(|(g, _)| g != i)) {
        let u = resized(index)?;
        let quiet = u.data.iter().filter(|&&v| v <= NSA_THRESHOLD).count();
        silent.push(quiet as f64 / (GRID * GRID) as f64);
    }
    out.entries.push(EntryScore {
        ciou: numpy_mean(&cious),
        ap: None,
        iou: None,
        detection: None,
        slot: Some(0),
        map: None,
    });
    out.nsa = Some(numpy_mean(&silent));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::{source, BoxConvention, FrameLayout};

    fn frame(boxes: &[(&str, [f64; 4])]) -> Annotation {
        Annotation {
            id: "clip/frame_001/00001.jpg".into(),
            sources: boxes
                .iter()
                .map(|(c, b)| source(Some(c.to_string()), vec![*b], BoxConvention::Xywh01))
                .collect(),
            convention: BoxConvention::Xywh01,
            layout: FrameLayout::Shared,
            silent_same_class: false,
        }
    }

    fn blank(id: &str) -> SampleScore {
        SampleScore::empty(id, 11)
    }

    /// 224x224 class maps, all 0.1 except the listed ones, which are 1 on a pixel rectangle.
    fn maps(hot: &[(usize, [usize; 4])]) -> Vec<Map> {
        (0..11)
            .map(|i| {
                let mut m = Map::from_vec(GRID, GRID, vec![0.1; GRID * GRID]).unwrap();
                for (_, [x1, y1, x2, y2]) in hot.iter().filter(|(c, _)| *c == i) {
                    for y in *y1..*y2 {
                        for x in *x1..*x2 {
                            m.data[y * GRID + x] = 1.0;
                        }
                    }
                }
                m
            })
            .collect()
    }

    #[test]
    fn each_sounding_class_is_scored_with_its_own_map() {
        // Cello (index 2) at x 0..56, guitar (index 1) at x 112..168, both full height.
        let ann = frame(&[
            ("cello", [0.0, 0.0, 0.25, 1.0]),
            ("acoustic_guitar", [0.5, 0.0, 0.25, 1.0]),
        ]);
        let p = Protocol::dsol();
        // The cello map is right; the guitar map covers half its box: cIoU 0.5.
        let m = maps(&[(2, [0, 0, 56, 224]), (1, [112, 0, 140, 224])]);
        let mut out = blank(&ann.id);
        score(&m, &ann, &p, &mut out).unwrap();
        assert_eq!(out.entries.len(), 1);
        assert_eq!(out.entries[0].ciou, 0.75);
        // Nine silent maps, all 0.1 <= 0.2: NSA 1.
        assert_eq!(out.nsa, Some(1.0));
        // Swapping the two class maps scores both 0.
        let swapped = maps(&[(1, [0, 0, 56, 224]), (2, [112, 0, 140, 224])]);
        let mut out = blank(&ann.id);
        score(&swapped, &ann, &p, &mut out).unwrap();
        assert_eq!(out.entries[0].ciou, 0.0);
    }

    #[test]
    fn silent_maps_above_threshold_lower_nsa_and_wrong_inputs_are_refused() {
        let ann = frame(&[("flute", [0.0, 0.0, 0.5, 0.5])]);
        let p = Protocol::dsol();
        // Violin (index 9) lights a quarter of the frame at 1.0: its NSA is 0.75, the others 1.
        let m = maps(&[(5, [0, 0, 112, 112]), (9, [0, 0, 112, 112])]);
        let mut out = blank(&ann.id);
        score(&m, &ann, &p, &mut out).unwrap();
        assert_eq!(out.entries[0].ciou, 1.0);
        assert_eq!(out.nsa, Some((9.0 + 0.75) / 10.0));
        assert!(score(&m[..10], &ann, &p, &mut blank("x")).is_err());
        let unknown = frame(&[("bagpipe", [0.0, 0.0, 0.5, 0.5])]);
        let err = score(&m, &unknown, &p, &mut blank("x")).unwrap_err();
        assert!(err.to_string().contains("bagpipe"), "{err}");
    }
}
