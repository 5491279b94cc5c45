//! Ground-truth maps on the 224x224 evaluation grid, painted the way the peers paint them.
//!
//! A box becomes `G[y1:y2, x1:x2]` (end-exclusive numpy slice, clamped to the grid) with
//! integer corners computed per box convention:
//! * normalised xyxy (VGG-SS, AVS-Synth): `x = int(224·clip(v, 0, 1))`;
//! * normalised xywh (MUSIC, NoPrior): `x1 = int(224·max(x, 0))`, `x2 = x1 + int(224·max(w, 0))`
//!   (int of each term, then add);
//! * 256-px xyxy (Flickr XML): `x = int(224·v/256)`;
//! * AVGN/T-VSL read MUSIC xywh as xyxy (`int(clip(v, 0, 1)·224)`): [`BoxReading::XywhAsXyxy`];
//! * DSOL truncates the end after adding (`x2 = int(224·x + 224·w)`): [`BoxReading::XywhSummed`].
//!
//! Several boxes are merged by [`GtMerge`].

use crate::annotation::{BoxConvention, Source};
use crate::map::Map;
use serde::{Deserialize, Serialize};

/// Side of the evaluation grid used by every peer.
pub const GRID: usize = 224;

/// How the boxes of one GT map are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GtMerge {
    /// Binary union (VGG-SS, MUSIC in LVS/EZ-VSL/NoPrior).
    Union,
    /// Flickr consensus `min(1, Σ_k box_k / 2)`: values 0, ½, 1.
    Consensus,
    /// Box count, not binarised (AVGN / T-VSL `vggsound_*`): overlaps weigh 2, 3, …
    Count,
    /// What the peers do for the dataset: Consensus for Flickr, Union otherwise.
    DatasetDefault,
}

/// How raw annotation numbers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoxReading {
    /// As the annotation convention says (correct).
    AsAnnotated,
    /// AVGN / T-VSL `load_all_bboxes`: a normalised xywh box read as xyxy (their bug).
    XywhAsXyxy,
    /// DSOL `eval_duet.py` / `tools.py`: `b = 224·normbox`, `G[int(y):int(y+h), int(x):int(x+w)]`
    /// (truncated after adding, not clipped; DSOL's boxes lie inside the frame).
    XywhSummed,
}

fn trunc(v: f64) -> i64 {
    v as i64
}

fn unit(v: f64) -> f64 {
    v.clamp(0.0, 1.0)
}

/// Integer `[x1, y1, x2, y2]` (end-exclusive, before clamping to the grid) of one raw box.
pub fn pixel_box(raw: [f64; 4], conv: BoxConvention, reading: BoxReading) -> [i64; 4] {
    let g = GRID as f64;
    match (conv, reading) {
        (BoxConvention::Xywh01, BoxReading::AsAnnotated) => {
            let x1 = trunc(g * raw[0].max(0.0));
            let y1 = trunc(g * raw[1].max(0.0));
            [
                x1,
                y1,
                x1 + trunc(g * raw[2].max(0.0)),
                y1 + trunc(g * raw[3].max(0.0)),
            ]
        }
        (BoxConvention::Xywh01, BoxReading::XywhSummed) => {
            let b = raw.map(|v| g * v);
            [
                trunc(b[0]),
                trunc(b[1]),
                trunc(b[0] + b[2]),
                trunc(b[1] + b[3]),
            ]
        }
        (BoxConvention::Pixel256, _) => raw.map(|v| trunc(g * v / 256.0).max(0)),
        // Normalised xyxy, and the AVGN misreading of xywh as xyxy.
        _ => raw.map(|v| trunc(unit(v) * g)),
    }
}

/// Paints boxes on a `GRID x GRID` map with the given merge rule (`DatasetDefault` -> Union).
pub fn paint(boxes: &[[i64; 4]], merge: GtMerge) -> Map {
    let mut g = Map::zeros(GRID, GRID);
    let clampi = |v: i64| v.clamp(0, GRID as i64) as usize;
    for b in boxes {
        let (x1, y1, x2, y2) = (clampi(b[0]), clampi(b[1]), clampi(b[2]), clampi(b[3]));
        for y in y1..y2.max(y1) {
            for x in x1..x2.max(x1) {
                g.data[y * GRID + x] += 1.0;
            }
        }
    }
    match merge {
        GtMerge::Union | GtMerge::DatasetDefault => {
            g.data.iter_mut().for_each(|v| *v = v.min(1.0));
        }
        GtMerge::Consensus => g.data.iter_mut().for_each(|v| *v = (*v / 2.0).min(1.0)),
        GtMerge::Count => {}
    }
    g
}

/// GT map of the given sources (all boxes of all of them), as one map.
pub fn gt_map(
    sources: &[&Source],
    conv: BoxConvention,
    reading: BoxReading,
    merge: GtMerge,
) -> Map {
    let merge = match (merge, conv) {
        (GtMerge::DatasetDefault, BoxConvention::Pixel256) => GtMerge::Consensus,
        (m, _) => m,
    };
    let boxes: Vec<[i64; 4]> = sources
        .iter()
        .flat_map(|s| s.raw_boxes.iter())
        .map(|&b| pixel_box(b, conv, reading))
        .collect();
    paint(&boxes, merge)
}

#[cfg(test)]
#[path = "gt_map_tests.rs"]
mod tests;
