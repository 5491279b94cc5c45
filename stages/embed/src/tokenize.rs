//! Text to token ids with the `tokenizers` crate, from a model folder's `tokenizer.json`.
//!
//! Truncation is set here, to the encoder's maximum length (special tokens included), replacing whatever
//! `tokenizer.json` carries: saved tokenizers often keep the truncation and fixed padding of the last call
//! that used them (all-MiniLM-L6-v2's keeps 128), which is not the model's limit. Padding is left off and done
//! per batch by [`pad_batch`], so that batches of short texts stay short.

use std::path::{Path, PathBuf};

use tokenizers::{
    PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::{EmbedError, Result};

/// A `tokenizer.json` tokenizer truncating at a fixed maximum length.
pub struct TextTokenizer {
    inner: Tokenizer,
    max_len: usize,
    path: PathBuf,
}

/// Token ids of a list of texts, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokenized {
    /// Ids per text, special tokens included, at most `max_len` long.
    pub ids: Vec<Vec<i64>>,
    /// Segment (token type) ids per text, same lengths as `ids`.
    pub type_ids: Vec<Vec<i64>>,
    /// Whether each text was cut to fit `max_len`.
    pub truncated: Vec<bool>,
}

impl Tokenized {
    /// How many texts were cut to fit.
    pub fn truncated_count(&self) -> usize {
        self.truncated.iter().filter(|t| **t).count()
    }
}

impl TextTokenizer {
    /// Loads `path` (a `tokenizer.json`) and sets truncation at `max_len` tokens, special tokens included.
    pub fn from_file(path: &Path, max_len: usize) -> Result<Self> {
        if !path.is_file() {
            return Err(EmbedError::MissingFile {
                what: "tokenizer",
                path: path.to_path_buf(),
            });
        }
        let tok_err = |source| EmbedError::Tokenizer {
            path: path.to_path_buf(),
            source,
        };
        let mut inner = Tokenizer::from_file(path).map_err(tok_err)?;
        let added = inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if max_len <= added {
            return Err(EmbedError::InvalidSpec(format!(
                "max_len {max_len} leaves no room for text next to the {added} special tokens of {}",
                path.display()
            )));
        }
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_len,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(tok_err)?;
        Ok(Self {
            inner,
            max_len,
            path: path.to_path_buf(),
        })
    }

    /// Maximum ids per text, special tokens included.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Tokenizes `texts` with special tokens. An empty text yields the special tokens alone (`[CLS] [SEP]`).
    pub fn encode(&self, texts: &[String]) -> Result<Tokenized> {
        let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let encodings =
            self.inner
                .encode_batch(inputs, true)
                .map_err(|source| EmbedError::Tokenizer {
                    path: self.path.clone(),
                    source,
                })?;
        let mut out = Tokenized {
            ids: Vec::with_capacity(texts.len()),
            type_ids: Vec::with_capacity(texts.len()),
            truncated: Vec::with_capacity(texts.len()),
        };
        for enc in encodings {
            out.ids
                .push(enc.get_ids().iter().map(|&id| i64::from(id)).collect());
            out.type_ids
                .push(enc.get_type_ids().iter().map(|&id| i64::from(id)).collect());
            // With truncation on, the cut-off remainder is kept as overflowing encodings.
            out.truncated.push(!enc.get_overflowing().is_empty());
        }
        Ok(out)
    }
}

/// A rectangular batch: rows right-padded to the longest, flattened row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddedBatch {
    pub ids: Vec<i64>,
    pub type_ids: Vec<i64>,
    /// 1 for real tokens, 0 for padding.
    pub mask: Vec<i64>,
    pub rows: usize,
    pub cols: usize,
}

/// Right-pads `rows` (with their `type_rows`) to the longest row, using `pad_id` for ids and 0 for types.
pub fn pad_batch(rows: &[&[i64]], type_rows: &[&[i64]], pad_id: i64) -> PaddedBatch {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let n = rows.len() * cols;
    let mut batch = PaddedBatch {
        ids: Vec::with_capacity(n),
        type_ids: Vec::with_capacity(n),
        mask: Vec::with_capacity(n),
        rows: rows.len(),
        cols,
    };
    for (row, types) in rows.iter().zip(type_rows) {
        let pad = cols - row.len();
        batch.ids.extend_from_slice(row);
        batch.ids.extend(std::iter::repeat_n(pad_id, pad));
        batch.type_ids.extend_from_slice(types);
        batch.type_ids.extend(std::iter::repeat_n(0, pad));
        batch.mask.extend(std::iter::repeat_n(1, row.len()));
        batch.mask.extend(std::iter::repeat_n(0, pad));
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::pad_batch;

    #[test]
    fn pads_to_longest_row_with_mask() {
        let a = [101, 7, 8, 102];
        let b = [101, 102];
        let ta = [0, 0, 0, 0];
        let tb = [0, 0];
        let batch = pad_batch(&[&a, &b], &[&ta, &tb], 0);
        assert_eq!((batch.rows, batch.cols), (2, 4));
        assert_eq!(batch.ids, vec![101, 7, 8, 102, 101, 102, 0, 0]);
        assert_eq!(batch.mask, vec![1, 1, 1, 1, 1, 1, 0, 0]);
        assert_eq!(batch.type_ids, vec![0; 8]);
    }
}
