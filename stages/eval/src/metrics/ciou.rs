//! Consensus IoU (Senocak et al.), as `Evaluator.cal_CIOU` of LVS / EZ-VSL / NoPrior computes it.
//!
//! `cIoU = Σ(B·G) / (Σ G + Σ B·[G = 0])`
//!
//! With a binary `G` this is the ordinary IoU; with the Flickr consensus map (values 0, ½, 1)
//! a half-agreed pixel counts ½ in both terms. An empty `G` gives `0/ΣB = 0`, and `0/0 = NaN`
//! when `B` is empty too: NaN is returned, as numpy does, and the aggregates treat it like numpy
//! (`NaN ≥ t` is false; a mean containing NaN is NaN).

use crate::map::Map;

/// Per-sample cIoU of binary prediction `b` against GT map `g` (same shape).
pub fn ciou(b: &Map, g: &Map) -> f64 {
    debug_assert_eq!(b.len(), g.len());
    let mut inter = 0.0;
    let mut gt = 0.0;
    let mut outside = 0.0;
    for (&bv, &gv) in b.data.iter().zip(&g.data) {
        inter += bv * gv;
        gt += gv;
        if gv == 0.0 {
            outside += bv;
        }
    }
    inter / (gt + outside)
}

/// T-VSL's smoothed IoU: `(|B ∧ G| + 1e-4) / (|B ∨ G| + 1e-4)` with `G > 0` as the GT set.
pub fn iou_smoothed(b: &Map, g: &Map) -> f64 {
    let mut inter = 0.0;
    let mut union = 0.0;
    for (&bv, &gv) in b.data.iter().zip(&g.data) {
        let (bi, gi) = (bv > 0.0, gv > 0.0);
        if bi && gi {
            inter += 1.0;
        }
        if bi || gi {
            union += 1.0;
        }
    }
    (inter + 1e-4) / (union + 1e-4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(v: &[f64]) -> Map {
        Map::from_vec(1, v.len(), v.to_vec()).unwrap()
    }

    #[test]
    fn binary_iou() {
        // B = {0,1,2}, G = {1,2,3}: inter 2, |G| 3, B outside G 1 -> 2/4.
        let b = m(&[1.0, 1.0, 1.0, 0.0]);
        let g = m(&[0.0, 1.0, 1.0, 1.0]);
        assert_eq!(ciou(&b, &g), 0.5);
        // Smoothed: (2 + 1e-4)/(4 + 1e-4).
        assert_eq!(iou_smoothed(&b, &g), (2.0 + 1e-4) / (4.0 + 1e-4));
    }

    #[test]
    fn consensus_weights() {
        // G = [1, .5, .5, 0], B = [1, 1, 0, 1]: inter 1.5; ΣG 2; B on G==0: 1 -> 1.5/3.
        let g = m(&[1.0, 0.5, 0.5, 0.0]);
        let b = m(&[1.0, 1.0, 0.0, 1.0]);
        assert_eq!(ciou(&b, &g), 0.5);
    }

    #[test]
    fn empty_gt_and_empty_prediction() {
        let z = m(&[0.0; 4]);
        assert_eq!(ciou(&m(&[1.0, 0.0, 0.0, 0.0]), &z), 0.0);
        assert!(ciou(&z, &z).is_nan());
        // Empty B against a non-empty G is a plain 0.
        assert_eq!(ciou(&z, &m(&[1.0, 0.0, 0.0, 0.0])), 0.0);
    }

    #[test]
    fn count_gt_from_overlapping_boxes() {
        // AVGN count map: overlap pixel weighs 2. G = [2, 1, 0], B = [1, 0, 1]: 2 / (3 + 1).
        assert_eq!(ciou(&m(&[1.0, 0.0, 1.0]), &m(&[2.0, 1.0, 0.0])), 0.5);
    }
}
