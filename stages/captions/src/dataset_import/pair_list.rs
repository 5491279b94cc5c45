//! VGGSound-Duet pair lists (AVGN's `vggsound_duet_test.csv`): `file,class,mix_file,mix_class` per line, each
//! line one pair sample.
//!
//! The row's id is `file+mix_file`, its videos `file`'s then `mix_file`'s (found by stem as for the other
//! formats; the first is the mosaic's top tile, source 1), its labels `class|mix_class`. A first line starting
//! with `file` is a header. With `--annotations vggss.json` both sides must have boxes there, since the pair is
//! only useful for evaluation against them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use oassl_pipeline::manifest::ManifestRow;
use oassl_pipeline::SampleId;

use super::{checked_label, index_videos, ImportOutcome, VIDEO_EXTENSIONS};

/// What to import from a pair list.
#[derive(Debug, Clone)]
pub struct PairRequest {
    /// The pair list.
    pub list: PathBuf,
    /// Folder searched (recursively) for the videos.
    pub videos: PathBuf,
    /// Split written into every row.
    pub split: String,
    /// VGG-SS `vggss.json`: when given, both sides of every pair must have boxes in it.
    pub annotations: Option<PathBuf>,
    /// Leave out pairs with a video not found (their ids in the outcome) instead of failing.
    pub skip_missing: bool,
}

/// Ids of `vggss.json` entries that have at least one box.
fn ids_with_boxes(path: &Path) -> Result<HashSet<String>> {
    #[derive(serde::Deserialize)]
    struct Entry {
        file: String,
        #[serde(default)]
        bbox: Option<Vec<serde_json::Value>>,
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let entries: Vec<Entry> = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}: expected a VGG-SS list of {{file, class, bbox}}",
            path.display()
        )
    })?;
    Ok(entries
        .into_iter()
        .filter(|e| e.bbox.as_ref().is_some_and(|b| !b.is_empty()))
        .map(|e| e.file)
        .collect())
}

/// One parsed line: the two sides' ids and labels.
struct PairLine {
    ids: [SampleId; 2],
    labels: Vec<String>,
}

/// Parses `file,class,mix_file,mix_class`; `at` names the list and line in errors.
fn parse_line(line: &str, at: &str) -> Result<PairLine> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    let [file, class, mix_file, mix_class] = fields[..] else {
        bail!(
            "{at}: expected `file,class,mix_file,mix_class`, got {} fields",
            fields.len()
        );
    };
    let side = |f: &str| SampleId::parse(f).with_context(|| format!("{at}: video id {f:?}"));
    let ids = [side(file)?, side(mix_file)?];
    if ids[0] == ids[1] {
        bail!(
            "{at}: pairs {} with itself; a pair needs two different videos",
            ids[0]
        );
    }
    let labels = [class, mix_class]
        .iter()
        .map(|l| checked_label(l, || at.to_string()))
        .collect::<Result<Vec<_>>>()?;
    Ok(PairLine { ids, labels })
}

/// Reads the pair list and finds both videos of every pair.
pub fn import_pairs(req: &PairRequest) -> Result<ImportOutcome> {
    let text = std::fs::read_to_string(&req.list)
        .with_context(|| format!("reading list {}", req.list.display()))?;
    let boxed = match &req.annotations {
        Some(p) => Some(ids_with_boxes(p)?),
        None => None,
    };
    let videos = index_videos(&req.videos)?;
    let mut out = ImportOutcome::default();
    let mut seen = HashSet::new();
    let mut first = true;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let header = std::mem::take(&mut first) && line.to_ascii_lowercase().starts_with("file,");
        if header {
            continue;
        }
        let at = format!("{}: line {}", req.list.display(), n + 1);
        let pair = parse_line(line, &at)?;
        let id = SampleId::parse(&format!("{}+{}", pair.ids[0], pair.ids[1]))
            .with_context(|| format!("{at}: pair id"))?;
        if !seen.insert(id.clone()) {
            bail!("{at}: duplicate pair {id}");
        }
        if let (Some(boxed), Some(path)) = (&boxed, &req.annotations) {
            if let Some(side) = pair.ids.iter().find(|s| !boxed.contains(s.as_str())) {
                bail!(
                    "{at}: boxes missing for one side of {id}: {side} has no boxes in {}",
                    path.display()
                );
            }
        }
        match find_pair_videos(&pair.ids, &videos) {
            Ok(paths) => out.rows.push(ManifestRow {
                id,
                videos: paths,
                labels: pair.labels,
                split: req.split.clone(),
                timestamp: None,
            }),
            Err(_) if req.skip_missing => out.missing_videos.push(id.to_string()),
            Err(side) => bail!(
                "{at}: no video for {side} (of pair {id}) under {} (looked for {side}.{{{}}}); --skip-missing leaves such pairs out",
                req.videos.display(),
                VIDEO_EXTENSIONS.join(",")
            ),
        }
    }
    Ok(out)
}

