//! Multi-source scoring, source-wise or frame-wise: which unit a multi-source protocol scores.
//!
//! The multi-source evaluators (NoPrior `train.py::test_step`, AVGN `train.py::validate_multi`,
//! T-VSL `main.py::validate_multi`; see the table of [`crate::protocol`]) all score **source-wise**:
//! each sounding source is scored with the predicted map matched or assigned to it, against that
//! source's own ground truth, with the normalisation and binarisation of the protocol's region
//! (per 224x224 tile of a pair mosaic for NoPrior / `oassl`, the whole mosaic for T-VSL). A
//! sample yields one cIoU per source (or GT slot) and the aggregates run over sources. This is
//! [`MultiSourceScoring::SourceWise`], what [`crate::score_sample`] computes.
//!
//! A 2026 re-evaluation (SCAV) argues that source-wise scoring of multi-source maps flatters
//! them (NoPrior at 18.1 CIoU@0.3 on VGGSound-Duet frame-wise against 46.9 source-wise, by its
//! account): per-source normalisation stretches even a weak response on a source's tile over that
//! tile's top half. [`MultiSourceScoring::FrameWise`] is our reading of the frame-wise alternative:
//!
//! * the unit is the input frame, the image the model sees: the whole mosaic of a pair sample
//!   (VGGSound-Duet), the single frame of MUSIC-Duet or AVS-Synth;
//! * the frame's predicted maps (all `K` of them) are each resized to the frame
//!   (`224c x 224` or `224 x 224c` along the protocol's mosaic axis), each normalised over the
//!   **whole frame** with the protocol's normalisation, and merged by the pixel-wise maximum;
//! * the merged map is binarised once over the whole frame with the protocol's binarisation and
//!   scored against the union of all sounding sources' boxes of the frame (the protocol's GT
//!   painting and merge rule, each source in its tile);
//! * one cIoU (and one AP where the protocol has a per-entry AP, with its flavour; CAP becomes the
//!   frame's AP) per frame, aggregated as source-wise entries are (cIoU@t, AUC, mean cIoU, AP).
//!
//! Merging normalised maps by their maximum, rather than merging the raw maps: each predicted map
//! has its own range (one cosine or attention map per object query), so on raw maps the map with
//! the larger offset or range would cover the frame and hide the others, and the score would
//! measure calibration across queries rather than localisation. Normalising first gives every
//! predicted source the same peak, so every one can show in the frame map; it also keeps the
//! protocol's orientation (T-VSL's `1 − minmax` makes low raw values the sounding ones, which a
//! raw maximum would get backwards). The merged map is not normalised again: it already is on the
//! protocol's normalised scale, and a second T-VSL inversion would undo the first. The maximum is
//! order-free, so the result does not depend on the order of the predicted maps, and with one map
//! the frame-wise score is the single-source pipeline over the frame (on a one-source, one-frame
//! sample it equals the source-wise score).
//!
//! As in NoPrior, a sample without any predicted map (`K = 0`) contributes nothing under either
//! scoring; a missing map is a failure (cIoU 0, AP 0) under both. Neither scoring is always the
//! higher one: a single map covering both sources of a frame scores 1 frame-wise but only one of
//! two sources source-wise (see the tests), while a map much stronger on one tile of a mosaic than
//! on the other loses the weak tile frame-wise only. Single-source protocols (one map, one GT)
//! have neither: their score already is per frame.

use crate::annotation::Annotation;
use crate::error::EvalError;
use crate::gt_map::GRID;
use crate::map::Map;
use crate::metrics::ciou::ciou;
use crate::protocol::{Assignment, MosaicAxis, Protocol};
use crate::report::{aggregate, Aggregates};
use crate::scoring::{
    failure, frame_gts, one_map_per_source, pixel_ap, score_sample, EntryScore, SampleScore,
};
use crate::upsample::resize;
use serde::{Deserialize, Serialize};

/// How a multi-source protocol scores a sample (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MultiSourceScoring {
    /// One score per sounding source, against its own GT, normalised per source region.
    SourceWise,
    /// One score per input frame: the merged maps against the union of the frame's sources.
    FrameWise,
}

/// Which multi-source scorings a run computes and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MultiSourceSelection {
    SourceWise,
    FrameWise,
    /// Both, side by side (source-wise first).
    #[default]
    Both,
}

/// True for the protocols whose maps of several sources share one frame or mosaic (greedy or
/// class-conditioned: `noprior`, `oassl`, `tvsl`), where the two scorings differ. `avgn-multi` scores
/// each source on its own frame, where frame-wise is source-wise, and DSOL's class maps are already
/// scored one entry per frame, so both are left to their own scoring.
pub fn is_multi_source(p: &Protocol) -> bool {
    matches!(
        p.assignment,
        Assignment::Greedy { .. } | Assignment::Conditioned
    )
}

