//! Manifest rows from a local copy of a public dataset: VGGSound (and its VGG-SS subsets) or MUSIC, given a
//! folder of videos and one of the benchmarks' list files (`../shared/datasets` in this project's checkout).
//!
//! List files, one clip per line (blank lines and `#` comments skipped):
//!
//! | format | line | labels from |
//! | --- | --- | --- |
//! | `vggsound` | `id` (`vggss_test.csv`, `train_lists/vggss_10k.txt`) | `--labels vggsound.csv` (`ytid,start,label,split`) or `--annotations vggss.json` (`file`, `class`) |
//! | `vggsound` | `id,label` (`vggsound_single_test.csv`) | the line |
//! | `music` | `id,label[,label...]` (`music_solo_train.txt`, `music_duet_train.txt`) | the line |
//!
//! Labels written with underscores (`acoustic_guitar`) are read with spaces. Pair lists that name two videos per
//! sample (`vggsound_duet_test.csv`) are refused: a manifest row is one clip. A video is found by its file stem
//! (the id) anywhere under the video folder (`.mp4`, `.mkv`, `.webm`, `.avi`, `.mov`, `.flv`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use oassl_pipeline::manifest::ManifestRow;
use oassl_pipeline::SampleId;

/// Which dataset's list conventions to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// VGGSound / VGG-SS: `id` or `id,label`.
    VggSound,
    /// MUSIC solo / duet: `id,label[,label...]`.
    Music,
}

impl std::str::FromStr for ListFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "vggsound" => Ok(Self::VggSound),
            "music" => Ok(Self::Music),
            other => bail!("unknown list format {other:?}: expected vggsound or music"),
        }
    }
}

/// What to import.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub format: ListFormat,
    /// The list file.
    pub list: PathBuf,
    /// Folder searched (recursively) for the videos.
    pub videos: PathBuf,
    /// Split written into every row (`train`, `test`, ...).
    pub split: String,
    /// VGGSound's `vggsound.csv` (`ytid,start,label,split`), for lists without labels.
    pub labels_csv: Option<PathBuf>,
    /// VGG-SS `vggss.json` (`file`, `class`), for lists without labels.
    pub annotations: Option<PathBuf>,
    /// Leave out clips whose video is not found (listed in the outcome) instead of failing.
    pub skip_missing: bool,
}

/// The rows and what was left out.
#[derive(Debug, Clone, Default)]
pub struct ImportOutcome {
    pub rows: Vec<ManifestRow>,
    /// Ids whose video was not found under the video folder (only with `skip_missing`).
    pub missing_videos: Vec<String>,
}

const VIDEO_EXTENSIONS: [&str; 6] = ["mp4", "mkv", "webm", "avi", "mov", "flv"];

/// Every video under `dir`, by file stem; the first one found (in sorted path order) wins.
fn index_videos(dir: &Path) -> Result<HashMap<String, PathBuf>> {
    if !dir.is_dir() {
        bail!("video folder {} not found", dir.display());
    }
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("listing {}", d.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("listing {}", d.display()))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    let mut index = HashMap::new();
    for path in found {
        if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
            index.entry(stem.to_string()).or_insert(path);
        }
    }
    Ok(index)
}

fn label_text(raw: &str) -> String {
    raw.trim().replace('_', " ")
}

/// `id → label` from VGGSound's `vggsound.csv`: `ytid,start,label,split`, id = `<ytid>_<start, 6 digits>`.
fn read_vggsound_csv(path: &Path) -> Result<HashMap<String, String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut out = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
        let (Some(ytid), Some(start), Some(label)) = (record.get(0), record.get(1), record.get(2))
        else {
            bail!(
                "{}: line {}: expected ytid,start,label,split",
                path.display(),
                i + 1
            );
        };
        let Ok(start) = start.trim().parse::<u32>() else {
            // A header line, if the copy has one.
            if i == 0 {
                continue;
            }
            bail!(
                "{}: line {}: start {start:?} is not a whole number of seconds",
                path.display(),
                i + 1
            );
        };
        out.insert(format!("{}_{start:06}", ytid.trim()), label_text(label));
    }
    Ok(out)
}

