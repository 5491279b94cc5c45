//! Stage one benchmark (`make bench`): extraction clips/s against the `ffmpeg` CLI run once per clip on the same
//! files with the same parallelism, and client captions/s against an instant stand-in at 64 requests in flight.
//! Writes the numbers into the file given with `--out` (BENCHMARKS.md).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;

use oassl_captions::caption_request::GenerationParams;
use oassl_captions::client::{caption_all, CaptionClient, CaptionJob, ClientSettings};
use oassl_captions::extraction::{extract_all, ExtractJob, ExtractOutcome, ExtractParams};
use oassl_captions::journal::Journal;
use oassl_pipeline::config::{CaptionsConfig, StubConfig, SynthConfig};
use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::Layout;

const WORKERS: usize = 2;
const CAPTIONS: usize = 2000;

fn cli_extract(video: &Path, out: &Path, params: &ExtractParams) -> Result<()> {
    // The same work in one CLI run: seek to the audio window, the frame 1.5 s in, 3 s of mono audio.
    let size = format!("scale={}:{}", params.frame_size, params.frame_size);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-ss", "0.5", "-i"])
        .arg(video)
        .args([
            "-map",
            "0:v:0",
            "-ss",
            "1.5",
            "-frames:v",
            "1",
            "-vf",
            &size,
            "-q:v",
            "2",
        ])
        .arg(out.with_extension("jpg"))
        .args([
            "-map",
            "0:a:0",
            "-t",
            "3",
            "-ac",
            "1",
            "-ar",
            &params.audio_rate.to_string(),
        ])
        .arg(out.with_extension("wav"))
        .status()
        .context("running ffmpeg")?;
    if !status.success() {
        bail!("ffmpeg failed on {}", video.display());
    }
    Ok(())
}

fn main() -> Result<()> {
    let out_file = std::env::args()
        .skip_while(|a| a != "--out")
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("BENCHMARKS.md"));
    let dir = tempfile::tempdir()?;
    let layout = Layout::new(dir.path().join("data"));
    let synth = SynthConfig {
        train_single: 24,
        train_duet: 24,
        test_single: 0,
        test_duet: 0,
        ..SynthConfig::default()
    };
    eprintln!("bench: generating AVS-Synth clips");
    oassl_synth::generate(&synth, &layout, oassl_synth::OutputLayout::Video)?;
    let manifest = Manifest::read(&layout.manifest())?;
    let jobs: Vec<ExtractJob> = manifest
        .rows
        .iter()
        .map(|r| ExtractJob::of_row(&manifest, r))
        .collect();
    let cfg = CaptionsConfig::default();
    let params = ExtractParams::from_config(&cfg);
    let hidden = oassl_pipeline::progress::bar("bench", 0);

    eprintln!("bench: extraction, ffmpeg-next");
    let started = Instant::now();
    let outcomes = extract_all(&jobs, &layout, &params, WORKERS, true, &hidden)?;
    let ours = started.elapsed().as_secs_f64();
    if outcomes
        .iter()
        .any(|o| matches!(o, ExtractOutcome::Failed(_)))
    {
        bail!("extraction failed: {outcomes:?}");
    }
    eprintln!("bench: extraction, ffmpeg CLI once per clip");
    let cli_dir = dir.path().join("cli");
    std::fs::create_dir_all(&cli_dir)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()?;
    let started = Instant::now();
    pool.install(|| {
        jobs.par_iter().try_for_each(|j| {
            let video = j.videos.first().context("no video")?;
            cli_extract(video, &cli_dir.join(j.id.as_str()), &params)
        })
    })?;
    let cli = started.elapsed().as_secs_f64();
    let n = jobs.len() as f64;

    eprintln!("bench: client against an instant stand-in");
    let stub = oassl_stub::spawn(&StubConfig::default(), None)?;
    let gen = GenerationParams::from_config(&cfg, "oassl-stub");
    let settings = ClientSettings {
        max_in_flight: 64,
        max_attempts: 3,
        max_reasks: 0,
        timeout: Duration::from_secs(60),
        backoff: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        api_key: None,
    };
    let prompt = std::fs::read_to_string("prompts/oa-ssl-table5.txt")?;
    let caption_jobs: Vec<CaptionJob> = (0..CAPTIONS)
        .map(|i| {
            let row = &manifest.rows[i % manifest.rows.len()];
            CaptionJob {
                request_key: format!("bench-{i}"),
                sample_id: row.id.to_string(),
                labels: row.labels.clone(),
                frame: layout.frame(&row.id),
                image_hash: String::new(),
                prompt: prompt.replace("{labels}", &row.labels.join(", ")),
                prompt_hash: String::new(),
            }
        })
        .collect();
    let client = Arc::new(CaptionClient::new(vec![stub.base_url()], settings, gen)?);
    let mut journal = Journal::open(&dir.path().join("journal.jsonl"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let done = runtime.block_on(caption_all(client, caption_jobs, &mut journal, |_| {}))?;
    let client_s = started.elapsed().as_secs_f64();
    let ok = done
        .iter()
        .filter(|e| e.status == oassl_captions::journal::CaptionStatus::Ok)
        .count();
    stub.stop();

    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    // Said in the report: a debug build of the oassl crates is slower than `make bench`'s release build.
    let profile = if cfg!(debug_assertions) {
        "Debug (oassl crates; dependencies at opt-level 2)"
    } else {
        "Release"
    };
    let report = format!(
        "## Stage one (`oassl captions`)\n\n\
         Machine: {cores} cores ({cpu}); date {date}; commit {commit}. {profile} build, `make bench`.\n\n\
         | measurement | result |\n| --- | --- |\n\
         | extraction, ffmpeg-next, {WORKERS} workers ({} AVS-Synth clips, 224 px frame + 3 s 22.05 kHz WAV) | {:.1} clips/s ({:.2} s) |\n\
         | baseline: `ffmpeg` CLI once per clip, {WORKERS} at a time, same files and outputs | {:.1} clips/s ({:.2} s) |\n\
         | ratio (ffmpeg-next / CLI) | {:.2}x |\n\
         | client against the stand-in (latency 0), 64 in flight, {CAPTIONS} captions | {:.0} captions/s ({ok} ok, {:.2} s) |\n\n\
         The stand-in runs in the same process and decodes every image it gets, so the client figure is bounded by \
         the stand-in's own CPU work on the same cores.\n",
        jobs.len(),
        n / ours,
        ours,
        n / cli,
        cli,
        cli / ours,
        done.len() as f64 / client_s,
        client_s,
    );
    print!("{report}");
    let mut text =
        std::fs::read_to_string(&out_file).unwrap_or_else(|_| "# Benchmarks\n\n".to_string());
    match text.find("## Stage one (`oassl captions`)") {
        Some(start) => {
            let end = text[start + 3..]
                .find("\n## ")
                .map(|e| start + 3 + e + 1)
                .unwrap_or(text.len());
            text.replace_range(start..end, &report);
        }
        None => {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push('\n');
            text.push_str(&report);
        }
    }
    oassl_pipeline::atomic::write_bytes(&out_file, text.as_bytes())?;
    Ok(())
}
