//! VGGSound-Single / VGGSound-Duet lists (AVGN): `file,class` or `file,class,mix_file,mix_class`
//! rows, boxes looked up in `vggss.json`.
//!
//! A duet sample has id `file+mix_file` and two sources, each in its own frame
//! ([`FrameLayout::OnePerSource`]): the evaluator builds a mosaic (NoPrior stacks vertically,
//! AVGN/T-VSL side by side). A single-list sample keeps the frame id.

use super::{bad, read_text, source, vggss, Annotation, BoxConvention, FrameLayout};
use std::path::Path;

pub(super) fn load(path: &Path, boxes: &Path) -> anyhow::Result<Vec<Annotation>> {
    let index = vggss::index(boxes)?;
    let text = read_text(path)?;
    let conv = BoxConvention::Xyxy01;
    let mut out = Vec::new();
    for (line_no, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.trim().split(',').collect();
        if line.trim().is_empty() || (line_no == 0 && matches!(cols[0], "file" | "video")) {
            continue;
        }
        let frames: Vec<(&str, &str)> = match cols.as_slice() {
            [f, c] => vec![(f, c)],
            [f, c, mf, mc] => vec![(f, c), (mf, mc)],
            _ => {
                return Err(bad(
                    path,
                    "vggsound-pairs",
                    format!("line {}: expected 2 or 4 columns", line_no + 1),
                )
                .into())
            }
        };
        let mut sources = Vec::new();
        for (file, class) in &frames {
            let (_, raw) = index.get(*file).ok_or_else(|| {
                bad(
                    path,
                    "vggsound-pairs",
                    format!("line {}: `{file}` not in {}", line_no + 1, boxes.display()),
                )
            })?;
            sources.push(source(Some(class.to_string()), raw.clone(), conv));
        }
        let id = frames.iter().map(|(f, _)| *f).collect::<Vec<_>>().join("+");
        let layout = if frames.len() > 1 {
            FrameLayout::OnePerSource
        } else {
            FrameLayout::Shared
        };
        out.push(Annotation {
            id,
            sources,
            convention: conv,
            layout,
            silent_same_class: false,
        });
    }
    Ok(out)
}