/// `file → class` from VGG-SS `vggss.json`.
fn read_vggss_classes(path: &Path) -> Result<HashMap<String, String>> {
    #[derive(serde::Deserialize)]
    struct Entry {
        file: String,
        class: String,
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
        .map(|e| (e.file, label_text(&e.class)))
        .collect())
}

/// Reads the list and finds every clip's video and labels.
pub fn import(req: &ImportRequest) -> Result<ImportOutcome> {
    let text = std::fs::read_to_string(&req.list)
        .with_context(|| format!("reading list {}", req.list.display()))?;
    let mut known_labels = HashMap::new();
    if let Some(p) = &req.labels_csv {
        known_labels.extend(read_vggsound_csv(p)?);
    }
    if let Some(p) = &req.annotations {
        known_labels.extend(read_vggss_classes(p)?);
    }
    let videos = index_videos(&req.videos)?;
    let list = req.list.display();
    let mut out = ImportOutcome::default();
    let mut seen = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let id = SampleId::parse(fields[0])
            .with_context(|| format!("{list}: line {line_no}: sample id {:?}", fields[0]))?;
        if !seen.insert(id.clone()) {
            bail!("{list}: line {line_no}: duplicate sample id {id}");
        }
        let labels: Vec<String> = match (req.format, fields.len()) {
            (ListFormat::VggSound, 1) => match known_labels.get(id.as_str()) {
                Some(l) => vec![l.clone()],
                None => bail!(
                    "{list}: line {line_no}: no label for {id}: give --labels vggsound.csv or --annotations vggss.json that list it"
                ),
            },
            (ListFormat::VggSound, 2) => vec![label_text(fields[1])],
            (ListFormat::VggSound, 4) => bail!(
                "{list}: line {line_no}: a pair of two videos (VGGSound-Duet style); a manifest row is one clip"
            ),
            (ListFormat::VggSound, k) => bail!(
                "{list}: line {line_no}: expected `id` or `id,label`, got {k} fields"
            ),
            (ListFormat::Music, 1) => bail!(
                "{list}: line {line_no}: expected `id,label[,label...]`, got no label"
            ),
            (ListFormat::Music, _) => fields[1..].iter().map(|l| label_text(l)).collect(),
        };
        if labels.iter().any(String::is_empty) {
            bail!("{list}: line {line_no}: empty label for {id}");
        }
        let Some(video) = videos.get(id.as_str()) else {
            if req.skip_missing {
                out.missing_videos.push(id.to_string());
                continue;
            }
            bail!(
                "{list}: line {line_no}: no video for {id} under {} (looked for {id}.{{{}}}); --skip-missing leaves such clips out",
                req.videos.display(),
                VIDEO_EXTENSIONS.join(",")
            );
        };
        let video = std::path::absolute(video).unwrap_or_else(|_| video.clone());
        out.rows.push(ManifestRow {
            id,
            video: Some(video.to_string_lossy().into_owned()),
            labels,
            split: req.split.clone(),
            timestamp: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of the benchmarks' annotation copies (`OASSL_DATASETS`, default `/work/shared/datasets`).
    fn shared(rel: &str) -> PathBuf {
        let root =
            std::env::var("OASSL_DATASETS").unwrap_or_else(|_| "/work/shared/datasets".into());
        Path::new(&root).join(rel)
    }

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"").unwrap();
    }

    fn request(format: ListFormat, list: PathBuf, videos: &Path) -> ImportRequest {
        ImportRequest {
            format,
            list,
            videos: videos.to_path_buf(),
            split: "test".into(),
            labels_csv: None,
            annotations: None,
            skip_missing: true,
        }
    }

    #[test]
    fn music_duet_train_list_gives_two_labels_and_finds_nested_videos() {
        let list = shared("music/train_lists/music_duet_train.txt");
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("duet/cello/K_U5-GbPgi0_098_02961.mp4"));
        touch(&dir.path().join("K_U5-GbPgi0_098_02940.MKV"));
        let out = import(&request(ListFormat::Music, list.clone(), dir.path())).unwrap();
        assert_eq!(out.rows.len(), 2);
        let row = out
            .rows
            .iter()
            .find(|r| r.id.as_str() == "K_U5-GbPgi0_098_02961")
            .unwrap();
        assert_eq!(row.labels, vec!["cello", "acoustic guitar"]);
        assert!(row
            .video
            .as_ref()
            .unwrap()
            .ends_with("duet/cello/K_U5-GbPgi0_098_02961.mp4"));
        let lines = std::fs::read_to_string(&list).unwrap().lines().count();
        assert_eq!(out.missing_videos.len(), lines - 2);
        // Without --skip-missing the first absent video stops the import, naming line and id.
        let strict = ImportRequest {
            skip_missing: false,
            ..request(ListFormat::Music, list, dir.path())
        };
        let err = format!("{:#}", import(&strict).unwrap_err());
        assert!(
            err.contains("no video for") && err.contains("line "),
            "{err}"
        );
    }

    #[test]
    fn vggss_ids_take_labels_from_the_annotations_and_pairs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("zpWuikVorYg_000032.mp4"));
        touch(&dir.path().join("gEvCUcZ6w88_000030.mp4"));
        let ids = request(
            ListFormat::VggSound,
            shared("vggss/vggss_test.csv"),
            dir.path(),
        );
        let err = format!("{:#}", import(&ids).unwrap_err());
        assert!(err.contains("no label for zpWuikVorYg_000032"), "{err}");
        let out = import(&ImportRequest {
            annotations: Some(shared("vggss/vggss.json")),
            ..ids
        })
        .unwrap();
        let labels: Vec<_> = out.rows.iter().map(|r| r.labels[0].as_str()).collect();
        assert_eq!(labels, ["elk bugling", "female speech, woman speaking"]);
        assert_eq!(out.rows.len() + out.missing_videos.len(), 5158);

        let single = request(
            ListFormat::VggSound,
            shared("vggsound-duet/vggsound_single_test.csv"),
            dir.path(),
        );
        let out = import(&single).unwrap();
        assert_eq!(out.rows[0].labels, vec!["elk bugling"]);
        let pairs = request(
            ListFormat::VggSound,
            shared("vggsound-duet/vggsound_duet_test.csv"),
            dir.path(),
        );
        let err = format!("{:#}", import(&pairs).unwrap_err());
        assert!(err.contains("line 1") && err.contains("pair"), "{err}");
    }

    #[test]
    fn vggsound_csv_labels_hostile_ids_and_missing_folders() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("vggsound.csv");
        std::fs::write(
            &csv,
            "abc,30,\"people marching, loud\",train\nxyz,5,dog_barking,test\n",
        )
        .unwrap();
        let list = dir.path().join("list.txt");
        std::fs::write(&list, "# ids\nabc_000030\n\nxyz_000005\n").unwrap();
        let videos = dir.path().join("v");
        touch(&videos.join("abc_000030.mp4"));
        touch(&videos.join("xyz_000005.webm"));
        let req = ImportRequest {
            labels_csv: Some(csv),
            ..request(ListFormat::VggSound, list.clone(), &videos)
        };
        let out = import(&req).unwrap();
        let labels: Vec<_> = out.rows.iter().map(|r| r.labels.clone()).collect();
        assert_eq!(labels, [vec!["people marching, loud"], vec!["dog barking"]]);
        std::fs::write(&list, "../escape\n").unwrap();
        let err = format!("{:#}", import(&req).unwrap_err());
        assert!(err.contains("line 1") && err.contains("../escape"), "{err}");
        let gone = ImportRequest {
            videos: dir.path().join("nowhere"),
            ..req
        };
        let err = format!("{:#}", import(&gone).unwrap_err());
        assert!(err.contains("nowhere"), "{err}");
    }
}
