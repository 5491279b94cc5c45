//! AVGN MUSIC json (`music_solo.json`, `music_duet.json`): COCO `[x, y, w, h]` normalised.
//!
//! Solo entries: `{"file", "class", "bbox"}`; duet entries:
//! `{"file", "class_src1", "bbox_src1", "class_src2", "bbox_src2"}` (two sources in one frame).

use super::{bad, read_text, source, Annotation, BoxConvention, FrameLayout};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(untagged)]
enum Entry {
    Duet {
        file: String,
        class_src1: String,
        bbox_src1: [f64; 4],
        class_src2: String,
        bbox_src2: [f64; 4],
    },
    Solo {
        file: String,
        class: String,
        bbox: [f64; 4],
    },
}

pub(super) fn load(path: &Path) -> anyhow::Result<Vec<Annotation>> {
    let text = read_text(path)?;
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| bad(path, "music", e))?;
    let conv = BoxConvention::Xywh01;
    entries
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let entry: Entry = serde_json::from_value(v)
                .map_err(|_| bad(path, "music", format!("entry {i} is neither solo nor duet")))?;
            let (id, sources) = match entry {
                Entry::Solo { file, class, bbox } => {
                    (file, vec![source(Some(class), vec![bbox], conv)])
                }
                Entry::Duet {
                    file,
                    class_src1,
                    bbox_src1,
                    class_src2,
                    bbox_src2,
                } => (
                    file,
                    vec![
                        source(Some(class_src1), vec![bbox_src1], conv),
                        source(Some(class_src2), vec![bbox_src2], conv),
                    ],
                ),
            };
            Ok(Annotation {
                id,
                sources,
                convention: conv,
                layout: FrameLayout::Shared,
                silent_same_class: false,
            })
        })
        .collect()
}
