//! The captioning prompt: a text file (by default `prompts/oa-ssl-table5.txt`, supplementary Table 5) whose
//! `{labels}` placeholder receives the sample's K audio class labels, comma-separated.

use std::path::Path;

use anyhow::{bail, Context, Result};

use oassl_pipeline::fingerprint::hash_bytes;

/// The placeholder replaced by the labels.
pub const LABELS_PLACEHOLDER: &str = "{labels}";

/// A loaded prompt template and the hash that keys captions made with it.
#[derive(Debug, Clone)]
pub struct PromptTemplate {
    text: String,
    hash: String,
}

impl PromptTemplate {
    /// Reads a template; it must contain `{labels}`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading prompt file {}", path.display()))?;
        Self::from_text(text).with_context(|| format!("prompt file {}", path.display()))
    }

    /// A template from its text.
    pub fn from_text(text: String) -> Result<Self> {
        if !text.contains(LABELS_PLACEHOLDER) {
            bail!("the prompt has no {LABELS_PLACEHOLDER} placeholder for the class labels");
        }
        let hash = hash_bytes(text.as_bytes());
        Ok(Self { text, hash })
    }

    /// Hex blake3 of the template text.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The prompt for one sample.
    pub fn render(&self, labels: &[String]) -> String {
        self.text.replace(LABELS_PLACEHOLDER, &labels.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_joined_with_commas() {
        let t = PromptTemplate::from_text("x\n- class label: {labels}\n".into()).unwrap();
        assert_eq!(
            t.render(&["clarinet".into(), "violin".into()]),
            "x\n- class label: clarinet, violin\n"
        );
        assert!(PromptTemplate::from_text("no slot".into()).is_err());
    }

    #[test]
    fn repository_prompt_has_table5_parts() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../prompts/oa-ssl-table5.txt");
        let t = PromptTemplate::load(&path).unwrap();
        let text = t.render(&["red drum".into()]);
        assert!(text.contains("Identify foreground (sound-related) elements"));
        assert!(text.contains("clarinet, violin"));
        assert!(text.trim_end().ends_with("class label: red drum"));
    }
}
