//! The `score-maps` entry point: predicted maps (safetensors) + annotations -> [`ScoreReport`].

use crate::annotation::{load_annotations, AnnotationFormat};
use crate::error::EvalError;
use crate::map::Map;
use crate::protocol::Protocol;
use crate::report::{aggregate, ScoreReport};
use crate::scoring::{failure, score_sample};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What to do with annotated samples that have no map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MissingMaps {
    /// Refuse, listing every missing id.
    #[default]
    Error,
    /// Score each as a failure: every entry cIoU 0, AP 0, PIAP 0, and a wrong count (refused by
    /// the protocols with confidence metrics, where a failure has no confidence).
    ScoreAsFailure,
}

/// Options of `score_maps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ScoreOptions {
    pub missing: MissingMaps,
}

/// Scores already loaded maps against annotations (in annotation order).
pub fn score_annotations(
    maps: &BTreeMap<String, Vec<Map>>,
    annotations: &[crate::annotation::Annotation],
    format: &AnnotationFormat,
    protocol: &Protocol,
    opts: ScoreOptions,
) -> Result<ScoreReport, EvalError> {
    let missing: Vec<String> = annotations
        .iter()
        .filter(|a| !maps.contains_key(&a.id))
        .map(|a| a.id.clone())
        .collect();
    if !missing.is_empty() && opts.missing == MissingMaps::Error {
        return Err(EvalError::MissingMaps(missing));
    }
    if !missing.is_empty() && protocol.detection.is_some() {
        return Err(EvalError::MissingMapsUnscorable {
            protocol: protocol.name.clone(),
            ids: missing,
        });
    }
    if annotations.is_empty() {
        // Aggregates over nothing would be NaN, and a NaN in a results table reads like a measurement.
        return Err(EvalError::NoSamples);
    }
    for a in annotations {
        for map in maps.get(&a.id).into_iter().flatten() {
            if let Some(index) = map.data.iter().position(|v| !v.is_finite()) {
                return Err(EvalError::NonFinite {
                    id: a.id.clone(),
                    index,
                });
            }
        }
    }
    let samples = annotations
        .iter()
        .map(|a| match maps.get(&a.id) {
            Some(m) => score_sample(m, a, protocol),
            None => Ok(failure(a, protocol)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let annotated: std::collections::HashSet<&str> =
        annotations.iter().map(|a| a.id.as_str()).collect();
    Ok(ScoreReport {
        protocol: protocol.clone(),
        annotation_format: format.name().to_string(),
        unannotated_maps: maps
            .keys()
            .filter(|k| !annotated.contains(k.as_str()))
            .cloned()
            .collect(),
        aggregates: aggregate(&samples, protocol),
        samples,
    })
}

/// `score-maps`: reads `maps` (safetensors, one tensor per sample id) and the annotation file,
/// and scores every annotated sample under `protocol`.
pub fn score_maps(
    maps: &Path,
    annotations: &Path,
    format: AnnotationFormat,
    protocol: Protocol,
    opts: ScoreOptions,
) -> anyhow::Result<ScoreReport> {
    let anns = load_annotations(annotations, &format)
        .with_context(|| format!("loading {} annotations", format.name()))?;
    let loaded = crate::maps_file::read_maps(maps)?;
    score_annotations(&loaded, &anns, &format, &protocol, opts).with_context(|| {
        format!(
            "scoring {} against {} with protocol `{}`",
            maps.display(),
            annotations.display(),
            protocol.name
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotation::{source, Annotation, BoxConvention, FrameLayout};

    fn clip(id: &str) -> Annotation {
        Annotation {
            id: id.into(),
            sources: vec![source(
                None,
                vec![[0.25, 0.25, 0.75, 0.75]],
                BoxConvention::Xyxy01,
            )],
            convention: BoxConvention::Xyxy01,
            layout: FrameLayout::Shared,
            silent_same_class: false,
        }
    }

    fn score(
        maps: &BTreeMap<String, Vec<Map>>,
        anns: &[Annotation],
    ) -> Result<ScoreReport, EvalError> {
        score_annotations(
            maps,
            anns,
            &AnnotationFormat::AvsSynth,
            &Protocol::oassl(),
            ScoreOptions::default(),
        )
    }

    #[test]
    fn a_nan_map_is_refused_naming_the_sample_and_position() {
        let anns = [clip("good"), clip("bad")];
        let mut bad = Map::zeros(8, 8);
        bad.data[13] = f64::NAN;
        let maps = BTreeMap::from([
            ("good".to_string(), vec![Map::zeros(8, 8)]),
            ("bad".to_string(), vec![bad]),
        ]);
        let err = score(&maps, &anns).unwrap_err().to_string();
        assert!(err.contains("`bad`") && err.contains("13"), "{err}");
        let maps = BTreeMap::from([
            ("good".to_string(), vec![Map::zeros(8, 8)]),
            ("bad".to_string(), vec![Map::zeros(8, 8)]),
        ]);
        assert_eq!(score(&maps, &anns).unwrap().samples.len(), 2);
    }

    #[test]
    fn an_empty_split_is_an_error_not_nan_metrics() {
        let err = score(&BTreeMap::new(), &[]).unwrap_err();
        assert!(matches!(err, EvalError::NoSamples), "{err}");
    }
}
