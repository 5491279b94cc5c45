//! Manifest rows from a local copy of a public dataset: VGGSound (and its VGG-SS subsets) or MUSIC, given a
//! folder of videos and one of the list files published with the benchmarks, or from a plain folder of videos
//! without a list.
//!
//! List files, one sample per line (blank lines and `#` comments skipped):
//!
//! | format | line | labels from |
//! | --- | --- | --- |
//! | `vggsound` | `id` (`vggss_test.csv`, `train_lists/vggss_10k.txt`) | `--labels vggsound.csv` (`ytid,start,label,split`) or `--annotations vggss.json` (`file`, `class`) |
//! | `vggsound` | `id,label` (`vggsound_single_test.csv`) | the line |
//! | `music` | `id,label[,label...]` (`music_solo_train.txt`, `music_duet_train.txt`, `music_solo_test.csv`) or `id` (`music_duet_test.csv`) | the line, else `--annotations music_{solo,duet}.json` (`class`, or `class_src1`, `class_src2`) |
//! | `vggsound-duet` | `file,class,mix_file,mix_class` (`vggsound_duet_test.csv`): one pair sample, id `file+mix_file`, videos `file|mix_file` (see [`pair_list`]) | the line; `--annotations vggss.json` checks both sides have boxes |
//! | `folder` | no list: every video under the folder is a row | `--labels-csv` (`id,label[,label...]`), else the video's parent folder's name |
//!
//! Labels written with underscores (`acoustic_guitar`) are read with spaces. A video is found by its file stem
//! (the id) anywhere under the video folder (`.mp4`, `.mkv`, `.webm`, `.avi`, `.mov`, `.flv`). In a `folder`
//! import two videos with the same stem are refused (naming both), as is a video outside any class folder when
//! there is no labels CSV.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use oassl_pipeline::manifest::ManifestRow;
use oassl_pipeline::SampleId;

pub mod pair_list;

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

/// What `oassl import --format` names: a benchmark list's conventions, or a plain folder of videos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    List(ListFormat),
    /// VGGSound-Duet pair lists: two videos per sample.
    VggSoundDuet,
    /// Every video under a folder, without a list.
    Folder,
}

impl std::str::FromStr for SourceFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "folder" => Ok(Self::Folder),
            "vggsound-duet" => Ok(Self::VggSoundDuet),
            "vggsound" | "music" => Ok(Self::List(s.parse()?)),
            other => {
                bail!("unknown format {other:?}: expected vggsound, vggsound-duet, music or folder")
            }
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

/// Every video under `dir` (recursively), in sorted path order.
fn find_videos(dir: &Path) -> Result<Vec<PathBuf>> {
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
    Ok(found)
}

/// Every video under `dir`, by file stem; the first one found (in sorted path order) wins.
fn index_videos(dir: &Path) -> Result<HashMap<String, PathBuf>> {
    let mut index = HashMap::new();
    for path in find_videos(dir)? {
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
/// `id → labels` from a benchmark annotation file: VGG-SS's `vggss.json` (`file`, `class`) or AVGN's MUSIC json
/// (`file` with `class`, or `class_src1`, `class_src2`, … for a duet), so lists of bare ids can be imported.
fn read_annotation_classes(path: &Path) -> Result<HashMap<String, Vec<String>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let entries: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_slice(&bytes)
        .with_context(|| {
            format!(
                "{}: expected a list of {{file, class, ...}} entries (vggss.json, music_solo.json, music_duet.json)",
                path.display()
            )
        })?;
    let mut out = HashMap::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let text = |key: &str| e.get(key).and_then(|v| v.as_str());
        let file =
            text("file").with_context(|| format!("{}: entry {i} has no `file`", path.display()))?;
        let labels: Vec<String> = match text("class") {
            Some(class) => vec![label_text(class)],
            None => (1..)
                .map_while(|k| text(&format!("class_src{k}")))
                .map(label_text)
                .collect(),
        };
        if labels.is_empty() {
            bail!(
                "{}: entry {i} ({file}) has neither `class` nor `class_src1`",
                path.display()
            );
        }
        out.insert(file.to_string(), labels);
    }
    Ok(out)
}

