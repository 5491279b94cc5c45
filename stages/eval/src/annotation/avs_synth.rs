//! AVS-Synth ground truth, VGG-SS json form with two extensions:
//! `[{"file": "<id>", "class": "a, b", "bbox": [[x1, y1, x2, y2], ...], "classes": ["a", "b"],
//! "silent_same_class": true}, ...]`, normalised xyxy, one box and one class per sounding object in source
//! order, all in one frame. `silent_same_class` (a silent object of a sounding object's class is in view) is
//! absent from files written before the generator recorded it, and then reads false.

use super::{bad, read_text, source, Annotation, BoxConvention, FrameLayout};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    file: String,
    #[allow(dead_code)]
    class: String,
    bbox: Vec<[f64; 4]>,
    classes: Vec<String>,
    #[serde(default)]
    silent_same_class: bool,
}

pub(super) fn load(path: &Path) -> anyhow::Result<Vec<Annotation>> {
    let text = read_text(path)?;
    let list: Vec<Entry> = serde_json::from_str(&text).map_err(|e| bad(path, "avs-synth", e))?;
    let mut entries = BTreeMap::new();
    for e in list {
        if entries.contains_key(&e.file) {
            return Err(bad(path, "avs-synth", format!("duplicate entry `{}`", e.file)).into());
        }
        entries.insert(e.file.clone(), e);
    }
    let conv = BoxConvention::Xyxy01;
    entries
        .into_iter()
        .map(|(id, e)| {
            if e.bbox.len() != e.classes.len() {
                return Err(bad(
                    path,
                    "avs-synth",
                    format!(
                        "`{id}`: {} boxes but {} classes",
                        e.bbox.len(),
                        e.classes.len()
                    ),
                )
                .into());
            }
            let sources = e
                .bbox
                .into_iter()
                .zip(e.classes)
                .map(|(b, c)| source(Some(c), vec![b], conv))
                .collect();
            Ok(Annotation {
                id,
                sources,
                convention: conv,
                layout: FrameLayout::Shared,
                silent_same_class: e.silent_same_class,
            })
        })
        .collect()
}
