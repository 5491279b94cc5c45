//! Stage two, `oassl embed`: embeds every distinct caption text once and hands stage three its text vectors.
//!
//! Reads `captions/captions.parquet` (the `ok` rows); writes
//! - `embed/embeddings.parquet`: `text_hash`, `text`, `encoder` (fingerprint), `embedding` (array[f32, D]) for
//!   every caption text in use;
//! - `embed/sample_text.parquet`: per sample its K foreground vectors and background vector (the join stage three
//!   reads; schema in `oassl_pipeline::tables::sample_text`);
//! - `embed/stage.lock.json`, last.
//!
//! Texts already embedded by the same encoder (same fingerprint: weights, config, tokenizer, pooling,
//! normalisation, max length) come from the cache, so after a prompt change only the new captions are embedded.

pub mod cache;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use oassl_pipeline::config::{resolve_device, Accelerator, EmbedConfig};
use oassl_pipeline::fingerprint::hash_json;
use oassl_pipeline::stage_lock::{self, StageLock, Staleness};
use oassl_pipeline::tables::{read_captions, write_sample_texts, CaptionRow, SampleText};
use oassl_pipeline::Layout;

use crate::{EncoderKind, EncoderSpec, Pooling, TextEncoder};
use cache::{write_rows, CacheFiles, EmbeddingCache};

/// Options of one run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Run even if the stage lock says nothing changed.
    pub force: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub up_to_date: bool,
    pub reason: String,
    pub samples: usize,
    pub skipped_not_ok: usize,
    pub distinct_texts: usize,
    pub cached: usize,
    pub embedded: usize,
    pub truncated: usize,
    pub sentences_per_second: f64,
}

/// The encoder spec a config names, with the model folder resolved by the caller.
pub fn encoder_spec(cfg: &EmbedConfig, model_dir: &Path) -> EncoderSpec {
    EncoderSpec {
        kind: if cfg.encoder == "clip" {
            EncoderKind::Clip
        } else {
            EncoderKind::Bert
        },
        model_dir: model_dir.to_path_buf(),
        pooling: match cfg.pooling.as_str() {
            "cls" => Pooling::Cls,
            "eos" => Pooling::Eos,
            _ => Pooling::Mean,
        },
        normalize: cfg.normalize,
        max_len: cfg.max_len,
    }
}

/// The libtorch device `[embed] device` names, by the pipeline's one rule ([`resolve_device`]).
pub fn device(name: &str) -> Result<tch::Device> {
    Ok(
        match resolve_device("embed", name, tch::Cuda::is_available())? {
            Accelerator::Cpu => tch::Device::Cpu,
            Accelerator::Cuda => tch::Device::Cuda(0),
        },
    )
}

fn model_files(model_dir: &Path) -> Vec<PathBuf> {
    ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|f| model_dir.join(f))
        .collect()
}

/// Runs stage two: check the inputs and the lock, gather the distinct caption texts, embed those the cache
/// lacks, write the two tables and, last, the lock.
pub fn run(
    cfg: &EmbedConfig,
    model_dir: &Path,
    layout: &Layout,
    opts: &RunOptions,
) -> Result<Summary> {
    let captions = check_inputs(layout, model_dir)?;
    let embed_dir = layout.stage_dir("embed");
    let lock_path = layout.stage_lock("embed");
    let mut deps = vec![captions.clone()];
    deps.extend(model_files(model_dir).into_iter().filter(|p| p.exists()));
    let config_hash = hash_json(cfg)?;
    let staleness = stage_lock::check(&lock_path, &config_hash, &deps)?;
    if staleness == Staleness::UpToDate && !opts.force {
        return Ok(Summary {
            up_to_date: true,
            reason: staleness.to_string(),
            ..Summary::default()
        });
    }
    let reason = if opts.force {
        "forced".to_string()
    } else {
        staleness.to_string()
    };
    tracing::info!("embed: running ({reason})");

    let rows = read_captions(&captions)?;
    let ok = usable_rows(&rows);
    let skipped_not_ok = rows.len() - ok.len();
    let texts = distinct_texts(&ok);

    let spec = encoder_spec(cfg, model_dir);
    let encoder = TextEncoder::load(&spec, device(&cfg.device)?)
        .with_context(|| format!("loading the text encoder from {}", model_dir.display()))?;
    let files = CacheFiles::new(&embed_dir, encoder.fingerprint());
    let mut cache = files.load()?;
    let embedded = embed_missing(&encoder, &files, &mut cache, &texts, cfg)?;

    let outputs = write_vectors(&embed_dir, encoder.fingerprint(), &cache, &texts, &ok)?;

    let summary = Summary {
        up_to_date: false,
        reason,
        samples: outputs.samples,
        skipped_not_ok,
        distinct_texts: texts.len(),
        cached: texts.len() - embedded.count,
        embedded: embedded.count,
        truncated: embedded.truncated,
        sentences_per_second: if embedded.seconds > 0.0 {
            embedded.count as f64 / embedded.seconds
        } else {
            0.0
        },
    };
    write_lock(
        &lock_path,
        config_hash,
        &deps,
        &[&outputs.embeddings, &outputs.sample_text],
        &summary,
    )?;
    Ok(summary)
}

/// The caption rows with status `ok`; the others are counted and left out.
fn usable_rows(rows: &[CaptionRow]) -> Vec<&CaptionRow> {
    let ok: Vec<&CaptionRow> = rows.iter().filter(|r| r.status == "ok").collect();
    let left_out = rows.len() - ok.len();
    if left_out > 0 {
        tracing::warn!("embed: {left_out} caption rows are not `ok` and are left out");
    }
    if ok.is_empty() {
        tracing::warn!("embed: the captions table has no `ok` rows; writing empty outputs");
    }
    ok
}

