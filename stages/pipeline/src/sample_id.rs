//! Sample ids name files inside the data folder, so they must never escape it.
//!
//! A manifest is user input: `../x`, `/etc/passwd` or `a/b` as an id would otherwise write outside the data
//! folder. [`SampleId::parse`] accepts only a single, plain path component. `+` is allowed because a pair
//! sample (VGGSound-Duet) is named `file+mix_file` after its two clips.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid sample id.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SampleIdError {
    #[error("sample id is empty")]
    Empty,
    #[error("sample id {0:?} is longer than 200 bytes")]
    TooLong(String),
    #[error("sample id {0:?} contains {1:?}; ids may use letters, digits, '-', '_', '.', '+' and must not start with '.'")]
    BadChar(String, char),
    #[error("sample id {0:?} starts with '.'")]
    Hidden(String),
}

/// A validated sample id: letters, digits, `-`, `_`, `.`, `+`, not starting with `.`, at most 200 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SampleId(String);

impl SampleId {
    /// Validates `s` as a sample id.
    pub fn parse(s: &str) -> Result<Self, SampleIdError> {
        if s.is_empty() {
            return Err(SampleIdError::Empty);
        }
        if s.len() > 200 {
            return Err(SampleIdError::TooLong(s.to_string()));
        }
        if s.starts_with('.') {
            return Err(SampleIdError::Hidden(s.to_string()));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+')))
        {
            return Err(SampleIdError::BadChar(s.to_string(), c));
        }
        Ok(Self(s.to_string()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SampleId {
    type Error = SampleIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<SampleId> for String {
    fn from(id: SampleId) -> String {
        id.0
    }
}

impl fmt::Display for SampleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dataset_style_ids() {
        for ok in [
            "zpWuikVorYg_000032",
            "synth-train-single-00001",
            "a.b",
            "zpWuikVorYg_000032+Rtg1SUrxOPY_000130",
        ] {
            assert_eq!(SampleId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_hostile_ids() {
        assert_eq!(SampleId::parse(""), Err(SampleIdError::Empty));
        assert!(matches!(
            SampleId::parse("../x"),
            Err(SampleIdError::Hidden(_))
        ));
        assert!(matches!(
            SampleId::parse("/etc/passwd"),
            Err(SampleIdError::BadChar(_, '/'))
        ));
        assert!(matches!(
            SampleId::parse("a/b"),
            Err(SampleIdError::BadChar(_, '/'))
        ));
        assert!(matches!(
            SampleId::parse("a\\b"),
            Err(SampleIdError::BadChar(_, '\\'))
        ));
        assert!(matches!(
            SampleId::parse("a+b c"),
            Err(SampleIdError::BadChar(_, ' '))
        ));
        assert!(matches!(
            SampleId::parse(".+x"),
            Err(SampleIdError::Hidden(_))
        ));
        assert!(matches!(
            SampleId::parse(".."),
            Err(SampleIdError::Hidden(_))
        ));
        assert!(matches!(
            SampleId::parse(&"x".repeat(201)),
            Err(SampleIdError::TooLong(_))
        ));
    }
}
