//! NoPrior's greedy matching of predicted object maps to GT maps (`train.py::test_step`),
//! which yields the multi-source cIoU list and CAP.
//!
//! For each predicted map `M_q` in output order: score its binarised tile against every GT slot
//! `s` (cIoU, and `AP(G_s, B_q)` when CAP is wanted), take `s* = argmax_s cIoU` with numpy's
//! `argmax` (first maximum; the first NaN wins if any), record `(cIoU_{s*}, AP_{s*})` and zero
//! `G_{s*}`, even when every score was 0. Maps beyond the slot count therefore score against
//! zeroed GT (cIoU 0, AP 0). With `Q < n` slots, `n − Q` entries `(0, 0)` are appended.
//! `CAP = mean(AP list)`. A sample with `Q = 0` is not scored at all (NoPrior returns early);
//! the caller handles that.

use crate::error::EvalError;
use crate::map::Map;
use crate::metrics::ciou::ciou;
use crate::metrics::pixel_ap::average_precision;
use serde::{Deserialize, Serialize};

/// One entry of the per-source lists NoPrior aggregates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotScore {
    /// cIoU of the matched pair (0 for a padded entry; may be NaN as in numpy).
    pub ciou: f64,
    /// Pixel AP of the matched pair, when requested.
    pub ap: Option<f64>,
    /// Index of the matched GT slot (`None` for padding).
    pub slot: Option<usize>,
    /// Index of the predicted map (`None` for padding).
    pub map: Option<usize>,
}

/// A GT slot: the tile of the mosaic it lives in and its 224x224 map.
#[derive(Debug, Clone)]
pub struct GtSlot {
    pub tile: usize,
    pub map: Map,
}

/// Result of matching one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct GreedyMatch {
    pub entries: Vec<SlotScore>,
}

/// numpy `argmax`: the first NaN if there is one, else the first maximum.
fn np_argmax(v: &[f64]) -> usize {
    if let Some(i) = v.iter().position(|x| x.is_nan()) {
        return i;
    }
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Greedy NoPrior matching. `binary[q][tile]` is predicted map `q` binarised per tile.
pub fn greedy_match(
    binary: &[Vec<Map>],
    slots: &[GtSlot],
    with_ap: bool,
) -> Result<GreedyMatch, EvalError> {
    let mut gts: Vec<Map> = slots.iter().map(|s| s.map.clone()).collect();
    let mut entries = Vec::with_capacity(binary.len().max(slots.len()));
    for (q, tiles) in binary.iter().enumerate() {
        let mut cious = Vec::with_capacity(slots.len());
        let mut aps = Vec::with_capacity(slots.len());
        for (s, slot) in slots.iter().enumerate() {
            let b = &tiles[slot.tile];
            cious.push(ciou(b, &gts[s]));
            if with_ap {
                // NoPrior computes AP for every slot, so a bad label fails even if unmatched.
                aps.push(average_precision(&gts[s].data, &b.data)?);
            }
        }
        if slots.is_empty() {
            break;
        }
        let best = np_argmax(&cious);
        entries.push(SlotScore {
            ciou: cious[best],
            ap: with_ap.then(|| aps[best]),
            slot: Some(best),
            map: Some(q),
        });
        gts[best].data.iter_mut().for_each(|v| *v = 0.0);
    }
    for _ in binary.len()..slots.len() {
        entries.push(SlotScore {
            ciou: 0.0,
            ap: with_ap.then_some(0.0),
            slot: None,
            map: None,
        });
    }
    Ok(GreedyMatch { entries })
}

#[cfg(test)]
#[path = "cap_tests.rs"]
mod tests;
