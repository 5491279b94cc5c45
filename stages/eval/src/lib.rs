//! Localisation metrics and annotation loaders of oassl.
//!
//! Reproduces how the public sound-source-localisation evaluators score heat maps (LVS, EZ-VSL,
//! SLAVC/AVGN, NoPrior, T-VSL, DSOL) and adds `oassl`, NoPrior's multi-source protocol with one GT
//! map per sounding source. Every choice that differs between evaluators (upsampling kernel,
//! normalisation, strict / non-strict median binarisation, GT merging, threshold comparison,
//! map-to-source assignment) is an explicit enum in [`Protocol`].
//!
//! * [`annotation`]: loaders for VGG-SS, MUSIC (AVGN and DSOL), VGGSound pairs, Flickr XML and
//!   AVS-Synth into [`Annotation`]; [`gt_map`] paints their 224x224 GT maps.
//! * [`metrics`]: cIoU, pixel AP, success rate / AUC, NoPrior greedy matching (CAP), SLAVC's
//!   confidence-based detection metrics.
//! * [`class_maps`] (DSOL) and [`own_frame`] (AVGN multi) score the class-aware multi-source
//!   protocols; [`evaluator_aggregates`] holds the aggregates only one evaluator reports.
//! * [`score_maps`]: safetensors maps + annotation file -> [`ScoreReport`] (JSON via serde),
//!   [`markdown_table`] for a summary row.
//! * [`reference_maps`]: random and centre-prior maps for chance-level rows.
//! * [`multi_source`]: source-wise (the evaluators') and frame-wise scoring of multi-source
//!   protocols, side by side in a [`ScoreReport`].

pub mod annotation;
pub mod binarise;
pub mod class_maps;
pub mod error;
pub mod evaluate;
pub mod evaluator_aggregates;
pub mod gt_map;
pub mod map;
pub mod maps_file;
pub mod metrics;
pub mod multi_source;
pub mod normalise;
pub mod own_frame;
pub mod protocol;
pub mod reference_maps;
pub mod report;
pub mod scoring;
pub mod summation;
pub mod upsample;

pub use annotation::{
    load_annotations, Annotation, AnnotationFormat, BoxConvention, FrameLayout, Source,
};
pub use binarise::Binarisation;
pub use error::EvalError;
pub use evaluate::{score_annotations, score_maps, MissingMaps, ScoreOptions};
pub use evaluator_aggregates::{markdown_tables, EvaluatorAggregates};
pub use gt_map::{BoxReading, GtMerge};
pub use map::Map;
pub use maps_file::read_maps;
pub use multi_source::{MultiSourceScoring, MultiSourceSelection};
pub use normalise::Normalisation;
pub use protocol::{Assignment, MosaicAxis, Protocol, Scope};
pub use reference_maps::{center_prior_map, random_map};
pub use report::{markdown_table, Aggregates, ScoreReport, ScoredSamples, SuccessRate};
pub use scoring::{score_sample, EntryScore, SampleScore};
pub use upsample::{resize, Upsample};
