//! Loader-only throughput of stage three: samples/s of the batch loader reading the decoded-data cache against
//! the decode path (JPEG decode, resize, WAV read, spectrogram per sample), same clips, plan and threads.
//!
//! `loader_throughput <data dir> [crop] [batches] [workers]`: uses the clips of `<data>/dataset/manifest.csv`
//! with their extracted frame and WAV (`make data && make captions` first), batch size 32, the training resize
//! of `crop` (default 128), 1 s of audio. The cache is built under a temporary folder first (its time is
//! printed apart).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use oassl_pipeline::fingerprint::hash_file;
use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::Layout;
use oassl_train::data::batch::{BatchLoader, LoaderSettings, Source};
use oassl_train::data::decoded_cache::{CacheParams, DecodedCache};
use oassl_train::data::{epoch_order, FrameTransform, TrainSample};

const BATCH: usize = 32;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let Some(root) = args.get(1) else {
        bail!("usage: loader_throughput <data dir> [crop] [batches] [workers]");
    };
    let arg = |i: usize, default: usize| -> Result<usize> {
        args.get(i).map_or(Ok(default), |v| {
            v.parse().with_context(|| format!("argument {i}: {v:?}"))
        })
    };
    let (crop, batches, workers) = (arg(2, 128)? as u32, arg(3, 200)?, arg(4, 2)?);
    let layout = Layout::new(PathBuf::from(root));
    let manifest = Manifest::read(&layout.manifest())?;
    let samples: Vec<TrainSample> = manifest
        .rows
        .iter()
        .map(|r| TrainSample {
            id: r.id.clone(),
            frame: layout.frame(&r.id),
            audio: layout.audio(&r.id),
            foreground: vec![vec![0.0; 8]; r.labels.len().max(1)],
            background: vec![0.0; 8],
        })
        .collect();
    if samples.len() < BATCH {
        bail!("{} clips in {}; need at least {BATCH}", samples.len(), root);
    }
    let params = CacheParams {
        resize: (crop as f64 * 246.0 / 224.0).round() as u32,
        crop,
        audio_seconds: 1.0,
    };
    let content = samples
        .iter()
        .map(|s| Ok((s.id.to_string(), hash_file(&s.frame)?, hash_file(&s.audio)?)))
        .collect::<Result<Vec<_>>>()?;
    let key = DecodedCache::key(&content, &params);
    let folder = tempfile::tempdir()?;
    let started = Instant::now();
    let (cache, _) = DecodedCache::open_or_build(folder.path(), &samples, &key, &params, workers)?;
    println!(
        "cache build: {} clips in {:.2} s ({:.0} clips/s)",
        cache.len(),
        started.elapsed().as_secs_f64(),
        cache.len() as f64 / started.elapsed().as_secs_f64()
    );
    let cache = Arc::new(cache);
    let samples = Arc::new(samples);
    let settings = LoaderSettings {
        transform: FrameTransform::Train {
            resize: params.resize,
            crop,
            flip: true,
        },
        audio_seconds: params.audio_seconds,
        seed: 0,
        workers,
        prefetch: 4,
        compose: 1,
    };
    let per_epoch = samples.len() / BATCH;
    let plan = |steps: usize| -> Vec<(usize, Vec<usize>)> {
        (0..steps)
            .map(|step| {
                let order = epoch_order(samples.len(), 0, step / per_epoch);
                let at = (step % per_epoch) * BATCH;
                (step, order[at..at + BATCH].to_vec())
            })
            .collect()
    };
    let run = |source: Source, steps: usize| -> Result<f64> {
        let started = Instant::now();
        let mut n = 0usize;
        for batch in BatchLoader::spawn(samples.clone(), source, plan(steps), settings)? {
            n += batch?.len();
        }
        Ok(n as f64 / started.elapsed().as_secs_f64())
    };
    // The decode path is ~10x slower; fewer batches keep its run short.
    let decode_steps = (batches / 10).max(4);
    for round in 1..=2 {
        let cached = run(Source::Cache(cache.clone()), batches)?;
        let decoded = run(Source::Files, decode_steps)?;
        println!(
            "round {round}: crop {crop}, batch {BATCH}, {workers} workers: cache {cached:.0} samples/s \
             ({batches} batches), decode path {decoded:.0} samples/s ({decode_steps} batches), ratio {:.1}x",
            cached / decoded
        );
    }
    Ok(())
}
