//! The embedding cache: every caption text ever embedded, per encoder fingerprint.
//!
//! `embed/cache/<encoder>.parquet` holds the compacted cache; while a run goes on, each finished chunk lands in
//! `embed/cache/<encoder>/part-<n>.parquet` (atomic), so a killed run loses at most the chunk in flight. The next
//! run reads the compacted file plus every part, and compacts them again at its end.
//!
//! Columns: `text_hash` (str, blake3 of the text), `text` (str), `embedding` (array[f32, D]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use polars::prelude::*;

use oassl_pipeline::fingerprint::hash_bytes;
use oassl_pipeline::tables::{read_parquet, str_column, write_parquet};

/// Key of a caption text in the cache.
pub fn text_hash(text: &str) -> String {
    hash_bytes(text.as_bytes())
}

/// Embeddings of one encoder, keyed by text hash.
#[derive(Debug, Default)]
pub struct EmbeddingCache {
    pub dim: Option<usize>,
    pub vectors: HashMap<String, (String, Vec<f32>)>,
}

impl EmbeddingCache {
    /// Adds rows; all vectors must share one width.
    pub fn insert(&mut self, text: String, vector: Vec<f32>) -> Result<()> {
        match self.dim {
            None => self.dim = Some(vector.len()),
            Some(d) if d != vector.len() => {
                bail!(
                    "embedding of width {} where the cache has width {d}",
                    vector.len()
                )
            }
            Some(_) => {}
        }
        self.vectors.insert(text_hash(&text), (text, vector));
        Ok(())
    }

    /// Vector of a text, if cached.
    pub fn get(&self, text: &str) -> Option<&Vec<f32>> {
        self.vectors.get(&text_hash(text)).map(|(_, v)| v)
    }
}

/// Folder and files of one encoder's cache.
pub struct CacheFiles {
    pub compacted: PathBuf,
    pub parts: PathBuf,
}

impl CacheFiles {
    pub fn new(embed_dir: &Path, encoder_fingerprint: &str) -> Self {
        let cache = embed_dir.join("cache");
        Self {
            compacted: cache.join(format!("{encoder_fingerprint}.parquet")),
            parts: cache.join(encoder_fingerprint),
        }
    }

    fn part_files(&self) -> Result<Vec<PathBuf>> {
        let mut parts = Vec::new();
        if self.parts.is_dir() {
            for entry in std::fs::read_dir(&self.parts)
                .with_context(|| format!("listing {}", self.parts.display()))?
            {
                let path = entry?.path();
                let is_part = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("part-") && n.ends_with(".parquet"));
                if is_part {
                    parts.push(path);
                }
            }
        }
        parts.sort();
        Ok(parts)
    }

    /// Reads the compacted cache and every part written since.
    pub fn load(&self) -> Result<EmbeddingCache> {
        let mut cache = EmbeddingCache::default();
        let mut files = Vec::new();
        if self.compacted.exists() {
            files.push(self.compacted.clone());
        }
        files.extend(self.part_files()?);
        for file in files {
            read_into(&file, &mut cache)?;
        }
        Ok(cache)
    }

    /// Durably records one finished chunk.
    pub fn write_part(&self, rows: &[(String, Vec<f32>)]) -> Result<()> {
        let n = self.part_files()?.len();
        let path = self.parts.join(format!("part-{n:06}.parquet"));
        write_rows(&path, rows.iter().map(|(t, v)| (t.as_str(), v.as_slice())))
    }

    /// Rewrites the compacted cache from `cache` and removes the parts it now holds.
    pub fn compact(&self, cache: &EmbeddingCache) -> Result<()> {
        let mut rows: Vec<(&str, &[f32])> = cache
            .vectors
            .values()
            .map(|(t, v)| (t.as_str(), v.as_slice()))
            .collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        write_rows(&self.compacted, rows.into_iter())?;
        for part in self.part_files()? {
            std::fs::remove_file(&part).with_context(|| format!("removing {}", part.display()))?;
        }
        Ok(())
    }
}

/// Writes `(text, vector)` rows as an embeddings table (also the format of `embeddings.parquet`).
pub fn write_rows<'a>(path: &Path, rows: impl Iterator<Item = (&'a str, &'a [f32])>) -> Result<()> {
    let rows: Vec<(&str, &[f32])> = rows.collect();
    let dim = rows.first().map(|r| r.1.len()).unwrap_or(0);
    let hashes: Vec<String> = rows.iter().map(|r| text_hash(r.0)).collect();
    let texts: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let lists: Vec<Series> = rows
        .iter()
        .map(|r| Series::new(PlSmallStr::EMPTY, r.1))
        .collect();
    let list = Series::new("embedding".into(), lists);
    let embedding = if rows.is_empty() {
        list
    } else {
        list.cast(&DataType::Array(Box::new(DataType::Float32), dim))?
    };
    let mut df = DataFrame::new(
        rows.len(),
        vec![
            Column::new("text_hash".into(), hashes),
            Column::new("text".into(), texts),
            embedding.into_column(),
        ],
    )?;
    write_parquet(path, &mut df)
}

fn read_into(path: &Path, cache: &mut EmbeddingCache) -> Result<()> {
    let df = read_parquet(path)?;
    if df.height() == 0 {
        return Ok(());
    }
    let texts = str_column(&df, "text", path)?;
    let column = df
        .column("embedding")
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{}: column `embedding` is missing", path.display()))?;
    let array = column
        .array()
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "{}: column `embedding` is not a fixed-size array",
                path.display()
            )
        })?;
    let dim = array.width();
    let inner = array.get_inner();
    let values = inner
        .f32()
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{}: embeddings are not f32", path.display()))?;
    let flat: Vec<f32> = values.iter().map(|v| v.unwrap_or(f32::NAN)).collect();
    if flat.len() != dim * df.height() {
        bail!(
            "{}: {} values for {} rows of width {dim}",
            path.display(),
            flat.len(),
            df.height()
        );
    }
    for (i, vector) in flat.chunks(dim).enumerate() {
        let text = texts.get(i).unwrap_or_default().to_string();
        cache
            .insert(text, vector.to_vec())
            .with_context(|| format!("{}: row {i}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_then_compaction_keep_every_row_once() {
        let dir = tempfile::tempdir().unwrap();
        let files = CacheFiles::new(dir.path(), "bert-abc");
        files.write_part(&[("a".into(), vec![1.0, 2.0])]).unwrap();
        files
            .write_part(&[("b".into(), vec![3.0, 4.0]), ("a".into(), vec![1.0, 2.0])])
            .unwrap();
        let cache = files.load().unwrap();
        assert_eq!(cache.vectors.len(), 2);
        assert_eq!(cache.get("b"), Some(&vec![3.0, 4.0]));
        files.compact(&cache).unwrap();
        assert!(files.part_files().unwrap().is_empty());
        let again = files.load().unwrap();
        assert_eq!(again.vectors.len(), 2);
        assert_eq!(again.dim, Some(2));
        assert_eq!(again.get("a"), Some(&vec![1.0, 2.0]));
    }
}
