//! Annotation loaders for the public test sets, all read into one common [`Annotation`] form.
//!
//! | format | file | convention |
//! |---|---|---|
//! | [`AnnotationFormat::VggSs`] | `vggss.json` (list of `{file, class, bbox: [[x1,y1,x2,y2]..]}`) | normalised xyxy, clipped to [0,1] |
//! | [`AnnotationFormat::Music`] | AVGN `music_solo.json` / `music_duet.json` | normalised COCO xywh |
//! | [`AnnotationFormat::Dsol`] | DSOL `solotest.json` / `duettest.json` (`normbox`, `category_id`) | normalised xywh |
//! | [`AnnotationFormat::VggSoundPairs`] | `vggsound_{single,duet}_test.csv` + `vggss.json` | per-frame sources |
//! | [`AnnotationFormat::FlickrXml`] | directory of `<id>.xml` | 256-px xyxy, one source, ≤ 3 annotators |
//! | [`AnnotationFormat::AvsSynth`] | VGG-SS list + `classes` (+ `silent_same_class`) | normalised xyxy, one box per source |
//! | [`AnnotationFormat::PlusNonSounding`] | a base format + SLAVC `*_test_plus_silent.csv` | base, plus box-less pairs ([`non_sounding`]) |

mod avs_synth;
mod dsol;
mod flickr;
mod music;
pub mod non_sounding;
mod pairs;
mod vggss;

use crate::error::EvalError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use flickr::parse_flickr_xml;

/// Coordinate convention of the raw boxes of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BoxConvention {
    /// `[x1, y1, x2, y2]` normalised by the frame size.
    Xyxy01,
    /// COCO `[x, y, w, h]` normalised by the frame size.
    Xywh01,
    /// `[xmin, ymin, xmax, ymax]` pixels of a 256x256 frame (Flickr-SoundNet).
    Pixel256,
}

/// Whether the sources of a sample share one frame or each come with its own frame
/// (synthetic pairs such as VGGSound-Duet, evaluated as a mosaic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrameLayout {
    /// All sources are in one frame (MUSIC-Duet, AVS-Synth).
    Shared,
    /// Source `i` is the `i`-th frame of a mosaic (VGGSound-Duet pairs).
    OnePerSource,
}

/// One sounding object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Class name, when the format gives one.
    pub class: Option<String>,
    /// Boxes as normalised `[x1, y1, x2, y2]`, clipped to [0, 1].
    pub boxes: Vec<[f64; 4]>,
    /// The numbers as written in the file, in the annotation's [`BoxConvention`]; GT maps are
    /// painted from these so the peers' integer rounding is reproduced exactly.
    pub raw_boxes: Vec<[f64; 4]>,
}

/// One test sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    pub id: String,
    /// Sounding objects, in source order (empty for a frame without a box).
    pub sources: Vec<Source>,
    pub convention: BoxConvention,
    pub layout: FrameLayout,
    /// The frame also shows a silent object of a sounding object's class (the paper's hard case, "three
    /// guitars, one played"); only AVS-Synth records it, every other format reads false.
    #[serde(default)]
    pub silent_same_class: bool,
}

impl Annotation {
    /// Frames the sample is made of: 1, or one per source for a pair mosaic ([`FrameLayout::OnePerSource`]).
    pub fn tiles(&self) -> usize {
        match self.layout {
            FrameLayout::Shared => 1,
            FrameLayout::OnePerSource => self.sources.len().max(1),
        }
    }
}

/// The annotation file formats understood by [`load_annotations`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnnotationFormat {
    VggSs,
    /// AVGN MUSIC json, solo (`class`, `bbox`) or duet (`class_src1`, `bbox_src1`, ...).
    Music,
    Dsol,
    /// A pair (or single) list csv; boxes of every listed frame come from `boxes` (vggss.json).
    /// Columns `file,class[,mix_file,mix_class]`; a duet sample id is `file+mix_file`.
    VggSoundPairs {
        boxes: PathBuf,
    },
    /// A directory of Flickr-SoundNet `<id>.xml` files.
    FlickrXml,
    AvsSynth,
    /// The base format's samples followed by the non-sounding pairs of a SLAVC extended list
    /// (SLAVC's `flickr_plus_silent` / `vggss_plus_silent` test sets).
    PlusNonSounding {
        base: Box<AnnotationFormat>,
        list: PathBuf,
    },
}

