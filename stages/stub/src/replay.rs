//! Replay mode: canned answers served in order from a JSONL file.
//!
//! Each line is one of
//! - `{"content": "..."}`: the text of the assistant message, wrapped in a chat completion;
//! - `{"status": 500, "body": ...}`: that HTTP status with that body (a string or JSON);
//! - any other JSON value: served verbatim with status 200.
//!
//! After the last line every request gets HTTP 500 "replay exhausted".

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// One canned answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Canned {
    Content(String),
    Status(u16, String),
    Verbatim(String),
}

/// Reads a replay file; errors name the file and line.
pub fn read(path: &Path) -> Result<Vec<Canned>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading replay file {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .with_context(|| format!("{}: line {} is not JSON", path.display(), i + 1))?;
        let canned = match (&value.get("content"), &value.get("status")) {
            (Some(Value::String(c)), None) => Canned::Content(c.clone()),
            (_, Some(status)) => {
                let code = status
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .with_context(|| format!("{}: line {}: bad status", path.display(), i + 1))?;
                let body = match value.get("body") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                };
                Canned::Status(code, body)
            }
            _ => Canned::Verbatim(value.to_string()),
        };
        out.push(canned);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_forms() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.jsonl");
        std::fs::write(
            &p,
            "{\"content\":\"x\"}\n\n{\"status\":503,\"body\":\"busy\"}\n{\"id\":1}\n",
        )
        .unwrap();
        let got = read(&p).unwrap();
        assert_eq!(
            got,
            vec![
                Canned::Content("x".into()),
                Canned::Status(503, "busy".into()),
                Canned::Verbatim("{\"id\":1}".into())
            ]
        );
        std::fs::write(&p, "nope\n").unwrap();
        assert!(format!("{:#}", read(&p).unwrap_err()).contains("line 1"));
    }
}
