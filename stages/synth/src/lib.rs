//! AVS-Synth: a deterministic synthetic audio-visual dataset for running, testing and benchmarking the pipeline
//! where no real dataset can be downloaded.
//!
//! Each scene shows 1 or 2 **sounding** objects (with a small "being played" cue: three dark vibration marks to
//! the object's right) and 0 to 3 **silent** ones, some of the same class as a sounding one (the paper's hard
//! case). Every class has its own look ([`catalogue`]: hue, shape, texture) and its own sound (a harmonic
//! signature with its own modulation). The audio is the mixture of the sounding objects' sounds.
//!
//! Written by [`generate`]: the manifest, one H.264 + AAC mp4 per clip (or, in the extracted layout, the centre
//! frame as JPEG and the audio window as WAV exactly where stage one would put them), the ground truth of each
//! split in VGG-SS json form, and `scenes.json` with every object.

pub mod audio;
pub mod catalogue;
pub mod generate;
pub mod geometry;
pub mod ground_truth;
pub mod render;
pub mod scene;
pub mod video;

pub use generate::{generate, OutputLayout, Summary};