impl AnnotationFormat {
    /// The format [`AnnotationFormat::name`] names, for the formats read from one file (`vggsound-pairs` takes
    /// its `boxes` file, and only it does); `None` for any other name, or for a missing or unwanted `boxes`.
    pub fn from_name(name: &str, boxes: Option<PathBuf>) -> Option<Self> {
        match (name, boxes) {
            ("vggss", None) => Some(Self::VggSs),
            ("music", None) => Some(Self::Music),
            ("dsol", None) => Some(Self::Dsol),
            ("flickr-xml", None) => Some(Self::FlickrXml),
            ("avs-synth", None) => Some(Self::AvsSynth),
            ("vggsound-pairs", Some(boxes)) => Some(Self::VggSoundPairs { boxes }),
            _ => None,
        }
    }

    /// Short name used in reports and errors.
    pub fn name(&self) -> &'static str {
        match self {
            AnnotationFormat::VggSs => "vggss",
            AnnotationFormat::Music => "music",
            AnnotationFormat::Dsol => "dsol",
            AnnotationFormat::VggSoundPairs { .. } => "vggsound-pairs",
            AnnotationFormat::FlickrXml => "flickr-xml",
            AnnotationFormat::AvsSynth => "avs-synth",
            AnnotationFormat::PlusNonSounding { base, .. } => match **base {
                AnnotationFormat::VggSs => "vggss-plus-silent",
                AnnotationFormat::FlickrXml => "flickr-plus-silent",
                _ => "plus-silent",
            },
        }
    }
}

/// Normalised, clipped xyxy of a raw box.
pub fn normalised_xyxy(raw: [f64; 4], conv: BoxConvention) -> [f64; 4] {
    let u = |v: f64| v.clamp(0.0, 1.0);
    match conv {
        BoxConvention::Xyxy01 => raw.map(u),
        BoxConvention::Xywh01 => [u(raw[0]), u(raw[1]), u(raw[0] + raw[2]), u(raw[1] + raw[3])],
        BoxConvention::Pixel256 => raw.map(|v| u(v / 256.0)),
    }
}

/// A source from raw boxes.
pub fn source(class: Option<String>, raw: Vec<[f64; 4]>, conv: BoxConvention) -> Source {
    Source {
        class,
        boxes: raw.iter().map(|&b| normalised_xyxy(b, conv)).collect(),
        raw_boxes: raw,
    }
}

pub(crate) fn bad(file: &Path, format: &str, reason: impl std::fmt::Display) -> EvalError {
    EvalError::BadAnnotation {
        file: file.display().to_string(),
        format: format.to_string(),
        reason: reason.to_string(),
    }
}

pub(crate) fn read_text(path: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Loads an annotation file (or Flickr directory) in the given format, in file order.
pub fn load_annotations(path: &Path, format: &AnnotationFormat) -> anyhow::Result<Vec<Annotation>> {
    match format {
        AnnotationFormat::VggSs => vggss::load(path),
        AnnotationFormat::Music => music::load(path),
        AnnotationFormat::Dsol => dsol::load(path),
        AnnotationFormat::VggSoundPairs { boxes } => pairs::load(path, boxes),
        AnnotationFormat::FlickrXml => flickr::load_dir(path),
        AnnotationFormat::AvsSynth => avs_synth::load(path),
        AnnotationFormat::PlusNonSounding { base, list } => {
            let mut anns = load_annotations(path, base)?;
            anns.extend(non_sounding::load(list)?);
            Ok(anns)
        }
    }
}
