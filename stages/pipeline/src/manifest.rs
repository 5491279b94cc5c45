//! The manifest: the table of clips every stage starts from.
//!
//! `manifest.csv` has a header and the columns
//!
//! | column | meaning |
//! | --- | --- |
//! | `id` | sample id (see [`SampleId`]): names every file derived from the clip |
//! | `video` | path of the video file, relative to the manifest's folder or absolute; empty when the clip was written already extracted; several paths separated by `|` for a pair sample |
//! | `labels` | the K audio class labels of the clip, separated by `|` (K = 1 single source, K = 2 duet) |
//! | `split` | `train` or `test` (any name is kept as is) |
//! | `timestamp` | optional: seconds into the video of the frame to use; empty = the clip centre |
//!
//! A pair sample (VGGSound-Duet, id `file+mix_file`) names its videos in order, `a.mp4|b.mp4`: extraction stacks
//! their frames top to bottom (the first video is the top tile, source 1) and sums their audio. A row naming the
//! same video twice is refused.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::SampleId;

/// One clip of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRow {
    pub id: SampleId,
    /// Video paths as written in the manifest (resolve with [`Manifest::video_paths`]): none when the clip was
    /// written already extracted, one for a clip, several for a pair sample (in mosaic order, top first).
    pub videos: Vec<String>,
    /// Audio class labels, one per sounding source.
    pub labels: Vec<String>,
    pub split: String,
    pub timestamp: Option<f64>,
}

/// The manifest table and the folder its relative paths are resolved against.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub base: PathBuf,
    pub rows: Vec<ManifestRow>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CsvRow {
    id: String,
    video: String,
    labels: String,
    split: String,
    /// Optional column: a manifest without it reads as every clip at its centre.
    #[serde(default)]
    timestamp: String,
}

impl Manifest {
    /// Reads and validates a manifest; errors name the file, line and column.
    pub fn read(path: &Path) -> Result<Self> {
        let mut reader = csv::Reader::from_path(path)
            .with_context(|| format!("opening manifest {}", path.display()))?;
        let mut rows = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, record) in reader.deserialize::<CsvRow>().enumerate() {
            let line = i + 2;
            let raw = record.with_context(|| format!("{}: line {line}", path.display()))?;
            let id = SampleId::parse(raw.id.trim())
                .with_context(|| format!("{}: line {line}: column id", path.display()))?;
            if !seen.insert(id.clone()) {
                bail!("{}: line {line}: duplicate sample id {id}", path.display());
            }
            let labels: Vec<String> = raw
                .labels
                .split('|')
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty())
                .collect();
            if labels.is_empty() {
                bail!("{}: line {line}: sample {id} has no labels", path.display());
            }
            let timestamp = match raw.timestamp.trim() {
                "" => None,
                t => Some(t.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).with_context(
                    || format!("{}: line {line}: sample {id}: timestamp {t:?} is not a non-negative number", path.display()),
                )?),
            };
            let videos = split_videos(&raw.video)
                .with_context(|| format!("{}: line {line}: sample {id}", path.display()))?;
            rows.push(ManifestRow {
                id,
                videos,
                labels,
                split: raw.split.trim().to_string(),
                timestamp,
            });
        }
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Self { base, rows })
    }

    /// Writes the manifest atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        crate::atomic::write_with(path, |w| {
            let mut writer = csv::Writer::from_writer(w);
            for row in &self.rows {
                if let Some(bad) = row
                    .videos
                    .iter()
                    .find(|v| v.contains('|') || v.trim().is_empty())
                {
                    anyhow::bail!(
                        "sample {}: video path {bad:?} is empty or contains `|`, which separates a pair's videos",
                        row.id
                    );
                }
                writer.serialize(CsvRow {
                    id: row.id.to_string(),
                    video: row.videos.join("|"),
                    labels: row.labels.join("|"),
                    split: row.split.clone(),
                    timestamp: row.timestamp.map(|t| t.to_string()).unwrap_or_default(),
                })?;
            }
            writer.flush()?;
            Ok(())
        })
    }

    /// Absolute (or base-relative) paths of a row's videos, in manifest order; empty when it has none.
    pub fn video_paths(&self, row: &ManifestRow) -> Vec<PathBuf> {
        row.videos.iter().map(|v| self.base.join(v)).collect()
    }
}

