//! Sentences per second of an encoder on the fixture captions, for comparison with
//! `examples/throughput_reference.py` (sentence-transformers on the same texts and batch size).
//!
//! ```text
//! cargo run --release --example throughput -- [MODEL_DIR] [REPEATS] [BATCH_SIZE] [cpu|cuda]
//! ```
//! Defaults: `models/all-MiniLM-L6-v2`, 20 repeats of the 54 captions in
//! `tests/fixtures/minilm_reference.json`, batch size 32, CPU.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use oassl_embed::{EncoderSpec, TextEncoder};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model_dir = PathBuf::from(
        args.first()
            .map_or("models/all-MiniLM-L6-v2", String::as_str),
    );
    let repeats: usize = args
        .get(1)
        .map_or(Ok(20), |s| s.parse())
        .context("REPEATS")?;
    let batch_size: usize = args
        .get(2)
        .map_or(Ok(32), |s| s.parse())
        .context("BATCH_SIZE")?;
    let device = match args.get(3).map(String::as_str) {
        Some("cuda") => tch::Device::Cuda(0),
        _ => tch::Device::Cpu,
    };

    let fixture =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm_reference.json");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&fixture)
            .with_context(|| format!("reading {}", fixture.display()))?,
    )?;
    let captions: Vec<String> = serde_json::from_value(json["texts"].clone())?;
    let texts: Vec<String> = (0..repeats)
        .flat_map(|_| captions.iter().cloned())
        .collect();

    let spec = EncoderSpec {
        model_dir: model_dir.clone(),
        ..EncoderSpec::default()
    };
    let encoder = TextEncoder::load(&spec, device)
        .with_context(|| format!("loading {}", model_dir.display()))?;
    // Warm-up: first calls allocate and pick kernels.
    encoder.embed(&captions, batch_size)?;

    let start = Instant::now();
    let out = encoder.embed(&texts, batch_size)?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "oassl-embed: {} texts, batch {batch_size}, {} threads, {:.2} s, {:.1} sentences/s (truncated {})",
        texts.len(),
        tch::get_num_threads(),
        secs,
        texts.len() as f64 / secs,
        out.truncated
    );
    Ok(())
}
