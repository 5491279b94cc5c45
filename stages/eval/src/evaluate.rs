//! The `score-maps` entry point: predicted maps (safetensors) + annotations -> [`ScoreReport`].

use crate::annotation::{load_annotations, AnnotationFormat};
use crate::error::EvalError;
use crate::map::Map;
use crate::multi_source::{MultiSourceScoring, MultiSourceSelection};
use crate::protocol::Protocol;
use crate::report::{ScoreReport, ScoredSamples};
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
    /// Multi-source scorings to run (ignored by single-source protocols); both by default.
    #[serde(default)]
    pub multi_source: MultiSourceSelection,
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
    let mut scored = opts
        .multi_source
        .scorings(protocol)
        .into_iter()
        .map(|scoring| {
            // A single-source protocol's only scoring is the protocol's own (`score_sample`).
            let how = scoring.unwrap_or(MultiSourceScoring::SourceWise);
            let samples = annotations
                .iter()
                .map(|a| how.score(maps.get(&a.id).map(Vec::as_slice), a, protocol))
                .collect::<Result<Vec<_>, _>>()?;
            let aggregates = how.aggregate(&samples, protocol);
            Ok((
                scoring,
                ScoredSamples {
                    samples,
                    aggregates,
                },
            ))
        })
        .collect::<Result<Vec<_>, EvalError>>()?
        .into_iter();
    let Some((scoring, main)) = scored.next() else {
        return Err(EvalError::NoSamples);
    };
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
        scoring,
        samples: main.samples,
        aggregates: main.aggregates,
        frame_wise: scored.next().map(|(_, f)| f),
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
    fn both_scorings_are_reported_side_by_side_under_multi_source_protocols() {
        let anns = [clip("a"), clip("b")];
        let mut two = clip("two");
        two.sources.push(two.sources[0].clone());
        let anns = [anns[0].clone(), anns[1].clone(), two];
        let maps: BTreeMap<String, Vec<Map>> = ["a", "two"]
            .into_iter()
            .map(|id| (id.to_string(), vec![crate::random_map(7, 8, 8)]))
            .collect();
        let run = |protocol: &Protocol, multi_source| {
            let opts = ScoreOptions {
                missing: MissingMaps::ScoreAsFailure,
                multi_source,
            };
            score_annotations(&maps, &anns, &AnnotationFormat::AvsSynth, protocol, opts).unwrap()
        };
        let both = run(&Protocol::oassl(), MultiSourceSelection::Both);
        assert_eq!(both.scoring, Some(MultiSourceScoring::SourceWise));
        // Source-wise: one entry per source (1 + 1 + 2); frame-wise: one per frame.
        assert_eq!(both.aggregates.entries, 4);
        let frame = both.frame_wise.as_ref().expect("frame-wise scores");
        assert_eq!(
            (frame.aggregates.entries, frame.aggregates.missing_maps),
            (3, 1)
        );
        assert_eq!(frame.aggregates.piap, None);
        assert!(both.aggregates.piap.is_some());
        let (samples, aggregates) = both.scored(MultiSourceScoring::FrameWise).unwrap();
        assert_eq!(
            (samples, aggregates),
            (&frame.samples[..], &frame.aggregates)
        );
        // Frame-wise alone is the report's main scoring, labelled so.
        let alone = run(&Protocol::oassl(), MultiSourceSelection::FrameWise);
        assert_eq!(alone.scoring, Some(MultiSourceScoring::FrameWise));
        assert_eq!(&alone.samples, &frame.samples);
        assert!(alone.frame_wise.is_none());
        assert!(alone.scored(MultiSourceScoring::SourceWise).is_none());
        let source = run(&Protocol::oassl(), MultiSourceSelection::SourceWise);
        assert_eq!(
            (source.aggregates, source.frame_wise),
            (both.aggregates.clone(), None)
        );
        // JSON round trip, and one table row per scoring.
        let back: ScoreReport =
            serde_json::from_str(&serde_json::to_string(&both).unwrap()).unwrap();
        assert_eq!(back, both);
        let md = crate::markdown_table(&both);
        assert!(md.contains("| oassl | avs-synth | 3 | 4 |") && md.contains("| source-wise |"));
        assert!(md.contains("| oassl | avs-synth | 3 | 3 |") && md.contains("| frame-wise |"));
        // Single-source protocols have neither.
        let single = [clip("a"), clip("b")];
        let opts = ScoreOptions {
            missing: MissingMaps::ScoreAsFailure,
            multi_source: MultiSourceSelection::Both,
        };
        let lvs = score_annotations(
            &maps,
            &single,
            &AnnotationFormat::AvsSynth,
            &Protocol::lvs(),
            opts,
        )
        .unwrap();
        assert_eq!((lvs.scoring, &lvs.frame_wise), (None, &None));
        assert!(crate::markdown_table(&lvs).ends_with("| – |\n"));
    }

    #[test]
    fn an_empty_split_is_an_error_not_nan_metrics() {
        let err = score(&BTreeMap::new(), &[]).unwrap_err();
        assert!(matches!(err, EvalError::NoSamples), "{err}");
    }
}
