//! Typed errors for the places where callers branch on what went wrong.

use thiserror::Error;

/// Everything that can make an evaluation refuse to produce a number.
///
/// The metric code never substitutes a value for bad input: a missing map, a NaN or a wrong
/// shape is an error naming the sample, so a report can never silently differ from the peers.
#[derive(Debug, Error)]
pub enum EvalError {
    /// Annotated samples without a predicted map (all ids listed).
    #[error("{} annotated sample(s) have no map: {}", .0.len(), .0.join(", "))]
    MissingMaps(Vec<String>),
    /// Annotated samples without a map under a protocol that cannot score a missing map.
    #[error(
        "{} annotated sample(s) have no map, and protocol `{protocol}` cannot score a missing map as a failure (a failure has no confidence): {}",
        .ids.len(),
        .ids.join(", ")
    )]
    MissingMapsUnscorable { protocol: String, ids: Vec<String> },
    /// Nothing to score: the annotation list is empty.
    #[error("no annotated samples to score")]
    NoSamples,
    /// A map holds a NaN or an infinite value.
    #[error("map for sample `{id}` contains a non-finite value at flat index {index}")]
    NonFinite { id: String, index: usize },
    /// A map tensor has the wrong rank, dtype or an empty dimension.
    #[error("map for sample `{id}`: {reason}")]
    BadMap { id: String, reason: String },
    /// The protocol cannot score this sample (e.g. wrong number of class-conditioned maps).
    #[error("sample `{id}` cannot be scored under protocol `{protocol}`: {reason}")]
    Incompatible {
        id: String,
        protocol: String,
        reason: String,
    },
    /// sklearn's `average_precision_score` raises on non-binary labels; so do we.
    #[error("pixel AP needs binary labels, found value {value}")]
    NonBinaryLabels { value: f64 },
    /// An annotation file does not have the structure of the requested format.
    #[error("annotation file {file} is not valid {format}: {reason}")]
    BadAnnotation {
        file: String,
        format: String,
        reason: String,
    },
    /// A resize the kernels do not reproduce exactly.
    #[error("unsupported resize: {0}")]
    UnsupportedResize(String),
}
