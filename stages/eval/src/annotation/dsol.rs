//! DSOL MUSIC annotations (`solotest.json`, `duettest.json`):
//! `{"<clip>/frame_NNN/NNNNN.jpg": {"bbox": [{"box", "normbox", "category_id"}], "wdith", "height"}}`.
//!
//! `normbox` is normalised `[x, y, w, h]`; each listed box is one sounding object. The misspelt
//! `"wdith"` key is accepted (and so is `"width"`). Samples come out sorted by key.

use super::{bad, read_text, source, Annotation, BoxConvention, FrameLayout};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
struct DsolBox {
    #[serde(rename = "box")]
    _pixel: [f64; 4],
    normbox: [f64; 4],
    category_id: u32,
}

#[derive(Deserialize)]
struct Frame {
    bbox: Vec<DsolBox>,
    #[serde(alias = "width")]
    wdith: f64,
    height: f64,
}

/// DSOL `category_id` names (from DSOL `eval_duet.py`).
pub fn category_name(id: u32) -> String {
    match id {
        1 => "cello".into(),
        3 => "acoustic_guitar".into(),
        8 => "saxophone".into(),
        10 => "trumpet".into(),
        11 => "violin".into(),
        12 => "flute".into(),
        13 => "accordion".into(),
        other => format!("category_{other}"),
    }
}

pub(super) fn load(path: &Path) -> anyhow::Result<Vec<Annotation>> {
    let text = read_text(path)?;
    let frames: BTreeMap<String, Frame> =
        serde_json::from_str(&text).map_err(|e| bad(path, "dsol", e))?;
    let conv = BoxConvention::Xywh01;
    Ok(frames
        .into_iter()
        .map(|(id, f)| {
            let _ = (f.wdith, f.height);
            Annotation {
                id,
                sources: f
                    .bbox
                    .into_iter()
                    .map(|b| source(Some(category_name(b.category_id)), vec![b.normbox], conv))
                    .collect(),
                convention: conv,
                layout: FrameLayout::Shared,
                silent_same_class: false,
            }
        })
        .collect())
}
