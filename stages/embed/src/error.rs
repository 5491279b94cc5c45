//! The crate's error type: what can go wrong while loading a model folder or embedding texts.

use std::path::PathBuf;

/// Errors raised by the text encoders. Each variant that concerns a file names it, and each tensor
/// problem names the checkpoint key, so a bad model folder can be fixed from the message alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// The model folder itself is absent.
    #[error("model folder {} does not exist", .0.display())]
    MissingModelDir(PathBuf),

    /// A file the encoder needs (`config.json`, `tokenizer.json`, `model.safetensors`) is absent.
    #[error("missing {what} file {}", path.display())]
    MissingFile { what: &'static str, path: PathBuf },

    /// A file exists but could not be read.
    #[error("reading {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `config.json` (or `sentence_bert_config.json`) is not valid JSON for the expected schema.
    #[error("parsing {}", path.display())]
    ConfigParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// `config.json` describes an architecture this crate does not implement, or not the one asked for.
    #[error("{}: model_type {found:?} is not supported here (expected {expected})", path.display())]
    UnsupportedModelType {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },

    /// `config.json` parses but holds values the model cannot be built from.
    #[error("{}: {message}", path.display())]
    InvalidConfig { path: PathBuf, message: String },

    /// A tensor the config calls for is absent from the checkpoint.
    #[error("{}: tensor {tensor} not found", path.display())]
    MissingTensor { path: PathBuf, tensor: String },

    /// A checkpoint tensor's shape disagrees with the shape derived from `config.json`.
    #[error("{}: tensor {tensor} has shape {found:?} but config.json implies {expected:?}", path.display())]
    ShapeMismatch {
        path: PathBuf,
        tensor: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },

    /// `tokenizer.json` could not be loaded or could not encode a text.
    #[error("tokenizer {}: {source}", path.display())]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The tokenizer produced an id the embedding table has no row for.
    #[error("token id {id} is outside the model vocabulary of {vocab_size} (tokenizer and weights disagree)")]
    TokenOutOfVocab { id: i64, vocab_size: i64 },

    /// The spec asks for something the chosen encoder cannot do.
    #[error("invalid encoder spec: {0}")]
    InvalidSpec(String),

    /// A libtorch operation failed.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// Result alias used throughout the crate.
pub type Result<T, E = EmbedError> = std::result::Result<T, E>;
