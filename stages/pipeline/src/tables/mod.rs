//! Parquet tables that stages hand each other, and the plumbing to read and write them atomically.
//!
//! One Parquet stack (polars) serves the whole project.

pub mod captions;
pub mod sample_text;

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use polars::prelude::*;

pub use captions::{read_captions, CaptionRow};
pub use sample_text::{read_sample_texts, write_sample_texts, SampleText};

/// Writes a data frame to `path` atomically (temp file + rename).
pub fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    crate::atomic::write_with(path, |w| {
        ParquetWriter::new(w)
            .finish(df)
            .map(|_| ())
            .map_err(anyhow::Error::from)
    })
}

/// Reads a whole Parquet file.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .map_err(anyhow::Error::from)
        .with_context(|| format!("reading Parquet file {}", path.display()))
}

/// A column of `df` as strings; the error names the file and the column.
pub fn str_column<'a>(df: &'a DataFrame, name: &str, path: &Path) -> Result<&'a StringChunked> {
    df.column(name)
        .and_then(|c| c.str())
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "{}: column `{name}` (text) is missing or has another type",
                path.display()
            )
        })
}

/// A column of `df` as lists of `inner` values; the error names the file, the column and the type found, so a
/// list of integers where a list of strings belongs is refused here rather than deep inside a row.
pub fn list_column<'a>(
    df: &'a DataFrame,
    name: &str,
    inner: &DataType,
    path: &Path,
) -> Result<&'a ListChunked> {
    let wanted = DataType::List(Box::new(inner.clone()));
    let column = df
        .column(name)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{}: column `{name}` ({wanted}) is missing", path.display()))?;
    if column.dtype() != &wanted {
        bail!(
            "{}: column `{name}` has type {} where {wanted} is expected",
            path.display(),
            column.dtype()
        );
    }
    column
        .list()
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{}: column `{name}` ({wanted})", path.display()))
}

/// The strings of a list-of-strings cell.
pub fn strings_of(cell: Option<Series>) -> Result<Vec<String>> {
    match cell {
        None => Ok(Vec::new()),
        Some(s) => Ok(s
            .str()?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect()),
    }
}

/// The floats of a list-of-f32 cell.
pub fn floats_of(cell: Option<Series>) -> Result<Vec<f32>> {
    match cell {
        None => Ok(Vec::new()),
        Some(s) => Ok(s.f32()?.iter().map(|v| v.unwrap_or(f32::NAN)).collect()),
    }
}

/// A list column of `inner` values; typed even without rows, where polars would infer the null type and the
/// table would not read back (a shard of a small manifest can be empty).
fn list_column_of(name: &str, inner: DataType, series: Vec<Series>) -> Column {
    if series.is_empty() {
        return Series::new_empty(name.into(), &DataType::List(Box::new(inner))).into_column();
    }
    Series::new(name.into(), series).into_column()
}

/// A list-of-strings column.
pub fn list_of_strings(name: &str, rows: impl Iterator<Item = Vec<String>>) -> Column {
    let series: Vec<Series> = rows.map(|r| Series::new(PlSmallStr::EMPTY, r)).collect();
    list_column_of(name, DataType::String, series)
}

/// A list-of-f32 column.
pub fn list_of_floats(name: &str, rows: impl Iterator<Item = Vec<f32>>) -> Column {
    let series: Vec<Series> = rows.map(|r| Series::new(PlSmallStr::EMPTY, r)).collect();
    list_column_of(name, DataType::Float32, series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_columns_without_rows_keep_their_type() {
        let strings = list_of_strings("s", std::iter::empty());
        assert_eq!(strings.dtype(), &DataType::List(Box::new(DataType::String)));
        let floats = list_of_floats("f", std::iter::empty());
        assert_eq!(floats.dtype(), &DataType::List(Box::new(DataType::Float32)));
        let one = list_of_strings("s", std::iter::once(vec!["a".to_string()]));
        assert_eq!(one.dtype(), strings.dtype());
    }
}
