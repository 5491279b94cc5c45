//! Scores one sample: predicted map(s) + annotation -> per-source cIoU / AP entries, following
//! the [`Protocol`]'s pipeline (resize to the 224-per-frame mosaic, normalise, binarise, match).

use crate::annotation::{Annotation, FrameLayout};
use crate::binarise::Binarisation;
use crate::error::EvalError;
use crate::gt_map::{gt_map, GRID};
use crate::map::Map;
use crate::metrics::cap::{greedy_match, GtSlot};
use crate::metrics::ciou::{ciou, iou_smoothed};
use crate::metrics::detection::Detection;
use crate::metrics::pixel_ap::{average_precision, PixelApFlavour};
use crate::protocol::{Assignment, MosaicAxis, Protocol, Scope};
use crate::upsample::resize;
use serde::{Deserialize, Serialize};

/// One cIoU (and AP) entry: a source or GT slot of a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryScore {
    pub ciou: f64,
    pub ap: Option<f64>,
    /// T-VSL's smoothed IoU, when the protocol has an `iou_threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iou: Option<f64>,
    /// SLAVC / AVGN confidence and box count, when the protocol has `detection` metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Detection>,
    /// GT slot / source index the entry refers to (`None` for a padded entry).
    pub slot: Option<usize>,
    /// Predicted map index (`None` for a padded entry or a missing map).
    pub map: Option<usize>,
}

/// Everything measured on one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleScore {
    pub id: String,
    /// Number of predicted maps `K`.
    pub predicted_maps: usize,
    pub entries: Vec<EntryScore>,
    /// NoPrior PIAP of the summed maps, when the protocol computes it.
    pub piap: Option<f64>,
    /// False for NoPrior's `K = 0` samples, which contribute no entries.
    pub counted: bool,
    /// NoPrior `true`: `K` equals the number of GT slots (greedy protocols only).
    pub count_correct: Option<bool>,
    /// The map was absent and the sample was scored as a failure (all entries 0).
    pub missing_map: bool,
    /// T-VSL AP entries dropped because the source's GT was not binary.
    pub ap_dropped: usize,
    /// DSOL NSA of the frame: mean over the silent classes' maps of the fraction of pixels at
    /// or below the threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nsa: Option<f64>,
}

impl SampleScore {
    /// A counted sample with `predicted_maps` maps and no entries yet.
    pub(crate) fn empty(id: &str, predicted_maps: usize) -> Self {
        SampleScore {
            id: id.to_string(),
            predicted_maps,
            entries: Vec::new(),
            piap: None,
            counted: true,
            count_correct: None,
            missing_map: false,
            ap_dropped: 0,
            nsa: None,
        }
    }
}

/// Refuses a sample whose maps are not one per source, for the protocols that pair map `j` with
/// source `j` (`kind` names the protocol family in the error).
pub(crate) fn one_map_per_source(
    maps: &[Map],
    ann: &Annotation,
    p: &Protocol,
    kind: &str,
) -> Result<(), EvalError> {
    if maps.len() == ann.sources.len() {
        return Ok(());
    }
    let reason = format!(
        "{kind} protocol needs one map per source: {} map(s), {} source(s)",
        maps.len(),
        ann.sources.len()
    );
    Err(incompatible(&ann.id, p, reason))
}

struct Prepared {
    binary: Vec<Map>,
    scores: Vec<Map>,
}

fn tile_of_source(ann: &Annotation, i: usize) -> usize {
    match ann.layout {
        FrameLayout::Shared => 0,
        FrameLayout::OnePerSource => i,
    }
}

fn prepare(map: &Map, tiles: usize, p: &Protocol) -> Result<Prepared, EvalError> {
    let vertical = p.mosaic == MosaicAxis::Vertical;
    let (h, w) = if vertical {
        (GRID * tiles, GRID)
    } else {
        (GRID, GRID * tiles)
    };
    let u = resize(map, h, w, p.upsample)?;
    let (binary, scores) = match p.scope {
        Scope::PerTile => u
            .split(tiles, vertical)
            .iter()
            .map(|t| {
                let s = p.normalisation.apply(t);
                (p.binarisation.apply(&s), s)
            })
            .unzip(),
        Scope::Mosaic => {
            let s = p.normalisation.apply(&u);
            let b = p.binarisation.apply(&s);
            (b.split(tiles, vertical), s.split(tiles, vertical))
        }
    };
    Ok(Prepared { binary, scores })
}

pub(crate) fn incompatible(id: &str, p: &Protocol, reason: String) -> EvalError {
    EvalError::Incompatible {
        id: id.to_string(),
        protocol: p.name.clone(),
        reason,
    }
}

