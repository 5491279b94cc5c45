//! `embed/sample_text.parquet`: per sample, the text vectors stage three trains with.
//!
//! Stage two writes it by joining the captions table (`ok` rows) with the embeddings of their caption texts.
//!
//! | column | type | meaning |
//! | --- | --- | --- |
//! | `sample_id` | str | the clip |
//! | `labels` | list[str] | its K audio labels |
//! | `k` | u32 | number of foreground captions (= labels) |
//! | `dim` | u32 | embedding width D |
//! | `foreground` | list[f32] | K x D values, caption after caption, in label order |
//! | `background` | list[f32] | D values |

use std::path::Path;

use anyhow::{bail, Context as _, Result};
use polars::prelude::*;

use super::{
    floats_of, list_column, list_of_floats, list_of_strings, read_parquet, str_column, strings_of,
    write_parquet,
};
use crate::SampleId;

/// The text side of one training sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleText {
    pub sample_id: SampleId,
    pub labels: Vec<String>,
    /// K foreground vectors of D values.
    pub foreground: Vec<Vec<f32>>,
    /// The background vector, D values.
    pub background: Vec<f32>,
}

/// Writes the table atomically. All rows must share one width D.
pub fn write_sample_texts(path: &Path, rows: &[SampleText]) -> Result<()> {
    let dim = rows.first().map(|r| r.background.len()).unwrap_or(0);
    for r in rows {
        if r.background.len() != dim || r.foreground.iter().any(|f| f.len() != dim) {
            bail!(
                "sample {}: text vectors of mixed widths (expected {dim})",
                r.sample_id
            );
        }
        if r.foreground.len() != r.labels.len() {
            bail!(
                "sample {}: {} foreground vectors for {} labels",
                r.sample_id,
                r.foreground.len(),
                r.labels.len()
            );
        }
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.sample_id.as_str()).collect();
    let ks: Vec<u32> = rows.iter().map(|r| r.foreground.len() as u32).collect();
    let dims: Vec<u32> = vec![dim as u32; rows.len()];
    let mut df = DataFrame::new(
        rows.len(),
        vec![
            Column::new("sample_id".into(), ids),
            list_of_strings("labels", rows.iter().map(|r| r.labels.clone())),
            Column::new("k".into(), ks),
            Column::new("dim".into(), dims),
            list_of_floats("foreground", rows.iter().map(|r| r.foreground.concat())),
            list_of_floats("background", rows.iter().map(|r| r.background.clone())),
        ],
    )?;
    write_parquet(path, &mut df)
}

/// Reads the table; every error names the file and, where it can, the sample.
pub fn read_sample_texts(path: &Path) -> Result<Vec<SampleText>> {
    let df = read_parquet(path)?;
    let ids = str_column(&df, "sample_id", path)?;
    let labels = list_column(&df, "labels", &DataType::String, path)?;
    let fg = list_column(&df, "foreground", &DataType::Float32, path)?;
    let bg = list_column(&df, "background", &DataType::Float32, path)?;
    let ks = df
        .column("k")
        .and_then(|c| c.u32())
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{}: column `k` (u32) is missing", path.display()))?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let id = ids.get(i).unwrap_or_default();
        let sample_id =
            SampleId::parse(id).with_context(|| format!("{}: row {i}", path.display()))?;
        let k = ks.get(i).unwrap_or(0) as usize;
        let flat = floats_of(fg.get_as_series(i))?;
        let background = floats_of(bg.get_as_series(i))?;
        let dim = background.len();
        if k == 0 || dim == 0 || flat.len() != k * dim {
            bail!(
                "{}: sample {id}: {} foreground values for k = {k} and width {dim}",
                path.display(),
                flat.len()
            );
        }
        out.push(SampleText {
            sample_id,
            labels: strings_of(labels.get_as_series(i))?,
            foreground: flat.chunks(dim).map(<[f32]>::to_vec).collect(),
            background,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let rows = vec![
            SampleText {
                sample_id: SampleId::parse("a").unwrap(),
                labels: vec!["red drum".into()],
                foreground: vec![vec![1.0, 2.0, 3.0]],
                background: vec![0.5, 0.25, 0.0],
            },
            SampleText {
                sample_id: SampleId::parse("b").unwrap(),
                labels: vec!["x".into(), "y".into()],
                foreground: vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0]],
                background: vec![0.0, 0.0, 1.0],
            },
        ];
        write_sample_texts(&path, &rows).unwrap();
        assert_eq!(read_sample_texts(&path).unwrap(), rows);
    }

    #[test]
    fn mixed_widths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![SampleText {
            sample_id: SampleId::parse("a").unwrap(),
            labels: vec!["x".into()],
            foreground: vec![vec![1.0, 2.0]],
            background: vec![0.5],
        }];
        let err = write_sample_texts(&dir.path().join("t.parquet"), &rows).unwrap_err();
        assert!(format!("{err:#}").contains("sample a"));
    }
}