impl MultiSourceScoring {
    /// `source-wise` or `frame-wise`.
    pub fn name(self) -> &'static str {
        match self {
            MultiSourceScoring::SourceWise => "source-wise",
            MultiSourceScoring::FrameWise => "frame-wise",
        }
    }

    /// Scores one sample; `maps` is `None` when the sample's map is missing (scored as a failure).
    pub fn score(
        self,
        maps: Option<&[Map]>,
        ann: &Annotation,
        p: &Protocol,
    ) -> Result<SampleScore, EvalError> {
        match (self, maps) {
            (MultiSourceScoring::SourceWise, Some(m)) => score_sample(m, ann, p),
            (MultiSourceScoring::SourceWise, None) => Ok(failure(ann, p)),
            (MultiSourceScoring::FrameWise, Some(m)) => score_frame(m, ann, p),
            (MultiSourceScoring::FrameWise, None) => Ok(frame_failure(ann, p)),
        }
    }

    /// The aggregates of samples scored this way. Frame-wise has no PIAP: NoPrior's PIAP is
    /// already a per-frame AP of the summed maps, and the frame-wise AP column is its counterpart.
    pub fn aggregate(self, samples: &[SampleScore], p: &Protocol) -> Aggregates {
        let a = aggregate(samples, p);
        match self {
            MultiSourceScoring::SourceWise => a,
            MultiSourceScoring::FrameWise => Aggregates { piap: None, ..a },
        }
    }
}

impl MultiSourceSelection {
    /// `source-wise`, `frame-wise` or `both`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "source-wise" => Some(Self::SourceWise),
            "frame-wise" => Some(Self::FrameWise),
            "both" => Some(Self::Both),
            _ => None,
        }
    }

    /// The scorings run under `p`, the first one being the report's main `samples` /
    /// `aggregates`; `[None]` for a single-source protocol, which has neither.
    pub fn scorings(self, p: &Protocol) -> Vec<Option<MultiSourceScoring>> {
        if !is_multi_source(p) {
            return vec![None];
        }
        match self {
            Self::SourceWise => vec![Some(MultiSourceScoring::SourceWise)],
            Self::FrameWise => vec![Some(MultiSourceScoring::FrameWise)],
            Self::Both => vec![
                Some(MultiSourceScoring::SourceWise),
                Some(MultiSourceScoring::FrameWise),
            ],
        }
    }
}

/// The frame's size on the protocol's 224 grid: `tiles` frames of a mosaic along its axis.
fn frame_size(tiles: usize, p: &Protocol) -> (usize, usize) {
    match p.mosaic {
        MosaicAxis::Vertical => (GRID * tiles, GRID),
        MosaicAxis::Horizontal => (GRID, GRID * tiles),
    }
}

/// Frame-wise score of one sample (`maps` may be empty: `K = 0`, not counted, as in NoPrior).
pub fn score_frame(maps: &[Map], ann: &Annotation, p: &Protocol) -> Result<SampleScore, EvalError> {
    if p.assignment == Assignment::Conditioned {
        // The same input the source-wise scoring refuses.
        one_map_per_source(maps, ann, p, "class-conditioned")?;
    }
    let mut out = SampleScore {
        counted: !maps.is_empty(),
        ..SampleScore::empty(&ann.id, maps.len())
    };
    if maps.is_empty() {
        return Ok(out);
    }
    let tiles = ann.tiles();
    let (h, w) = frame_size(tiles, p);
    let mut merged: Option<Map> = None;
    for m in maps {
        let s = p.normalisation.apply(&resize(m, h, w, p.upsample)?);
        merged = Some(match merged {
            None => s,
            Some(mut acc) => {
                acc.data
                    .iter_mut()
                    .zip(&s.data)
                    .for_each(|(a, &v)| *a = a.max(v));
                acc
            }
        });
    }
    let Some(s) = merged else {
        return Ok(out);
    };
    let b = p.binarisation.apply(&s);
    let g = Map::concat(&frame_gts(ann, p), p.mosaic == MosaicAxis::Vertical);
    let (ap, dropped) = pixel_ap(p.pixel_ap, &g, &b, &s)?;
    out.ap_dropped = dropped;
    out.entries.push(EntryScore {
        ciou: ciou(&b, &g),
        ap,
        slot: Some(0),
        map: None,
        iou: None,
        detection: None,
    });
    Ok(out)
}

/// A frame whose map is missing, scored as a failure: one entry, cIoU 0 and AP 0.
pub fn frame_failure(ann: &Annotation, p: &Protocol) -> SampleScore {
    SampleScore {
        id: ann.id.clone(),
        predicted_maps: 0,
        entries: vec![EntryScore {
            ciou: 0.0,
            ap: p.pixel_ap.map(|_| 0.0),
            slot: None,
            map: None,
            iou: None,
            detection: None,
        }],
        piap: None,
        counted: true,
        count_correct: None,
        missing_map: true,
        ap_dropped: 0,
        nsa: None,
    }
}

#[cfg(test)]
#[path = "multi_source_tests.rs"]
mod tests;
