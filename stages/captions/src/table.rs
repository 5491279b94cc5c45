//! `captions/captions.parquet`: one row per manifest sample, written atomically at the end of a run.
//!
//! | column | type | meaning |
//! | --- | --- | --- |
//! | `sample_id` | str | the manifest id |
//! | `labels` | list[str] | the K audio class labels |
//! | `foreground` | list[str] | K captions of the sound-making objects (empty unless `ok`) |
//! | `background` | str | caption of the silent objects (empty unless `ok`) |
//! | `status` | str | `ok`, `invalid` (the model never gave valid captions) or `failed` (extraction or transport) |
//! | `error` | str | why, when not `ok` |
//! | `attempts` | u32 | HTTP requests made for this caption |
//! | `latency_ms` | u64 | wall time of the caption, retries included |
//! | `model` | str | served model id |
//! | `prompt_hash` | str | blake3 of the prompt template |
//! | `image_hash` | str | blake3 of the extracted frame JPEG |
//! | `request_key` | str | the caption's cache key (prompt, image, labels, model, generation parameters) |
//! | `raw_response` | str | the model's answer text as received |

use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::*;

use oassl_pipeline::tables::{
    list_column, list_of_strings, read_parquet, str_column, strings_of, write_parquet,
};

/// One output row.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionRecord {
    pub sample_id: String,
    pub labels: Vec<String>,
    pub foreground: Vec<String>,
    pub background: String,
    pub status: String,
    pub error: String,
    pub attempts: u32,
    pub latency_ms: u64,
    pub model: String,
    pub prompt_hash: String,
    pub image_hash: String,
    pub request_key: String,
    pub raw_response: String,
}

fn text_column(name: &str, rows: &[CaptionRecord], get: impl Fn(&CaptionRecord) -> &str) -> Column {
    let values: Vec<&str> = rows.iter().map(get).collect();
    Column::new(name.into(), values)
}

/// Writes the table atomically.
pub fn write_table(path: &Path, rows: &[CaptionRecord]) -> Result<()> {
    let attempts: Vec<u32> = rows.iter().map(|r| r.attempts).collect();
    let latency: Vec<u64> = rows.iter().map(|r| r.latency_ms).collect();
    let mut df = DataFrame::new(
        rows.len(),
        vec![
            text_column("sample_id", rows, |r| &r.sample_id),
            list_of_strings("labels", rows.iter().map(|r| r.labels.clone())),
            list_of_strings("foreground", rows.iter().map(|r| r.foreground.clone())),
            text_column("background", rows, |r| &r.background),
            text_column("status", rows, |r| &r.status),
            text_column("error", rows, |r| &r.error),
            Column::new("attempts".into(), attempts),
            Column::new("latency_ms".into(), latency),
            text_column("model", rows, |r| &r.model),
            text_column("prompt_hash", rows, |r| &r.prompt_hash),
            text_column("image_hash", rows, |r| &r.image_hash),
            text_column("request_key", rows, |r| &r.request_key),
            text_column("raw_response", rows, |r| &r.raw_response),
        ],
    )?;
    write_parquet(path, &mut df)
}

/// The `(sample_id, request_key, error)` columns of a written table, for checks and merges.
pub fn read_keys(path: &Path) -> Result<Vec<(String, String, String)>> {
    let df = read_parquet(path)?;
    let ids = str_column(&df, "sample_id", path)?;
    let keys = str_column(&df, "request_key", path)?;
    let errors = str_column(&df, "error", path)?;
    Ok((0..df.height())
        .map(|i| {
            (
                ids.get(i).unwrap_or_default().to_string(),
                keys.get(i).unwrap_or_default().to_string(),
                errors.get(i).unwrap_or_default().to_string(),
            )
        })
        .collect())
}

/// Every column of every row of a written table, in file order.
pub fn read_table(path: &Path) -> Result<Vec<CaptionRecord>> {
    let df = read_parquet(path)?;
    let text = |name: &str| str_column(&df, name, path);
    let (ids, background, status, error) = (
        text("sample_id")?,
        text("background")?,
        text("status")?,
        text("error")?,
    );
    let (model, prompt_hash, image_hash, request_key, raw_response) = (
        text("model")?,
        text("prompt_hash")?,
        text("image_hash")?,
        text("request_key")?,
        text("raw_response")?,
    );
    let labels = list_column(&df, "labels", &DataType::String, path)?;
    let foreground = list_column(&df, "foreground", &DataType::String, path)?;
    let attempts = df
        .column("attempts")
        .and_then(|c| c.u32())
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{}: column `attempts` (u32)", path.display()))?;
    let latency = df
        .column("latency_ms")
        .and_then(|c| c.u64())
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{}: column `latency_ms` (u64)", path.display()))?;
    let get = |c: &StringChunked, i: usize| c.get(i).unwrap_or_default().to_string();
    (0..df.height())
        .map(|i| {
            Ok(CaptionRecord {
                sample_id: get(ids, i),
                labels: strings_of(labels.get_as_series(i))?,
                foreground: strings_of(foreground.get_as_series(i))?,
                background: get(background, i),
                status: get(status, i),
                error: get(error, i),
                attempts: attempts.get(i).unwrap_or_default(),
                latency_ms: latency.get(i).unwrap_or_default(),
                model: get(model, i),
                prompt_hash: get(prompt_hash, i),
                image_hash: get(image_hash, i),
                request_key: get(request_key, i),
                raw_response: get(raw_response, i),
            })
        })
        .collect::<Result<_>>()
        .with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oassl_pipeline::tables::read_captions;

    #[test]
    fn downstream_reader_reads_the_full_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("captions.parquet");
        let row = CaptionRecord {
            sample_id: "s1".into(),
            labels: vec!["red drum".into(), "blue horn".into()],
            foreground: vec!["an image of a".into(), "an image of b".into()],
            background: "an image of c".into(),
            status: "ok".into(),
            error: String::new(),
            attempts: 2,
            latency_ms: 15,
            model: "m".into(),
            prompt_hash: "p".into(),
            image_hash: "i".into(),
            request_key: "k".into(),
            raw_response: "{}".into(),
        };
        let failed = CaptionRecord {
            sample_id: "s2".into(),
            foreground: vec![],
            background: String::new(),
            status: "failed".into(),
            error: "no audio stream".into(),
            ..row.clone()
        };
        write_table(&path, &[row.clone(), failed.clone()]).unwrap();
        assert_eq!(read_table(&path).unwrap(), vec![row.clone(), failed]);
        let back = read_captions(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].foreground, row.foreground);
        assert_eq!(back[0].labels, row.labels);
        assert_eq!(back[1].status, "failed");
        assert!(back[1].foreground.is_empty());
        let keys = read_keys(&path).unwrap();
        assert_eq!(keys[1].2, "no audio stream");
        // A table without rows (an empty shard) reads back too.
        write_table(&path, &[]).unwrap();
        assert!(read_table(&path).unwrap().is_empty());
        assert!(read_captions(&path).unwrap().is_empty());
    }
}