/// What the stage writes.
struct Outputs {
    /// `embeddings.parquet`: one vector per distinct caption text in use.
    embeddings: PathBuf,
    /// `sample_text.parquet`: each sample's foreground and background vectors, for stage three.
    sample_text: PathBuf,
    samples: usize,
}

/// Writes the vectors of the texts in use and each sample's vectors.
fn write_vectors(
    embed_dir: &Path,
    fingerprint: &str,
    cache: &EmbeddingCache,
    texts: &[String],
    ok: &[&CaptionRow],
) -> Result<Outputs> {
    let vector = |text: &str| -> Result<Vec<f32>> {
        cache
            .get(text)
            .cloned()
            .with_context(|| format!("no embedding for caption {text:?}"))
    };
    let embeddings = embed_dir.join("embeddings.parquet");
    let in_use: Vec<(String, Vec<f32>)> = texts
        .iter()
        .map(|t| Ok((t.clone(), vector(t)?)))
        .collect::<Result<_>>()?;
    write_rows(
        &embeddings,
        fingerprint,
        in_use.iter().map(|(t, v)| (t.as_str(), v.as_slice())),
    )?;
    let rows = sample_texts(ok, vector)?;
    let sample_text = embed_dir.join("sample_text.parquet");
    write_sample_texts(&sample_text, &rows)?;
    Ok(Outputs {
        embeddings,
        sample_text,
        samples: rows.len(),
    })
}

/// The captions table, once it and the encoder folder exist; errors name the command that makes them.
fn check_inputs(layout: &Layout, model_dir: &Path) -> Result<PathBuf> {
    let captions = layout.captions();
    if !captions.exists() {
        bail!(
            "captions table {} not found: run `make captions` first",
            captions.display()
        );
    }
    if !model_dir.is_dir() {
        bail!(
            "[embed] model_dir {} does not exist (`make setup` unpacks all-MiniLM-L6-v2 into data/models/)",
            model_dir.display()
        );
    }
    Ok(captions)
}

/// Every caption text of `rows` (foreground and background), sorted, each once.
fn distinct_texts(rows: &[&CaptionRow]) -> Vec<String> {
    let mut texts: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            r.foreground
                .iter()
                .cloned()
                .chain(std::iter::once(r.background.clone()))
        })
        .collect();
    texts.sort();
    texts.dedup();
    texts
}

/// What [`embed_missing`] did.
struct Embedded {
    /// Texts embedded now.
    count: usize,
    /// Of those, texts cut at the encoder's maximum length.
    truncated: usize,
    /// Seconds spent embedding.
    seconds: f64,
}

/// Embeds the texts `cache` lacks, `chunk_size` at a time; each chunk is written as a cache part before the next
/// starts (an interrupted run keeps it), and the parts are compacted at the end.
fn embed_missing(
    encoder: &TextEncoder,
    files: &CacheFiles,
    cache: &mut EmbeddingCache,
    texts: &[String],
    cfg: &EmbedConfig,
) -> Result<Embedded> {
    let missing: Vec<String> = texts
        .iter()
        .filter(|t| cache.get(t).is_none())
        .cloned()
        .collect();
    let started = Instant::now();
    let progress = oassl_pipeline::progress::bar("embed", missing.len());
    let mut truncated = 0;
    for chunk in missing.chunks(cfg.chunk_size) {
        let out = encoder.embed(chunk, cfg.batch_size)?;
        truncated += out.truncated;
        let part: Vec<(String, Vec<f32>)> = chunk.iter().cloned().zip(out.vectors).collect();
        files.write_part(&part)?;
        for (text, vector) in part {
            cache.insert(text, vector)?;
        }
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if !missing.is_empty() {
        files.compact(cache)?;
    }
    Ok(Embedded {
        count: missing.len(),
        truncated,
        seconds,
    })
}

/// Per `ok` row its K foreground vectors and background vector; a row whose foreground count differs from its
/// label count is refused, naming the sample.
fn sample_texts(
    ok: &[&CaptionRow],
    vector: impl Fn(&str) -> Result<Vec<f32>>,
) -> Result<Vec<SampleText>> {
    ok.iter()
        .map(|r| {
            if r.foreground.len() != r.labels.len() {
                bail!(
                    "sample {}: {} foreground captions for {} labels",
                    r.sample_id,
                    r.foreground.len(),
                    r.labels.len()
                );
            }
            Ok(SampleText {
                sample_id: r.sample_id.clone(),
                labels: r.labels.clone(),
                foreground: r
                    .foreground
                    .iter()
                    .map(|t| vector(t))
                    .collect::<Result<_>>()?,
                background: vector(&r.background)?,
            })
        })
        .collect()
}

/// The stage lock, written last: it vouches for `outs` as made from `deps` under `config_hash`.
fn write_lock(
    lock_path: &Path,
    config_hash: String,
    deps: &[PathBuf],
    outs: &[&Path],
    summary: &Summary,
) -> Result<()> {
    let lock = StageLock::finished(
        "embed",
        config_hash,
        stage_lock::digests(deps)?,
        outs,
        &[
            ("samples", summary.samples),
            ("embedded", summary.embedded),
            ("cached", summary.cached),
            ("truncated", summary.truncated),
        ],
    )?;
    lock.write(lock_path)
}