/// Both sides' absolute video paths, in order, or the first side without a video.
fn find_pair_videos<'a>(
    ids: &'a [SampleId; 2],
    videos: &HashMap<String, PathBuf>,
) -> std::result::Result<Vec<String>, &'a SampleId> {
    ids.iter()
        .map(|side| {
            let video = videos.get(side.as_str()).ok_or(side)?;
            let video = std::path::absolute(video).unwrap_or_else(|_| video.clone());
            Ok(video.to_string_lossy().into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    /// A pair list in `dir` and a video folder holding `a`, `b` (nested) and `c`.
    fn setup(dir: &Path, list_text: &str) -> PairRequest {
        let videos = dir.join("videos");
        touch(&videos.join("a_000001.mp4"));
        touch(&videos.join("cats/b_000002.mkv"));
        touch(&videos.join("c_000003.webm"));
        let list = dir.join("duet.csv");
        std::fs::write(&list, list_text).unwrap();
        PairRequest {
            list,
            videos,
            split: "test".into(),
            annotations: None,
            skip_missing: false,
        }
    }

    fn error(req: &PairRequest) -> String {
        format!("{:#}", import_pairs(req).unwrap_err())
    }

    #[test]
    fn one_row_per_pair_with_both_videos_in_order_and_both_labels() {
        let dir = tempfile::tempdir().unwrap();
        let req = setup(
            dir.path(),
            "file,class,mix_file,mix_class\n# pairs\n\na_000001,elk_bugling,b_000002,people_coughing\n\
             c_000003, cat_hissing ,a_000001,elk_bugling\n",
        );
        let out = import_pairs(&req).unwrap();
        let ids: Vec<_> = out.rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a_000001+b_000002", "c_000003+a_000001"]);
        assert_eq!(out.rows[0].labels, vec!["elk bugling", "people coughing"]);
        assert_eq!(out.rows[1].labels, vec!["cat hissing", "elk bugling"]);
        let root = std::path::absolute(&req.videos).unwrap();
        let expect = |rel: &[&str]| -> Vec<String> {
            rel.iter()
                .map(|r| root.join(r).to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            out.rows[0].videos,
            expect(&["a_000001.mp4", "cats/b_000002.mkv"])
        );
        assert_eq!(
            out.rows[1].videos,
            expect(&["c_000003.webm", "a_000001.mp4"])
        );
        assert!(out.rows.iter().all(|r| r.split == "test"));
        assert!(out.missing_videos.is_empty());
    }

    #[test]
    fn bad_lines_are_refused_naming_the_list_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let ok = "a_000001,elk,b_000002,cat\n";
        for (bad, wanted) in [
            ("a_000001,elk,b_000002\n", "got 3 fields"),
            ("a_000001,elk,b_000002,cat,dog\n", "got 5 fields"),
            ("a_000001,elk,a_000001,elk\n", "with itself"),
            ("a_000001,elk,../b,cat\n", "../b"),
            ("a_000001,elk,b_000002,\n", "empty label"),
            (ok, "duplicate pair a_000001+b_000002"),
        ] {
            let req = setup(dir.path(), &format!("{ok}{bad}"));
            let err = error(&req);
            assert!(
                err.contains("duet.csv: line 2") && err.contains(wanted),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn a_missing_video_stops_the_import_or_leaves_the_pair_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut req = setup(
            dir.path(),
            "a_000001,elk,b_000002,cat\nc_000003,dog,z_000009,horn\n",
        );
        let err = error(&req);
        assert!(
            err.contains("line 2")
                && err.contains("no video for z_000009")
                && err.contains("--skip-missing"),
            "{err}"
        );
        req.skip_missing = true;
        let out = import_pairs(&req).unwrap();
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.missing_videos, vec!["c_000003+z_000009"]);
    }

    #[test]
    fn with_annotations_both_sides_need_boxes() {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("vggss.json");
        std::fs::write(
            &json,
            r#"[{"file": "a_000001", "class": "elk", "bbox": [[0.1, 0.1, 0.5, 0.5]]},
                {"file": "b_000002", "class": "cat", "bbox": [[0.2, 0.2, 0.6, 0.6]]},
                {"file": "c_000003", "class": "dog", "bbox": []}]"#,
        )
        .unwrap();
        let mut req = setup(dir.path(), "a_000001,elk,b_000002,cat\n");
        req.annotations = Some(json);
        assert_eq!(import_pairs(&req).unwrap().rows.len(), 1);
        for (line, side) in [
            ("b_000002,cat,c_000003,dog", "c_000003"),
            ("x_000007,owl,a_000001,elk", "x_000007"),
        ] {
            std::fs::write(&req.list, format!("a_000001,elk,b_000002,cat\n{line}\n")).unwrap();
            let err = error(&req);
            assert!(
                err.contains("duet.csv: line 2")
                    && err.contains("boxes missing for one side")
                    && err.contains(side),
                "{err}"
            );
        }
    }

    /// The published list against the published boxes: every side has boxes, ids join with `+`.
    #[test]
    fn the_vggsound_duet_test_list_reads_against_vggss_json() {
        let root =
            std::env::var("OASSL_DATASETS").unwrap_or_else(|_| "/work/shared/datasets".into());
        let root = Path::new(&root);
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("zpWuikVorYg_000032.mp4"));
        touch(&dir.path().join("Rtg1SUrxOPY_000130.mp4"));
        let out = import_pairs(&PairRequest {
            list: root.join("vggsound-duet/vggsound_duet_test.csv"),
            videos: dir.path().to_path_buf(),
            split: "test".into(),
            annotations: Some(root.join("vggss/vggss.json")),
            skip_missing: true,
        })
        .unwrap();
        assert_eq!(out.rows.len(), 1);
        assert_eq!(
            out.rows[0].id.as_str(),
            "zpWuikVorYg_000032+Rtg1SUrxOPY_000130"
        );
        assert_eq!(out.rows[0].labels, vec!["elk bugling", "people coughing"]);
        assert_eq!(out.missing_videos.len(), 5157);
    }
}
