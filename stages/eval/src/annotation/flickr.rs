//! Flickr-SoundNet annotation XML (one `<id>.xml` per test image, not public).
//!
//! Parsed as every peer parses it: each grandchild of the root must be a `<bbox>`; its first
//! child is skipped and the next four are `xmin, ymin, xmax, ymax` integers in the 256x256
//! frame. All boxes (one per annotator) form one source, painted as a consensus map.

use super::{bad, read_text, source, Annotation, BoxConvention, FrameLayout};
use crate::error::EvalError;
use quick_xml::events::Event;
use quick_xml::Reader;
use std::path::Path;

/// Parses one Flickr XML document into its raw 256-px boxes. `file` names it in errors.
pub fn parse_flickr_xml(xml: &str, file: &Path) -> Result<Vec<[f64; 4]>, EvalError> {
    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let mut depth = 0usize;
    let mut boxes = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut text = String::new();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| bad(file, "flickr-xml", e))?;
        match event {
            Event::Start(e) => {
                depth += 1;
                if depth == 3 && e.name().as_ref() != b"bbox" {
                    let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    return Err(bad(
                        file,
                        "flickr-xml",
                        format!("grandchild <{tag}> is not <bbox>"),
                    ));
                }
                text.clear();
            }
            Event::Empty(e) => {
                if depth + 1 == 3 {
                    let tag = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                    return Err(bad(file, "flickr-xml", format!("empty grandchild <{tag}>")));
                }
                if depth + 1 == 4 {
                    fields.push(String::new());
                }
            }
            Event::Text(t) => {
                let s = t.unescape().map_err(|e| bad(file, "flickr-xml", e))?;
                text.push_str(&s);
            }
            Event::End(_) => {
                if depth == 4 {
                    fields.push(text.trim().to_string());
                } else if depth == 3 {
                    boxes.push(bbox_from_fields(&fields, file)?);
                    fields.clear();
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(boxes)
}

fn bbox_from_fields(fields: &[String], file: &Path) -> Result<[f64; 4], EvalError> {
    if fields.len() < 5 {
        return Err(bad(
            file,
            "flickr-xml",
            format!("<bbox> has {} children, need 5", fields.len()),
        ));
    }
    let mut b = [0.0; 4];
    for (slot, text) in b.iter_mut().zip(&fields[1..5]) {
        let v: i64 = text
            .parse()
            .map_err(|_| bad(file, "flickr-xml", format!("`{text}` is not an integer")))?;
        *slot = v as f64;
    }
    Ok(b)
}

/// Every `*.xml` in `dir`, sorted by file name; the id is the file stem.
pub(super) fn load_dir(dir: &Path) -> anyhow::Result<Vec<Annotation>> {
    use anyhow::Context;
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(bad(dir, "flickr-xml", "no .xml files in directory").into());
    }
    let conv = BoxConvention::Pixel256;
    paths
        .iter()
        .map(|p| {
            let raw = parse_flickr_xml(&read_text(p)?, p)?;
            let id = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(Annotation {
                id,
                sources: vec![source(None, raw, conv)],
                convention: conv,
                layout: FrameLayout::Shared,
                silent_same_class: false,
            })
        })
        .collect()
}
