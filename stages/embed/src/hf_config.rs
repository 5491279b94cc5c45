//! Reading Hugging Face `config.json` files: presence, JSON, `model_type`, typed fields.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{EmbedError, Result};

/// Reads `path` as JSON; `what` names the file's role in the missing-file error.
pub(crate) fn read_json(path: &Path, what: &'static str) -> Result<serde_json::Value> {
    if !path.is_file() {
        return Err(EmbedError::MissingFile {
            what,
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| EmbedError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| EmbedError::ConfigParse {
        path: path.to_path_buf(),
        source,
    })
}

/// Deserialises `value` (read from `path`) into a typed config.
pub(crate) fn parse_at<T: DeserializeOwned>(path: &Path, value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|source| EmbedError::ConfigParse {
        path: path.to_path_buf(),
        source,
    })
}

/// The `model_type` of `value` if it is one of `accepted`, else an error naming `path`.
pub(crate) fn expect_model_type<'a>(
    path: &Path,
    value: &serde_json::Value,
    accepted: &[&'a str],
    expected: &'static str,
) -> Result<&'a str> {
    let found = value.get("model_type").and_then(|v| v.as_str());
    found
        .and_then(|f| accepted.iter().find(|a| **a == f).copied())
        .ok_or_else(|| EmbedError::UnsupportedModelType {
            path: path.to_path_buf(),
            found: found.unwrap_or("<missing>").to_string(),
            expected,
        })
}

/// Checks the sizes every transformer config needs: each dimension positive and the hidden size divisible by the
/// number of attention heads. Returns the message for `EmbedError::InvalidConfig`.
pub(crate) fn check_dims(
    dims: &[(&str, i64)],
    hidden_size: i64,
    num_attention_heads: i64,
) -> std::result::Result<(), String> {
    if let Some((key, value)) = dims.iter().find(|(_, v)| *v <= 0) {
        return Err(format!("{key} must be positive, got {value}"));
    }
    if hidden_size % num_attention_heads != 0 {
        return Err(format!(
            "hidden_size {hidden_size} is not a multiple of num_attention_heads {num_attention_heads}"
        ));
    }
    Ok(())
}