/// Per-frame GT maps: union (or consensus) of the sources in each frame.
pub(crate) fn frame_gts(ann: &Annotation, p: &Protocol) -> Vec<Map> {
    (0..ann.tiles())
        .map(|t| {
            let srcs: Vec<_> = (0..ann.sources.len())
                .filter(|&i| tile_of_source(ann, i) == t)
                .map(|i| &ann.sources[i])
                .collect();
            gt_map(&srcs, ann.convention, p.box_reading, p.gt_merge)
        })
        .collect()
}

/// GT slots of the greedy matching.
fn slots(ann: &Annotation, p: &Protocol, per_source: bool) -> Vec<GtSlot> {
    if per_source && !ann.sources.is_empty() {
        ann.sources
            .iter()
            .enumerate()
            .map(|(i, s)| GtSlot {
                tile: tile_of_source(ann, i),
                map: gt_map(&[s], ann.convention, p.box_reading, p.gt_merge),
            })
            .collect()
    } else {
        // A frame without any source still has its (empty) slot, as in NoPrior.
        frame_gts(ann, p)
            .into_iter()
            .enumerate()
            .map(|(tile, map)| GtSlot { tile, map })
            .collect()
    }
}

/// Number of entries a sample yields under the protocol (used to score missing maps).
pub fn expected_entries(ann: &Annotation, p: &Protocol) -> usize {
    match p.assignment {
        Assignment::SingleMap => 1,
        Assignment::Greedy { per_source } => slots(ann, p, per_source).len(),
        Assignment::Conditioned | Assignment::OwnFrame => ann.sources.len(),
        // DSOL skips a frame without a box; any other frame has one entry.
        Assignment::SingleMapBoxedOnly | Assignment::ClassMaps => {
            usize::from(!ann.sources.is_empty())
        }
    }
}

/// True when the protocol does not score a frame without any box (DSOL).
fn skips_unboxed(p: &Protocol) -> bool {
    matches!(
        p.assignment,
        Assignment::SingleMapBoxedOnly | Assignment::ClassMaps
    )
}

/// A sample whose map is missing, scored as a failure: every entry cIoU 0 and AP 0.
pub fn failure(ann: &Annotation, p: &Protocol) -> SampleScore {
    let entry = EntryScore {
        ciou: 0.0,
        ap: p.pixel_ap.map(|_| 0.0),
        iou: p.iou_threshold.map(|_| 0.0),
        // A missing map has no confidence; `score_annotations` refuses it under such protocols.
        detection: None,
        slot: None,
        map: None,
    };
    let counted = !(skips_unboxed(p) && ann.sources.is_empty());
    SampleScore {
        id: ann.id.clone(),
        predicted_maps: 0,
        entries: vec![entry; expected_entries(ann, p)],
        piap: p.piap.then_some(0.0),
        counted,
        count_correct: matches!(p.assignment, Assignment::Greedy { .. }).then_some(false),
        missing_map: true,
        ap_dropped: 0,
        // No silent pixel is credited to a missing map.
        nsa: (counted && p.assignment == Assignment::ClassMaps).then_some(0.0),
    }
}

/// Scores the predicted maps of one sample (`maps` may be empty: `K = 0`).
pub fn score_sample(
    maps: &[Map],
    ann: &Annotation,
    p: &Protocol,
) -> Result<SampleScore, EvalError> {
    let id = ann.id.as_str();
    let tiles = ann.tiles();
    let mut out = SampleScore::empty(&ann.id, maps.len());
    if skips_unboxed(p) && ann.sources.is_empty() {
        // DSOL `continue`s on a frame without a box.
        out.counted = false;
        return Ok(out);
    }
    match p.assignment {
        Assignment::SingleMap | Assignment::SingleMapBoxedOnly => {
            if maps.len() != 1 || tiles != 1 {
                let reason = format!(
                    "single-source protocol needs one map of one frame, got {} map(s), {tiles} frame(s)",
                    maps.len()
                );
                return Err(incompatible(id, p, reason));
            }
            let prep = prepare(&maps[0], 1, p)?;
            let all: Vec<_> = ann.sources.iter().collect();
            let g = gt_map(&all, ann.convention, p.box_reading, p.gt_merge);
            let (b, s) = (&prep.binary[0], &prep.scores[0]);
            let (ap, dropped) = pixel_ap(p.pixel_ap, &g, b, s)?;
            out.ap_dropped = dropped;
            let detection = match &p.detection {
                Some(d) => {
                    let u = resize(&maps[0], GRID, GRID, p.upsample)?;
                    let boxes = ann.sources.iter().map(|s| s.raw_boxes.len()).sum();
                    Some(d.detect(&u, boxes))
                }
                None => None,
            };
            out.entries.push(EntryScore {
                ciou: ciou(b, &g),
                ap,
                iou: p.iou_threshold.map(|t| iou_at(t, s, &g)),
                detection,
                slot: Some(0),
                map: Some(0),
            });
        }
        Assignment::Greedy { per_source } => {
            let slots = slots(ann, p, per_source);
            out.count_correct = Some(maps.len() == slots.len());
            if maps.is_empty() {
                out.counted = false;
                return Ok(out);
            }
            let with_ap = match p.pixel_ap {
                None => false,
                Some(PixelApFlavour::GtLabelsBinaryScores) => true,
                Some(other) => {
                    return Err(incompatible(
                        id,
                        p,
                        format!("greedy CAP uses NoPrior AP, not {other:?}"),
                    ))
                }
            };
            let prepared = maps
                .iter()
                .map(|m| prepare(m, tiles, p).map(|x| x.binary))
                .collect::<Result<Vec<_>, _>>()?;
            if p.piap {
                out.piap = Some(piap(maps, ann, p, tiles)?);
            }
            let matched = greedy_match(&prepared, &slots, with_ap)?;
            out.entries = matched
                .entries
                .into_iter()
                .map(|e| EntryScore {
                    ciou: e.ciou,
                    ap: e.ap,
                    iou: None,
                    detection: None,
                    slot: e.slot,
                    map: e.map,
                })
                .collect();
        }
        Assignment::Conditioned => conditioned(maps, ann, p, tiles, &mut out)?,
        Assignment::ClassMaps => crate::class_maps::score(maps, ann, p, &mut out)?,
        Assignment::OwnFrame => crate::own_frame::score(maps, ann, p, &mut out)?,
    }
    Ok(out)
}

