//! Reading stage one's `captions/captions.parquet` from downstream stages.
//!
//! Stage one owns the full schema (documented in the captions crate); downstream stages need only
//! `sample_id`, `labels` (list[str]), `foreground` (list[str], one caption per label), `background` (str) and
//! `status` (`ok` / `invalid` / `failed`).

use std::path::Path;

use anyhow::{bail, Result};
use polars::prelude::DataType;

use super::{list_column, read_parquet, str_column, strings_of};
use crate::SampleId;

/// The captions of one sample, as downstream stages see them.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionRow {
    pub sample_id: SampleId,
    pub labels: Vec<String>,
    pub foreground: Vec<String>,
    pub background: String,
    pub status: String,
}

/// Reads every row of a captions table.
pub fn read_captions(path: &Path) -> Result<Vec<CaptionRow>> {
    let df = read_parquet(path)?;
    let ids = str_column(&df, "sample_id", path)?;
    let labels = list_column(&df, "labels", &DataType::String, path)?;
    let fg = list_column(&df, "foreground", &DataType::String, path)?;
    let bg = str_column(&df, "background", path)?;
    let status = str_column(&df, "status", path)?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let id = ids.get(i).unwrap_or_default();
        let sample_id = match SampleId::parse(id) {
            Ok(s) => s,
            Err(e) => bail!("{}: row {i}: {e}", path.display()),
        };
        out.push(CaptionRow {
            sample_id,
            labels: strings_of(labels.get_as_series(i))?,
            foreground: strings_of(fg.get_as_series(i))?,
            background: bg.get(i).unwrap_or_default().to_string(),
            status: status.get(i).unwrap_or_default().to_string(),
        });
    }
    Ok(out)
}

/// Writes a minimal captions table (the columns downstream stages read); used by tests and importers.
pub fn write_captions_minimal(path: &Path, rows: &[CaptionRow]) -> Result<()> {
    use super::{list_of_strings, write_parquet};
    use polars::prelude::*;
    let ids: Vec<&str> = rows.iter().map(|r| r.sample_id.as_str()).collect();
    let bg: Vec<&str> = rows.iter().map(|r| r.background.as_str()).collect();
    let status: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
    let mut df = DataFrame::new(
        rows.len(),
        vec![
            Column::new("sample_id".into(), ids),
            list_of_strings("labels", rows.iter().map(|r| r.labels.clone())),
            list_of_strings("foreground", rows.iter().map(|r| r.foreground.clone())),
            Column::new("background".into(), bg),
            Column::new("status".into(), status),
        ],
    )?;
    write_parquet(path, &mut df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_table_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.parquet");
        let rows = vec![CaptionRow {
            sample_id: SampleId::parse("s1").unwrap(),
            labels: vec!["a".into(), "b".into()],
            foreground: vec!["an image of a".into(), "an image of b".into()],
            background: "an image of c".into(),
            status: "ok".into(),
        }];
        write_captions_minimal(&path, &rows).unwrap();
        assert_eq!(read_captions(&path).unwrap(), rows);
    }

    #[test]
    fn a_list_of_numbers_where_strings_belong_names_file_and_column() {
        use crate::tables::write_parquet;
        use polars::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.parquet");
        let numbers: Vec<Series> = vec![Series::new(PlSmallStr::EMPTY, vec![1i64, 2])];
        let mut df = DataFrame::new(
            1,
            vec![
                Column::new("sample_id".into(), ["s1"]),
                Series::new("labels".into(), numbers).into_column(),
                list_of_strings_for_test("foreground"),
                Column::new("background".into(), ["an image of c"]),
                Column::new("status".into(), ["ok"]),
            ],
        )
        .unwrap();
        write_parquet(&path, &mut df).unwrap();
        let msg = format!("{:#}", read_captions(&path).unwrap_err());
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("`labels`"),
            "{msg}"
        );
        assert!(msg.contains("i64") && msg.contains("str"), "{msg}");
    }

    fn list_of_strings_for_test(name: &str) -> polars::prelude::Column {
        crate::tables::list_of_strings(name, std::iter::once(vec!["an image of a".to_string()]))
    }
}
