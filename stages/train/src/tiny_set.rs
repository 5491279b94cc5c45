//! A tiny AVS-Synth set with stand-in text vectors, and training settings small enough for it, on CPU: the
//! fixtures of the tests that train (here and in the crates that evaluate or compare trained models). Tests
//! only; failures panic.

use std::collections::BTreeMap;
use std::path::Path;

use oassl_pipeline::config::{SynthConfig, TrainConfig};
use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::tables::{write_sample_texts, SampleText};
use oassl_pipeline::Layout;
use rand::{Rng, SeedableRng};

/// Width of the stand-in text vectors.
pub const TEXT_DIM: usize = 16;

/// Writes `embed/sample_text.parquet` for every manifest sample, standing in for stage two: one seeded random
/// vector of width `dim` per label, and one shared background vector.
pub fn write_stand_in_texts(layout: &Layout, dim: usize) {
    let manifest = Manifest::read(&layout.manifest()).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut vectors: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let mut vector = |name: &str| {
        vectors
            .entry(name.to_string())
            .or_insert_with(|| (0..dim).map(|_| rng.gen_range(-1.0f32..1.0)).collect())
            .clone()
    };
    let rows: Vec<SampleText> = manifest
        .rows
        .iter()
        .map(|r| SampleText {
            sample_id: r.id.clone(),
            labels: r.labels.clone(),
            foreground: r.labels.iter().map(|l| vector(l)).collect(),
            background: vector("background"),
        })
        .collect();
    write_sample_texts(
        &layout.stage_dir("embed").join("sample_text.parquet"),
        &rows,
    )
    .unwrap();
}

/// A tiny AVS-Synth set in the extract layout, with per-class text vectors standing in for stage two.
pub fn tiny_data(root: &Path, single: usize, duet: usize) -> Layout {
    tiny_data_with(
        root,
        SynthConfig {
            width: 96,
            height: 96,
            train_single: single,
            train_duet: duet,
            test_single: 2,
            test_duet: 2,
            max_silent: 1,
            ..SynthConfig::default()
        },
    )
}

/// AVS-Synth as `synth` configures it, extracted, with per-label text vectors.
pub fn tiny_data_with(root: &Path, synth: SynthConfig) -> Layout {
    let layout = Layout::new(root);
    oassl_synth::generate(&synth, &layout, oassl_synth::OutputLayout::Extracted).unwrap();
    write_stand_in_texts(&layout, TEXT_DIM);
    layout
}

/// Training settings small enough for a CPU test: 64-pixel frames, half a second of audio, two epochs.
pub fn tiny_train() -> TrainConfig {
    TrainConfig {
        device: "cpu".into(),
        image_size: 64,
        audio_seconds: 0.5,
        batch_size: 4,
        epochs: 2,
        checkpoint_every: 2,
        workers: 2,
        ..TrainConfig::default()
    }
}
