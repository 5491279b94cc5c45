//! Ground truth of a split in VGG-SS json form.
//!
//! One entry per clip: `file` (the sample id), `class` (the labels joined with ", ", as VGG-SS writes one class
//! string), `bbox` (one normalised `[x1, y1, x2, y2]` per sounding object) and `classes` (the label of each box,
//! same order: an extension VGG-SS lacks, needed to score several sources separately) and `silent_same_class`
//! (the scene also shows a silent object of a sounding class, the paper's hard case; evaluation reports those
//! clips as their own slice).

use serde::{Deserialize, Serialize};

use crate::scene::Scene;

/// One clip's boxes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruthEntry {
    pub file: String,
    pub class: String,
    pub bbox: Vec<[f64; 4]>,
    pub classes: Vec<String>,
    pub silent_same_class: bool,
}

impl GroundTruthEntry {
    /// The sounding objects' boxes of a scene.
    pub fn of(scene: &Scene) -> Self {
        let sounding: Vec<_> = scene.objects.iter().filter(|o| o.sounding).collect();
        Self {
            file: scene.id.clone(),
            class: scene.labels().join(", "),
            bbox: sounding.iter().map(|o| o.bbox).collect(),
            classes: sounding.iter().map(|o| o.class_name.clone()).collect(),
            silent_same_class: scene.has_silent_twin(),
        }
    }
}
