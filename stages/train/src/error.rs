//! Error type of this crate.

/// What can go wrong when building the model or computing a loss.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// An input tensor has the wrong rank or size; names the operation and the input.
    #[error("{op}: input `{input}` has shape {actual:?}, expected {expected}")]
    Shape {
        /// The function that rejected the input.
        op: &'static str,
        /// The offending argument.
        input: &'static str,
        /// Human-readable expected shape, e.g. `[B, 512, h, w] with B = 4`.
        expected: String,
        /// The shape that arrived.
        actual: Vec<i64>,
    },
    /// A configuration value is out of its valid range.
    #[error("invalid config field `{field}`: {reason}")]
    Config {
        /// Field name as spelled in the config file.
        field: &'static str,
        /// Why it was rejected.
        reason: String,
    },
    /// An error raised by libtorch.
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, TrainError>;