/// Reads the list and finds every clip's video and labels.
pub fn import(req: &ImportRequest) -> Result<ImportOutcome> {
    let text = std::fs::read_to_string(&req.list)
        .with_context(|| format!("reading list {}", req.list.display()))?;
    let mut known_labels: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(p) = &req.labels_csv {
        known_labels.extend(
            read_vggsound_csv(p)?
                .into_iter()
                .map(|(id, l)| (id, vec![l])),
        );
    }
    if let Some(p) = &req.annotations {
        known_labels.extend(read_annotation_classes(p)?);
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
                Some(l) => l.clone(),
                None => bail!(
                    "{list}: line {line_no}: no label for {id}: give --labels vggsound.csv or --annotations vggss.json that list it"
                ),
            },
            (ListFormat::VggSound, 2) => vec![label_text(fields[1])],
            (ListFormat::VggSound, 4) => bail!(
                "{list}: line {line_no}: a pair of two videos (VGGSound-Duet style): import it with --format vggsound-duet"
            ),
            (ListFormat::VggSound, k) => bail!(
                "{list}: line {line_no}: expected `id` or `id,label`, got {k} fields"
            ),
            (ListFormat::Music, 1) => match known_labels.get(id.as_str()) {
                Some(l) => l.clone(),
                None => bail!(
                    "{list}: line {line_no}: no label for {id}: the line has none (`id,label[,label...]`) and no \
                     --annotations music_{{solo,duet}}.json lists it"
                ),
            },
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
            videos: vec![video.to_string_lossy().into_owned()],
            labels,
            split: req.split.clone(),
            timestamp: None,
        });
    }
    Ok(out)
}

/// What to import from a plain folder of videos (no list file).
#[derive(Debug, Clone)]
pub struct FolderRequest {
    /// Folder searched (recursively) for the videos; each one becomes a row.
    pub videos: PathBuf,
    /// Split written into every row.
    pub split: String,
    /// `id,label[,label...]` lines; without it a video's label is its parent folder's name.
    pub labels_csv: Option<PathBuf>,
    /// Leave out videos the labels CSV does not list (in the outcome) instead of failing.
    pub skip_missing: bool,
}

/// The rows of a folder import and what was left out.
#[derive(Debug, Clone, Default)]
pub struct FolderOutcome {
    pub rows: Vec<ManifestRow>,
    /// Videos the labels CSV does not list (only with `skip_missing`).
    pub unlabelled: Vec<PathBuf>,
    /// Ids of the labels CSV that no video under the folder has, sorted.
    pub labels_without_video: Vec<String>,
}

/// A label as written into the manifest; `|` separates a row's labels there, so it cannot be part of one.
fn checked_label(raw: &str, origin: impl FnOnce() -> String) -> Result<String> {
    let label = label_text(raw);
    if label.is_empty() {
        bail!("{}: empty label", origin());
    }
    if label.contains('|') {
        bail!(
            "{}: label {label:?} contains `|`, which separates labels in the manifest",
            origin()
        );
    }
    Ok(label)
}

/// `id -> labels` from `id,label[,label...]` lines (quoted fields may hold commas; blank lines, `#` comments
/// and a first line starting with `id` as a header are skipped).
fn read_folder_labels(path: &Path) -> Result<HashMap<String, Vec<String>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("opening labels CSV {}", path.display()))?;
    let mut out = HashMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("reading labels CSV {}", path.display()))?;
        let line = record.position().map_or(i as u64 + 1, |p| p.line());
        let at = || format!("{}: line {line}", path.display());
        let id = record.get(0).unwrap_or_default();
        if id.is_empty() && record.iter().all(str::is_empty) {
            continue;
        }
        if i == 0 && id.eq_ignore_ascii_case("id") {
            continue;
        }
        if record.len() < 2 {
            bail!(
                "{}: expected `id,label[,label...]`, got no label for {id:?}",
                at()
            );
        }
        let labels = record
            .iter()
            .skip(1)
            .map(|l| checked_label(l, at))
            .collect::<Result<Vec<_>>>()?;
        if out.insert(id.to_string(), labels).is_some() {
            bail!("{}: {id:?} is listed twice", at());
        }
    }
    Ok(out)
}

