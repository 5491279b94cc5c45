//! SLAVC's extended test lists (`flickr_test_plus_silent.csv`, `vggss_test_plus_silent.csv`):
//! header `video,audio,label`, every row a non-sounding pair, the frame of clip `video` shown
//! with the audio of clip `audio`.
//!
//! SLAVC appends each `non-sounding` row to the usual test list with no box (its GT map is
//! empty and its box count 0) and ignores any other label. A pair's predicted map is keyed
//! [`key`]`(video, audio)` = `nonsounding/<video>/<audio>`, so it never collides with the map of
//! the sounding sample of the same frame, which keeps its plain id. In the VGG-SS list 379 rows
//! pair a frame with its own clip id; SLAVC still treats them as non-sounding, and so do we.

use super::{bad, read_text, Annotation, BoxConvention, FrameLayout};
use std::path::Path;

/// The label SLAVC appends (`item[2] == 'non-sounding'`).
pub const NON_SOUNDING: &str = "non-sounding";

/// Map key of the non-sounding pair (frame of `video`, audio of `audio`).
pub fn key(video: &str, audio: &str) -> String {
    format!("nonsounding/{video}/{audio}")
}

/// The list's non-sounding pairs as box-less annotations, in file order.
pub(super) fn load(path: &Path) -> anyhow::Result<Vec<Annotation>> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let [video, audio, label] = cols.as_slice() else {
            let reason = format!(
                "line {}: expected 3 columns video,audio,label, got {}",
                line_no + 1,
                cols.len()
            );
            return Err(bad(path, "non-sounding pairs", reason).into());
        };
        if *label != NON_SOUNDING {
            // The header, and any row SLAVC would not append.
            continue;
        }
        out.push(Annotation {
            id: key(video, audio),
            sources: Vec::new(),
            convention: BoxConvention::Xyxy01,
            layout: FrameLayout::Shared,
            silent_same_class: false,
        });
    }
    if out.is_empty() {
        return Err(bad(path, "non-sounding pairs", "no `non-sounding` row").into());
    }
    Ok(out)
}
