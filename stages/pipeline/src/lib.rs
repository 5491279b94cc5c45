//! Shared pieces of the oassl stages.
//!
//! Every stage reads and writes files only; this crate says where they are ([`layout`]), what a sample id may
//! look like ([`sample_id`]), how the manifest table is shaped ([`manifest`]), how `pipeline.toml` is parsed and
//! validated ([`config`]), how files are written without ever leaving half a file behind ([`atomic`]), and how a
//! stage decides whether it is up to date ([`fingerprint`], [`stage_lock`]), keeps other runs out of its
//! folders while it works ([`run_lock`]) and shows its progress ([`progress`]).

pub mod atomic;
pub mod config;
pub mod fingerprint;
pub mod layout;
pub mod manifest;
pub mod progress;
pub mod run_lock;
pub mod sample_id;
pub mod stage_lock;
pub mod tables;

pub use config::PipelineConfig;
pub use layout::Layout;
pub use sample_id::SampleId;
