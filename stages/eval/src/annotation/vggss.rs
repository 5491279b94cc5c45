//! VGG-SS `vggss.json`: a list of `{"file", "class", "bbox": [[x1, y1, x2, y2], ...]}`.
//!
//! Boxes are normalised xyxy; 18 boxes are degenerate or hold the sentinel
//! `-2.8823037615171176e+16`. They are kept raw and clipped to [0, 1] when painted, as every
//! peer does (an empty box paints nothing, so a frame whose only box is empty has cIoU 0).

use super::{bad, read_text, source, Annotation, BoxConvention, FrameLayout};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    file: String,
    class: String,
    bbox: Vec<[f64; 4]>,
}

fn parse(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let text = read_text(path)?;
    Ok(serde_json::from_str(&text).map_err(|e| bad(path, "vggss", e))?)
}

/// All frames of `vggss.json`, one source each (its class, all its boxes).
pub(super) fn load(path: &Path) -> anyhow::Result<Vec<Annotation>> {
    Ok(parse(path)?
        .into_iter()
        .map(|e| Annotation {
            id: e.file,
            sources: vec![source(Some(e.class), e.bbox, BoxConvention::Xyxy01)],
            convention: BoxConvention::Xyxy01,
            layout: FrameLayout::Shared,
            silent_same_class: false,
        })
        .collect())
}

/// `file -> (class, raw boxes)`.
pub(super) type FrameIndex = HashMap<String, (String, Vec<[f64; 4]>)>;

/// Frame index for the pair lists.
pub(super) fn index(path: &Path) -> anyhow::Result<FrameIndex> {
    Ok(parse(path)?
        .into_iter()
        .map(|e| (e.file, (e.class, e.bbox)))
        .collect())
}