/// The `video` column's paths: empty, one path, or several separated by `|`, each non-empty and distinct.
fn split_videos(column: &str) -> Result<Vec<String>> {
    let column = column.trim();
    if column.is_empty() {
        return Ok(Vec::new());
    }
    let videos: Vec<String> = column.split('|').map(|v| v.trim().to_string()).collect();
    if videos.iter().any(String::is_empty) {
        bail!("video column {column:?} has an empty path between `|`");
    }
    for (i, v) in videos.iter().enumerate() {
        if videos[..i].contains(v) {
            bail!("video {v:?} is named twice; a pair sample needs two different videos");
        }
    }
    Ok(videos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.csv");
        let m = Manifest {
            base: dir.path().to_path_buf(),
            rows: vec![ManifestRow {
                id: SampleId::parse("a1").unwrap(),
                videos: vec!["videos/a1.mp4".into()],
                labels: vec!["red drum".into(), "blue horn".into()],
                split: "train".into(),
                timestamp: Some(1.5),
            }],
        };
        m.write(&path).unwrap();
        let back = Manifest::read(&path).unwrap();
        assert_eq!(back.rows, m.rows);
        assert_eq!(
            back.video_paths(&back.rows[0]),
            vec![dir.path().join("videos/a1.mp4")]
        );
    }

    #[test]
    fn pair_rows_round_trip_in_order_and_single_or_empty_columns_read_as_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.csv");
        std::fs::write(
            &path,
            "id,video,labels,split,timestamp\n\
             a+b, v/b.mp4 | /abs/a.mp4 ,cat|dog,test,\n\
             c,v/c.mp4,cat,test,\n\
             d,,cat,test,\n",
        )
        .unwrap();
        let m = Manifest::read(&path).unwrap();
        assert_eq!(m.rows[0].id.as_str(), "a+b");
        assert_eq!(m.rows[0].videos, vec!["v/b.mp4", "/abs/a.mp4"]);
        assert_eq!(
            m.video_paths(&m.rows[0]),
            vec![dir.path().join("v/b.mp4"), PathBuf::from("/abs/a.mp4")]
        );
        assert_eq!(m.rows[1].videos, vec!["v/c.mp4"]);
        assert!(m.rows[2].videos.is_empty());
        assert!(m.video_paths(&m.rows[2]).is_empty());
        let again = dir.path().join("again.csv");
        m.write(&again).unwrap();
        assert!(std::fs::read_to_string(&again)
            .unwrap()
            .contains("a+b,v/b.mp4|/abs/a.mp4,cat|dog,test,"));
        assert_eq!(Manifest::read(&again).unwrap().rows, m.rows);
    }

    #[test]
    fn a_pair_of_one_video_or_an_empty_path_is_refused_with_line_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        for (column, wanted) in [
            ("v/a.mp4|v/a.mp4", "named twice"),
            ("v/a.mp4|", "empty path"),
        ] {
            std::fs::write(
                &path,
                format!("id,video,labels,split\nok,v/x.mp4,cat,test\na+a,{column},cat|dog,test\n"),
            )
            .unwrap();
            let err = format!("{:#}", Manifest::read(&path).unwrap_err());
            assert!(
                err.contains("line 3") && err.contains("a+a") && err.contains(wanted),
                "{err}"
            );
        }
        // Writing refuses a path the column could not give back.
        let m = Manifest {
            base: dir.path().to_path_buf(),
            rows: vec![ManifestRow {
                id: SampleId::parse("p").unwrap(),
                videos: vec!["x|y.mp4".into()],
                labels: vec!["cat".into()],
                split: "test".into(),
                timestamp: None,
            }],
        };
        let err = format!("{:#}", m.write(&dir.path().join("w.csv")).unwrap_err());
        assert!(err.contains("sample p") && err.contains("`|`"), "{err}");
    }

    #[test]
    fn hostile_id_is_refused_with_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(
            &path,
            "id,video,labels,split,timestamp\n../x,v.mp4,drum,train,\n",
        )
        .unwrap();
        let err = format!("{:#}", Manifest::read(&path).unwrap_err());
        assert!(err.contains("line 2") && err.contains("../x"), "{err}");
    }

    #[test]
    fn duplicate_and_empty_labels_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(
            &path,
            "id,video,labels,split,timestamp\na,,x,train,\na,,y,train,\n",
        )
        .unwrap();
        assert!(format!("{:#}", Manifest::read(&path).unwrap_err()).contains("duplicate"));
        std::fs::write(&path, "id,video,labels,split,timestamp\na,,,train,\n").unwrap();
        assert!(format!("{:#}", Manifest::read(&path).unwrap_err()).contains("no labels"));
    }

    #[test]
    fn timestamp_column_is_optional() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, "id,video,labels,split\na,v.mp4,red drum,train\n").unwrap();
        let m = Manifest::read(&path).unwrap();
        assert_eq!(m.rows.len(), 1);
        assert_eq!(m.rows[0].timestamp, None);
        assert_eq!(m.rows[0].labels, vec!["red drum".to_string()]);
        // The other columns stay required, named in the error.
        std::fs::write(&path, "id,video,split\na,v.mp4,train\n").unwrap();
        let err = format!("{:#}", Manifest::read(&path).unwrap_err());
        assert!(err.contains("labels"), "{err}");
    }
}
