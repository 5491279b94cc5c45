//! Stage one, `oassl captions`: extract each clip's frame and audio window, ask an MLLM for foreground and
//! background captions, and write `captions/captions.parquet`.
//!
//! - [`dataset_import`]: manifest rows from local VGGSound / MUSIC videos and the benchmarks' list files.
//! - [`extraction`]: frame JPEG + mono WAV per clip with FFmpeg (feature `ffmpeg`), cached by video size, mtime
//!   and parameters.
//! - [`prompt`], [`caption_request`]: the Table 5 prompt with the labels filled in, the chat request body and the
//!   request key that names a caption in the cache.
//! - [`answer`]: tolerant parsing and validation of the model's JSON answer.
//! - [`client`], [`endpoint`]: bounded, retrying HTTP client over one or several OpenAI-compatible endpoints.
//! - [`journal`]: the append-only record of finished requests that makes every run resumable.
//! - [`batch`]: OpenAI Batch API export and import (`vllm run-batch`).
//! - [`shard`]: `--shard i/n` selection.
//! - [`table`]: the Parquet output.
//! - [`stage`]: the whole run.

pub mod answer;
pub mod batch;
pub mod caption_request;
pub mod client;
pub mod dataset_import;
pub mod endpoint;
pub mod extraction;
pub mod journal;
pub mod prompt;
pub mod shard;
pub mod stage;
pub mod table;

pub use stage::{run, RunOptions, Summary};