/// One row per video under the folder: id = the file stem, labels from the CSV or the parent folder's name.
pub fn import_folder(req: &FolderRequest) -> Result<FolderOutcome> {
    let mut csv_labels = match &req.labels_csv {
        Some(p) => Some(read_folder_labels(p)?),
        None => None,
    };
    let root = req.videos.as_path();
    let mut out = FolderOutcome::default();
    let mut by_id: HashMap<SampleId, PathBuf> = HashMap::new();
    for video in find_videos(root)? {
        let stem = video
            .file_stem()
            .and_then(|s| s.to_str())
            .with_context(|| format!("{}: file name is not UTF-8", video.display()))?;
        let id = SampleId::parse(stem)
            .with_context(|| format!("{}: the file stem is the sample id", video.display()))?;
        if let Some(first) = by_id.get(&id) {
            bail!(
                "two videos have the id {id}: {} and {} (ids are file stems and must be unique)",
                first.display(),
                video.display()
            );
        }
        let labels = match csv_labels.as_mut() {
            Some(known) => match known.remove(id.as_str()) {
                Some(labels) => labels,
                None if req.skip_missing => {
                    out.unlabelled.push(video.clone());
                    by_id.insert(id, video);
                    continue;
                }
                None => bail!(
                    "{}: {id} is not in the labels CSV {}; --skip-missing leaves such videos out",
                    video.display(),
                    req.labels_csv.as_deref().unwrap_or(root).display()
                ),
            },
            None => {
                let parent = video.parent().unwrap_or(root);
                if parent == root {
                    bail!(
                        "{}: a video directly in {} has no class folder; put it in a folder named after its label or give --labels-csv",
                        video.display(),
                        root.display()
                    );
                }
                let name = parent
                    .file_name()
                    .and_then(|n| n.to_str())
                    .with_context(|| format!("{}: folder name is not UTF-8", parent.display()))?;
                vec![checked_label(name, || {
                    format!("{}: parent folder {name:?}", video.display())
                })?]
            }
        };
        let path = std::path::absolute(&video).unwrap_or_else(|_| video.clone());
        out.rows.push(ManifestRow {
            id: id.clone(),
            videos: vec![path.to_string_lossy().into_owned()],
            labels,
            split: req.split.clone(),
            timestamp: None,
        });
        by_id.insert(id, video);
    }
    if let Some(rest) = csv_labels {
        out.labels_without_video = rest.into_keys().collect();
        out.labels_without_video.sort();
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
    fn music_test_lists_of_bare_ids_take_labels_from_the_music_json() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("HnUOaSfTA6c_000_00000.mp4"));
        touch(&dir.path().join("-_-TDDxoaAc_000_00000.mp4"));
        let duet = request(
            ListFormat::Music,
            shared("music/music_duet_test.csv"),
            dir.path(),
        );
        let err = format!("{:#}", import(&duet).unwrap_err());
        assert!(
            err.contains("line 1") && err.contains("--annotations"),
            "{err}"
        );
        let out = import(&ImportRequest {
            annotations: Some(shared("music/music_duet.json")),
            skip_missing: true,
            ..duet
        })
        .unwrap();
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.rows[0].labels, ["cello", "acoustic guitar"]);
        assert_eq!(out.missing_videos.len(), 1019);
        // Solo json entries carry `class`; a solo list with its own labels needs no json.
        let solo = import(&ImportRequest {
            annotations: Some(shared("music/music_solo.json")),
            skip_missing: true,
            ..request(
                ListFormat::Music,
                shared("music/music_solo_test.csv"),
                dir.path(),
            )
        })
        .unwrap();
        assert_eq!(solo.rows[0].labels, ["cello"]);
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
        assert!(row.videos[0].ends_with("duet/cello/K_U5-GbPgi0_098_02961.mp4"));
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
    fn vggss_ids_take_labels_from_the_annotations_and_pair_lists_are_pointed_to_their_format() {
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
        assert!(
            err.contains("line 1") && err.contains("--format vggsound-duet"),
            "{err}"
        );
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

    fn folder(videos: &Path, labels_csv: Option<PathBuf>, skip_missing: bool) -> FolderRequest {
        FolderRequest {
            videos: videos.to_path_buf(),
            split: "train".into(),
            labels_csv,
            skip_missing,
        }
    }

    fn ids(rows: &[ManifestRow]) -> Vec<&str> {
        rows.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn folder_labels_come_from_parent_folders_and_a_loose_video_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("videos");
        touch(&root.join("acoustic_guitar/g1.mp4"));
        touch(&root.join("acoustic_guitar/g2.MOV"));
        touch(&root.join("animals/dog_barking/d1.webm"));
        touch(&root.join("animals/notes.txt"));
        let out = import_folder(&folder(&root, None, false)).unwrap();
        assert_eq!(ids(&out.rows), ["g1", "g2", "d1"]);
        let labels: Vec<_> = out.rows.iter().map(|r| r.labels.clone()).collect();
        assert_eq!(
            labels,
            [
                vec!["acoustic guitar"],
                vec!["acoustic guitar"],
                vec!["dog barking"]
            ]
        );
        assert!(out.rows.iter().all(|r| r.split == "train"));
        let video = out.rows[2].videos[0].as_str();
        assert!(Path::new(video).is_absolute(), "{video}");
        assert!(video.ends_with("animals/dog_barking/d1.webm"), "{video}");

        touch(&root.join("loose.flv"));
        let err = format!(
            "{:#}",
            import_folder(&folder(&root, None, true)).unwrap_err()
        );
        assert!(
            err.contains("loose.flv") && err.contains("--labels-csv"),
            "{err}"
        );
        let err = format!(
            "{:#}",
            import_folder(&folder(&dir.path().join("nowhere"), None, false)).unwrap_err()
        );
        assert!(err.contains("nowhere"), "{err}");
    }

    #[test]
    fn folder_refuses_two_videos_with_one_stem_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("cello/clip.mp4"));
        touch(&dir.path().join("violin/clip.mkv"));
        let err = format!(
            "{:#}",
            import_folder(&folder(dir.path(), None, false)).unwrap_err()
        );
        assert!(
            err.contains("cello/clip.mp4") && err.contains("violin/clip.mkv"),
            "{err}"
        );
        // A stem that is no valid sample id is named too.
        std::fs::remove_file(dir.path().join("violin/clip.mkv")).unwrap();
        touch(&dir.path().join("violin/bad id.mp4"));
        let err = format!(
            "{:#}",
            import_folder(&folder(dir.path(), None, false)).unwrap_err()
        );
        assert!(err.contains("bad id.mp4"), "{err}");
    }

    #[test]
    fn folder_labels_from_a_csv_with_missing_and_surplus_ids() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("v");
        touch(&root.join("x1.mp4"));
        touch(&root.join("misc/x2.avi"));
        touch(&root.join("misc/x3.mp4"));
        let csv = dir.path().join("labels.csv");
        std::fs::write(
            &csv,
            "id,label\n# duet\nx1, cello ,acoustic_guitar\n\n\"x2\",\"people marching, loud\"\nzz,horn\n",
        )
        .unwrap();
        let err = format!(
            "{:#}",
            import_folder(&folder(&root, Some(csv.clone()), false)).unwrap_err()
        );
        assert!(
            err.contains("misc/x3.mp4") && err.contains("--skip-missing"),
            "{err}"
        );
        let out = import_folder(&folder(&root, Some(csv.clone()), true)).unwrap();
        // Rows in path order: `misc/x2.avi` sorts before `x1.mp4`.
        assert_eq!(ids(&out.rows), ["x2", "x1"]);
        assert_eq!(out.rows[0].labels, vec!["people marching, loud"]);
        assert_eq!(out.rows[1].labels, vec!["cello", "acoustic guitar"]);
        assert_eq!(out.unlabelled, vec![root.join("misc/x3.mp4")]);
        assert_eq!(out.labels_without_video, vec!["zz"]);

        for (text, wanted) in [
            ("x1,cello\nx1,horn\n", "line 2"),
            ("x1\n", "no label"),
            ("x1,cello|horn\n", "`|`"),
            ("x1,cello,\n", "empty label"),
        ] {
            std::fs::write(&csv, text).unwrap();
            let err = format!(
                "{:#}",
                import_folder(&folder(&root, Some(csv.clone()), true)).unwrap_err()
            );
            assert!(
                err.contains(wanted) && err.contains("labels.csv"),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn format_names() {
        assert_eq!(
            "folder".parse::<SourceFormat>().unwrap(),
            SourceFormat::Folder
        );
        assert_eq!(
            "music".parse::<SourceFormat>().unwrap(),
            SourceFormat::List(ListFormat::Music)
        );
        let err = format!("{:#}", "csv".parse::<SourceFormat>().unwrap_err());
        assert!(err.contains("folder"), "{err}");
    }
}
