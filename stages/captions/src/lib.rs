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
//!
//! A pair sample (VGGSound-Duet: a manifest row naming two videos, id `file+mix_file`) is one sample throughout:
//! extraction writes one frame, the vertical mosaic of its clips' frames, and one WAV, their summed audio, and
//! the MLLM gets one request with that mosaic and both labels (it is sent no audio, as for any sample). One request
//! keeps one caption row per sample, the captions describe exactly the image the localiser sees at training and
//! test time, and the prompt already asks for one foreground caption per label, so the two sources come back as
//! the two foreground captions in manifest order. The mosaic is not square; the request's downscaling to
//! `max_side` keeps the aspect ratio.

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