/// T-VSL `cal_IOU`: `p ≥ t` against `G > 0`, smoothed.
fn iou_at(t: f64, s: &Map, g: &Map) -> f64 {
    iou_smoothed(&Binarisation::Absolute(t).apply(s), g)
}

/// AP of one entry per flavour; `(None, 1)` when T-VSL would silently drop it.
pub(crate) fn pixel_ap(
    flavour: Option<PixelApFlavour>,
    g: &Map,
    b: &Map,
    s: &Map,
) -> Result<(Option<f64>, usize), EvalError> {
    match flavour {
        None => Ok((None, 0)),
        Some(PixelApFlavour::GtLabelsBinaryScores) => {
            Ok((Some(average_precision(&g.data, &b.data)?), 0))
        }
        Some(PixelApFlavour::BinaryLabelsGtScores) => {
            Ok((Some(average_precision(&b.data, &g.data)?), 0))
        }
        Some(PixelApFlavour::GtLabelsContinuousScores) => match average_precision(&g.data, &s.data)
        {
            Ok(v) => Ok((Some(v), 0)),
            Err(EvalError::NonBinaryLabels { .. }) => Ok((None, 1)),
            Err(e) => Err(e),
        },
    }
}

/// NoPrior PIAP: the K maps summed, prepared per tile, against the per-frame GT unions.
fn piap(maps: &[Map], ann: &Annotation, p: &Protocol, tiles: usize) -> Result<f64, EvalError> {
    let mut sum = maps[0].clone();
    for m in &maps[1..] {
        if (m.height, m.width) != (sum.height, sum.width) {
            return Err(incompatible(
                &ann.id,
                p,
                "predicted maps differ in shape".into(),
            ));
        }
        sum.data.iter_mut().zip(&m.data).for_each(|(a, b)| *a += b);
    }
    let prep = prepare(&sum, tiles, p)?;
    let labels: Vec<f64> = frame_gts(ann, p).into_iter().flat_map(|g| g.data).collect();
    let scores: Vec<f64> = prep.binary.into_iter().flat_map(|b| b.data).collect();
    average_precision(&labels, &scores)
}

/// T-VSL / AVGN class-conditioned scoring over the whole mosaic.
fn conditioned(
    maps: &[Map],
    ann: &Annotation,
    p: &Protocol,
    tiles: usize,
    out: &mut SampleScore,
) -> Result<(), EvalError> {
    one_map_per_source(maps, ann, p, "class-conditioned")?;
    let vertical = p.mosaic == MosaicAxis::Vertical;
    for (j, (m, src)) in maps.iter().zip(&ann.sources).enumerate() {
        let prep = prepare(m, tiles, p)?;
        let b = Map::concat(&prep.binary, vertical);
        let s = Map::concat(&prep.scores, vertical);
        let own = gt_map(&[src], ann.convention, p.box_reading, p.gt_merge);
        let gt_tiles: Vec<Map> = (0..tiles)
            .map(|t| {
                if t == tile_of_source(ann, j) {
                    own.clone()
                } else {
                    Map::zeros(GRID, GRID)
                }
            })
            .collect();
        let g = Map::concat(&gt_tiles, vertical);
        let (ap, dropped) = pixel_ap(p.pixel_ap, &g, &b, &s)?;
        out.ap_dropped += dropped;
        out.entries.push(EntryScore {
            ciou: ciou(&b, &g),
            ap,
            iou: p.iou_threshold.map(|t| iou_at(t, &s, &g)),
            detection: None,
            slot: Some(j),
            map: Some(j),
        });
    }
    Ok(())
}

#[cfg(test)]
#[path = "scoring_tests.rs"]
mod tests;
