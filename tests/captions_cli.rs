//! `oassl captions` end to end against the MLLM stand-in over real HTTP: happy path, faults, `kill -9` and
//! resume, prompt changes, shards, bad inputs and replayed answers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oassl_captions::table::{read_table, CaptionRecord};
use oassl_pipeline::config::StubConfig;
use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::tables::read_captions;

use crate::common::{assert_ok, Workspace, TINY_SYNTH};

fn repo_prompt() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/oa-ssl-table5.txt")
}

/// A workspace with a tiny AVS-Synth and `[captions]` lines added to the config.
pub(crate) fn synth_workspace(captions: &str) -> Workspace {
    let prompt = repo_prompt();
    let toml = format!(
        "{TINY_SYNTH}\n[captions]\nprompt_file = {:?}\nbackoff_ms = 5\nbackoff_max_ms = 50\n{captions}\n",
        prompt.to_string_lossy()
    );
    let ws = Workspace::with_config(&toml);
    assert_ok(&ws.oassl(&["synth"]));
    ws
}

fn endpoint_lines(stub: &oassl_stub::StubHandle) -> String {
    format!(
        "endpoints = [{:?}]\nmodel = \"oassl-stub\"",
        stub.base_url()
    )
}

fn captions_table(ws: &Workspace) -> Vec<oassl_pipeline::tables::CaptionRow> {
    read_captions(&ws.data().join("captions/captions.parquet")).expect("captions table")
}

pub(crate) fn assert_all_ok(ws: &Workspace, n: usize) {
    let rows = captions_table(ws);
    assert_eq!(rows.len(), n);
    let mut ids: Vec<_> = rows.iter().map(|r| r.sample_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate rows");
    for r in &rows {
        assert_eq!(r.status, "ok", "{r:?}");
        assert_eq!(r.foreground.len(), r.labels.len(), "{r:?}");
        assert!(r.foreground.iter().all(|f| f.starts_with("an image of")));
        assert!(!r.background.is_empty());
    }
}

/// Checks every row against the scene it was rendered from: each label's caption says its object is being
/// played (the stand-in says so only when it found, in the extracted frame, a played object of that colour and
/// shape), the caption's colour word is the sounding object's, and the background names exactly the silent
/// objects (which the prompt does not mention, so only the frame can tell).
pub(crate) fn assert_captions_match_scenes(ws: &Workspace) {
    let scenes: Vec<oassl_synth::scene::Scene> =
        serde_json::from_slice(&std::fs::read(ws.data().join("dataset/scenes.json")).unwrap())
            .unwrap();
    let rows = captions_table(ws);
    assert_eq!(rows.len(), scenes.len());
    for r in &rows {
        let scene = scenes
            .iter()
            .find(|s| s.id == r.sample_id.as_str())
            .unwrap_or_else(|| panic!("{} has no scene", r.sample_id));
        assert_eq!(r.status, "ok", "{r:?}");
        let sounding: Vec<_> = scene.objects.iter().filter(|o| o.sounding).collect();
        assert_eq!(r.labels.len(), sounding.len(), "{r:?}");
        for ((label, fg), obj) in r.labels.iter().zip(&r.foreground).zip(&sounding) {
            assert_eq!(fg, &format!("an image of a {label} being played"), "{r:?}");
            let colour = obj.class_name.split_whitespace().next().unwrap();
            let said = fg["an image of a ".len()..].split_whitespace().next();
            assert_eq!(said, Some(colour), "{}: {fg}", r.sample_id);
        }
        let silent: Vec<String> = scene
            .objects
            .iter()
            .filter(|o| !o.sounding)
            .map(|o| format!("a silent {}", o.class_name))
            .collect();
        if silent.is_empty() {
            assert_eq!(
                r.background, "an image of a plain background with no other objects",
                "{r:?}"
            );
        } else {
            assert_eq!(
                r.background,
                format!("an image of {}, and a plain background", silent.join(", ")),
                "{r:?}"
            );
        }
    }
}

/// Starts a stand-in that replays `lines` in request order, points the workspace at it (one request in flight,
/// so the order is the manifest's) and runs `oassl captions` to success.
fn replay_stand_in(ws: &Workspace, lines: &[serde_json::Value]) -> oassl_stub::StubHandle {
    let replay = ws.path().join("replay.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&replay, text).unwrap();
    let stub = oassl_stub::spawn(&StubConfig::default(), Some(&replay)).unwrap();
    let cfg = std::fs::read_to_string(ws.config()).unwrap();
    std::fs::write(
        ws.config(),
        format!("{cfg}{}\nmax_in_flight = 1\n", endpoint_lines(&stub)),
    )
    .unwrap();
    assert_ok(&ws.oassl(&["captions"]));
    stub
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn happy_path_with_the_built_in_stand_in_then_up_to_date() {
    let ws = synth_workspace("");
    let out = ws.oassl(&["captions"]);
    assert_ok(&out);
    assert_all_ok(&ws, 10);
    assert_captions_match_scenes(&ws);
    let manifest = Manifest::read(&ws.data().join("dataset/manifest.csv")).unwrap();
    for row in &manifest.rows {
        let frame = image::open(ws.data().join(format!("extract/frames/{}.jpg", row.id))).unwrap();
        assert_eq!((frame.width(), frame.height()), (224, 224));
        let wav = hound::WavReader::open(ws.data().join(format!("extract/audio/{}.wav", row.id)))
            .unwrap();
        assert_eq!(wav.spec().sample_rate, 22050);
        assert_eq!(wav.len(), 3 * 22050);
    }
    let again = ws.oassl(&["captions"]);
    assert_ok(&again);
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));
}

#[test]
fn every_kind_of_fault_is_injected_and_recovered() {
    // The stand-in draws each fault from the request body and its attempt number, so these rates give the same
    // faults on every run whatever the order the requests arrive in; they are high enough that each kind occurs
    // among the ~35 requests, and the client's limits high enough that no sample runs out of tries.
    let stub = oassl_stub::spawn(
        &StubConfig {
            rate_429: 0.15,
            rate_500: 0.15,
            rate_503: 0.15,
            drop_rate: 0.15,
            malformed_rate: 0.3,
            fenced_rate: 0.4,
            prose_rate: 0.4,
            seed: 3,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let ws = synth_workspace(&format!(
        "{}\nmax_attempts = 40\nmax_reasks = 15\n",
        endpoint_lines(&stub)
    ));
    let out = ws.oassl(&["captions"]);
    assert_ok(&out);
    assert_all_ok(&ws, 10);
    assert_captions_match_scenes(&ws);
    let stats = stub.stats();
    for (kind, n) in [
        ("429", stats.injected_429),
        ("500", stats.injected_500),
        ("503", stats.injected_503),
        ("dropped connection", stats.dropped),
        ("truncated answer", stats.malformed),
        ("fenced answer", stats.fenced),
        ("prose around the answer", stats.prose),
    ] {
        assert!(n > 0, "no {kind} was injected: {stats:?}");
    }
    // Recovered: every request ended in exactly one outcome, each truncated answer was asked again and each
    // sample got exactly one good answer; every 429's Retry-After was waited out; the client counted the same
    // requests the stand-in saw.
    assert_eq!(
        stats.chat_requests,
        stats.answered + stats.injected_errors + stats.dropped + stats.bad_requests,
        "{stats:?}"
    );
    assert_eq!(stats.bad_requests, 0, "{stats:?}");
    assert_eq!(stats.answered, 10 + stats.malformed, "{stats:?}");
    assert_eq!(stats.early_retries, 0, "{stats:?}");
    assert!(
        stdout(&out).contains(&format!("({} HTTP requests", stats.chat_requests)),
        "{}\n{stats:?}",
        stdout(&out)
    );
}

fn journal_lines(ws: &Workspace) -> usize {
    std::fs::read_to_string(ws.data().join("captions/journal.jsonl"))
        .map(|t| t.lines().filter(|l| l.ends_with('}')).count())
        .unwrap_or(0)
}

#[test]
fn kill_mid_run_then_rerun_requests_only_unfinished_samples() {
    let stub = oassl_stub::spawn(
        &StubConfig {
            latency_ms: 150,
            ..Default::default()
        },
        None,
    )
    .unwrap();
    let ws = synth_workspace(&format!("{}\nmax_in_flight = 2\n", endpoint_lines(&stub)));
    let mut child = Command::new(env!("CARGO_BIN_EXE_oassl"))
        .arg("--config")
        .arg(ws.config())
        .arg("captions")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while journal_lines(&ws) < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let finished = journal_lines(&ws);
    assert!(
        (3..10).contains(&finished),
        "{finished} finished before the kill"
    );
    // Requests the killed run had already sent still reach the stand-in, which counts them after its 150 ms
    // latency: wait until its count is still, so they are not charged to the rerun.
    let mut before = stub.stats().chat_requests;
    loop {
        std::thread::sleep(Duration::from_millis(400));
        let now = stub.stats().chat_requests;
        if now == before {
            break;
        }
        before = now;
    }
    let out = ws.oassl(&["captions"]);
    assert_ok(&out);
    assert_all_ok(&ws, 10);
    let requested = stub.stats().chat_requests - before;
    assert_eq!(
        requested as usize,
        10 - finished,
        "finished samples were requested again"
    );
}

#[test]
fn prompt_change_re_requests_captions_only_and_revert_is_free() {
    let stub = oassl_stub::spawn(&StubConfig::default(), None).unwrap();
    let ws = synth_workspace(&endpoint_lines(&stub));
    // Point the config at an editable copy of the prompt.
    let prompt = ws.path().join("prompt.txt");
    let original = std::fs::read_to_string(repo_prompt()).unwrap();
    std::fs::write(&prompt, &original).unwrap();
    let cfg = std::fs::read_to_string(ws.config()).unwrap();
    let cfg = cfg.replace(
        &format!("{:?}", repo_prompt().to_string_lossy()),
        "\"prompt.txt\"",
    );
    std::fs::write(ws.config(), cfg).unwrap();
    assert_ok(&ws.oassl(&["captions"]));
    assert_eq!(stub.stats().chat_requests, 10);
    std::fs::write(
        &prompt,
        original.replace("Analyze the provided image", "Look at the image"),
    )
    .unwrap();
    let out = ws.oassl(&["captions"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("extraction 0 new, 10 cached"),
        "{}",
        stdout(&out)
    );
    assert_eq!(stub.stats().chat_requests, 20);
    std::fs::write(&prompt, &original).unwrap();
    let out = ws.oassl(&["captions"]);
    assert_ok(&out);
    // The merge extracts nothing the shards extracted and asks for nothing.
    for part in [
        "extraction 0 new, 10 cached",
        "captions 10 cached, 0 requested",
    ] {
        assert!(stdout(&out).contains(part), "{part}: {}", stdout(&out));
    }
    assert_eq!(stub.stats().chat_requests, 20);
    assert_all_ok(&ws, 10);
}

#[test]
fn deleted_frame_or_replaced_video_redoes_only_that_clip() {
    let stub = oassl_stub::spawn(&StubConfig::default(), None).unwrap();
    let ws = synth_workspace(&endpoint_lines(&stub));
    assert_ok(&ws.oassl(&["captions"]));
    assert_eq!(stub.stats().chat_requests, 10);
    let manifest = Manifest::read(&ws.data().join("dataset/manifest.csv")).unwrap();
    let first = &manifest.rows[0];
    let frame = ws.data().join(format!("extract/frames/{}.jpg", first.id));
    let before = std::fs::read(&frame).unwrap();
    std::fs::remove_file(&frame).unwrap();
    // Extraction is deterministic, so the frame comes back identical: same request key, no new request.
    let out = ws.oassl(&["captions"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(first.id.as_str()) && text.contains("extraction 1 new, 9 cached"),
        "{text}"
    );
    assert!(text.contains("captions 10 cached, 0 requested"), "{text}");
    assert_eq!(std::fs::read(&frame).unwrap(), before);
    assert_eq!(stub.stats().chat_requests, 10);
    let again = ws.oassl(&["captions"]);
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));

    // A video replaced by another clip's (other labels, so the request is new): that clip alone is redone.
    let victim = &manifest.rows[1];
    let donor = manifest
        .rows
        .iter()
        .skip(2)
        .find(|r| r.labels != victim.labels)
        .expect("a clip with other labels");
    let video_of = |r: &oassl_pipeline::manifest::ManifestRow| manifest.video_paths(r)[0].clone();
    std::fs::copy(video_of(donor), video_of(victim)).unwrap();
    let out = ws.oassl(&["captions"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("extraction 1 new, 9 cached"), "{text}");
    assert!(text.contains("captions 9 cached, 1 requested"), "{text}");
    assert_eq!(stub.stats().chat_requests, 11);
    let donor_frame = std::fs::read(ws.data().join(format!("extract/frames/{}.jpg", donor.id)));
    let victim_frame = std::fs::read(ws.data().join(format!("extract/frames/{}.jpg", victim.id)));
    assert_eq!(victim_frame.unwrap(), donor_frame.unwrap());
    assert_all_ok(&ws, 10);
}

#[test]
fn answers_with_keys_in_another_case_and_an_empty_background_list() {
    let ws = synth_workspace("");
    let dataset = ws.data().join("dataset");
    let mut manifest = Manifest::read(&dataset.join("manifest.csv")).unwrap();
    manifest.rows.retain(|r| r.labels.len() == 1);
    manifest.rows.truncate(2);
    manifest.write(&dataset.join("manifest.csv")).unwrap();
    let lines = [
        serde_json::json!({"content": "{\"Foreground\": \"an image of a drum\", \"BACKGROUND\": []}"}),
        serde_json::json!({"content": "{\"FOREGROUND\": [\"an image of a horn\"], \"Background\": \"an image of a wall\"}"}),
    ];
    let stub = replay_stand_in(&ws, &lines);
    let rows = captions_table(&ws);
    assert!(rows.iter().all(|r| r.status == "ok"), "{rows:?}");
    assert_eq!(rows[0].foreground, vec!["an image of a drum".to_string()]);
    assert_eq!(rows[0].background, oassl_captions::answer::NO_BACKGROUND);
    assert_eq!(rows[1].foreground, vec!["an image of a horn".to_string()]);
    assert_eq!(rows[1].background, "an image of a wall");
    assert_eq!(stub.stats().chat_requests, 2);
}

#[test]
fn shards_then_merge_give_one_row_per_sample() {
    let stub = oassl_stub::spawn(&StubConfig::default(), None).unwrap();
    let ws = synth_workspace(&endpoint_lines(&stub));
    let out = ws.oassl(&["captions", "--shard", "0/2"]);
    assert_ok(&out);
    let out = ws.oassl(&["captions", "--shard", "1/2"]);
    assert_ok(&out);
    assert_eq!(stub.stats().chat_requests, 10);
    let out = ws.oassl(&["captions", "--merge"]);
    assert_ok(&out);
    assert_eq!(stub.stats().chat_requests, 10);
    assert_all_ok(&ws, 10);
}

/// Every column of the captions table, with `latency_ms` zeroed: it is the wall time of each request, which no
/// two runs share. Everything else (ids, order, captions, status, attempts, model, hashes, request keys, raw
/// answers) is the same for the same frames, prompt and model wherever the request was sent from.
fn table_without_timings(ws: &Workspace) -> Vec<CaptionRecord> {
    read_table(&ws.data().join("captions/captions.parquet"))
        .unwrap()
        .into_iter()
        .map(|r| CaptionRecord { latency_ms: 0, ..r })
        .collect()
}

/// A job array of eight shards and the merge write the table an unsharded run writes in an identical workspace,
/// row for row in manifest order. A lost shard journal shows in the merged table, and rerunning that shard alone
/// (the README's recovery) makes it identical again.
#[test]
fn eight_shards_then_merge_equal_an_unsharded_run() {
    // No endpoints: every run starts its own stand-in, as each array task starts its own server.
    let whole = synth_workspace("");
    assert_ok(&whole.oassl(&["captions"]));
    let expected = table_without_timings(&whole);
    assert_eq!(expected.len(), 10);
    assert!(expected.iter().all(|r| r.status == "ok"), "{expected:?}");

    let sharded = synth_workspace("");
    let captions = sharded.data().join("captions");
    let mut shard_rows = Vec::new();
    for i in 0..8 {
        assert_ok(&sharded.oassl(&["captions", "--shard", &format!("{i}/8")]));
        let part = read_table(&captions.join(format!("captions.shard-{i}-of-8.parquet"))).unwrap();
        assert!(part.iter().all(|r| r.status == "ok"), "shard {i}: {part:?}");
        shard_rows.push(part);
    }
    // The shards split the manifest: every sample in exactly one of them, and no table for the whole yet.
    let mut ids: Vec<_> = shard_rows
        .iter()
        .flatten()
        .map(|r| r.sample_id.clone())
        .collect();
    ids.sort();
    let mut wanted: Vec<_> = expected.iter().map(|r| r.sample_id.clone()).collect();
    wanted.sort();
    assert_eq!(ids, wanted);
    assert!(!captions.join("captions.parquet").exists());
    let out = sharded.oassl(&["captions", "--merge"]);
    assert_ok(&out);
    // The merge extracts nothing the shards extracted and asks for nothing.
    for part in [
        "extraction 0 new, 10 cached",
        "captions 10 cached, 0 requested",
    ] {
        assert!(stdout(&out).contains(part), "{part}: {}", stdout(&out));
    }
    assert_eq!(table_without_timings(&sharded), expected);

    // One shard's journal lost: the merge marks its rows and the tables differ.
    let (lost, rows) = shard_rows
        .iter()
        .enumerate()
        .find(|(_, rows)| !rows.is_empty())
        .unwrap();
    std::fs::remove_file(captions.join(format!("journal.shard-{lost}-of-8.jsonl"))).unwrap();
    let out = sharded.oassl(&["captions", "--merge"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let merged = table_without_timings(&sharded);
    assert_ne!(merged, expected);
    let not_captioned: Vec<_> = merged.iter().filter(|r| r.status != "ok").collect();
    assert_eq!(not_captioned.len(), rows.len(), "{merged:?}");
    assert!(not_captioned
        .iter()
        .all(|r| rows.iter().any(|s| s.sample_id == r.sample_id)));
    // Rerunning that shard asks for its captions alone; the next merge is identical to the unsharded table.
    let out = sharded.oassl(&["captions", "--shard", &format!("{lost}/8")]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains(&format!("0 cached, {} requested", rows.len())),
        "{}",
        stdout(&out)
    );
    assert_ok(&sharded.oassl(&["captions", "--merge"]));
    assert_eq!(table_without_timings(&sharded), expected);
}

#[test]
fn bad_inputs_fail_their_rows_and_the_exit_code() {
    let ws = synth_workspace("");
    let dataset = ws.data().join("dataset");
    let mut manifest = Manifest::read(&dataset.join("manifest.csv")).unwrap();
    manifest.rows.truncate(2);
    std::fs::write(dataset.join("corrupt.mp4"), b"not a video").unwrap();
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=8:duration=4",
        ])
        .arg(dataset.join("silent.mp4"))
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=8:duration=0.4",
        ])
        .args(["-f", "lavfi", "-i", "sine=duration=0.4", "-shortest"])
        .arg(dataset.join("short.mp4"))
        .status()
        .unwrap();
    assert!(status.success());
    let template = manifest.rows[0].clone();
    for (id, video) in [
        ("missing", "nope.mp4"),
        ("corrupt", "corrupt.mp4"),
        ("silent", "silent.mp4"),
        ("short", "short.mp4"),
    ] {
        let mut row = template.clone();
        row.id = oassl_pipeline::SampleId::parse(id).unwrap();
        row.videos = vec![video.into()];
        manifest.rows.push(row);
    }
    manifest.write(&dataset.join("manifest.csv")).unwrap();
    let out = ws.oassl(&["captions"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = captions_table(&ws);
    assert_eq!(rows.len(), 6);
    let keys =
        oassl_captions::table::read_keys(&ws.data().join("captions/captions.parquet")).unwrap();
    let error_of = |id: &str| keys.iter().find(|k| k.0 == id).unwrap().2.clone();
    assert!(rows[..2].iter().all(|r| r.status == "ok"));
    assert!(rows[2..].iter().all(|r| r.status == "failed"));
    for (id, reason) in [
        ("missing", "not found"),
        ("corrupt", "cannot open"),
        ("silent", "no audio stream"),
        ("short", "too short"),
    ] {
        let error = error_of(id);
        assert!(error.contains(reason), "{id}: {error}");
    }

    // A hostile id refuses the manifest: nothing is written outside the data folder.
    let text = std::fs::read_to_string(dataset.join("manifest.csv")).unwrap();
    std::fs::write(
        dataset.join("manifest.csv"),
        text.replace("missing,", "../../escape,"),
    )
    .unwrap();
    let out = ws.oassl(&["captions"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("../../escape"));
    assert!(!ws.path().join("escape.jpg").exists() && !ws.path().join("extract").exists());
}

#[test]
fn replayed_fenced_truncated_and_list_vs_string_answers() {
    let ws = synth_workspace("");
    let dataset = ws.data().join("dataset");
    let mut manifest = Manifest::read(&dataset.join("manifest.csv")).unwrap();
    let single = manifest
        .rows
        .iter()
        .find(|r| r.labels.len() == 1)
        .unwrap()
        .clone();
    let duet = manifest
        .rows
        .iter()
        .find(|r| r.labels.len() == 2)
        .unwrap()
        .clone();
    manifest.rows = vec![single, duet];
    manifest.write(&dataset.join("manifest.csv")).unwrap();
    let lines = [
        // Sample 1 (one label): truncated, then fenced with a one-item list.
        serde_json::json!({"content": "{\"foreground\": \"an image of a dr"}),
        serde_json::json!({"content": "```json\n{\"foreground\": [\"an image of a drum\"], \"background\": \"an image of a wall\"}\n```"}),
        // Sample 2 (two labels): a string where a list of two is needed, then prose around a list.
        serde_json::json!({"content": "{\"foreground\": \"an image of a horn\", \"background\": \"x\"}"}),
        serde_json::json!({"content": "Here you go: {\"foreground\": [\"an image of a\", \"an image of b\"], \"background\": \"an image of c\"} Thanks"}),
    ];
    let stub = replay_stand_in(&ws, &lines);
    let rows = captions_table(&ws);
    assert_eq!(rows[0].foreground, vec!["an image of a drum".to_string()]);
    assert_eq!(rows[0].background, "an image of a wall");
    assert_eq!(
        rows[1].foreground,
        vec!["an image of a".to_string(), "an image of b".to_string()]
    );
    assert_eq!(stub.stats().chat_requests, 4);
}

/// An endpoint nobody answers on: the run stops with exit code 2, naming the endpoint and its failed health
/// check, and keeps what it extracted; a later run against a working endpoint captions everything.
#[test]
fn an_unreachable_endpoint_is_named_and_nothing_is_lost() {
    // Bind and drop a listener: its port is free and refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ws = synth_workspace(&format!(
        "endpoints = [\"http://127.0.0.1:{port}/v1\"]\nmodel = \"oassl-stub\""
    ));
    let out = ws.oassl(&["captions"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("no usable captioning endpoint"),
        "{err}"
    );
    // Extraction ran before the endpoint check; its files are kept for the rerun.
    let frames = std::fs::read_dir(ws.data().join("extract/frames"))
        .unwrap()
        .count();
    assert_eq!(frames, 10);
    let stub = oassl_stub::spawn(&StubConfig::default(), None).unwrap();
    let config = std::fs::read_to_string(ws.config()).unwrap();
    let config = config.replace(
        &format!("endpoints = [\"http://127.0.0.1:{port}/v1\"]\nmodel = \"oassl-stub\""),
        &endpoint_lines(&stub),
    );
    std::fs::write(ws.config(), config).unwrap();
    assert_ok(&ws.oassl(&["captions"]));
    assert_all_ok(&ws, 10);
}

#[test]
fn a_pair_row_is_one_sample_one_request_and_one_caption_row() {
    let stub = oassl_stub::spawn(&StubConfig::default(), None).unwrap();
    let ws = synth_workspace(&endpoint_lines(&stub));
    let path = ws.data().join("dataset/manifest.csv");
    let mut manifest = Manifest::read(&path).unwrap();
    let singles: Vec<_> = manifest
        .rows
        .iter()
        .filter(|r| r.labels.len() == 1)
        .cloned()
        .collect();
    let (a, b) = (&singles[0], &singles[1]);
    let mut pair = a.clone();
    pair.id = oassl_pipeline::SampleId::parse(&format!("{}+{}", a.id, b.id)).unwrap();
    pair.videos = vec![a.videos[0].clone(), b.videos[0].clone()];
    pair.labels = vec![a.labels[0].clone(), b.labels[0].clone()];
    manifest.rows = vec![a.clone(), pair.clone()];
    manifest.write(&path).unwrap();
    let out = ws.oassl(&["captions"]);
    assert_ok(&out);
    assert_eq!(stub.stats().chat_requests, 2);
    let rows = captions_table(&ws);
    let ids: Vec<_> = rows.iter().map(|r| r.sample_id.as_str()).collect();
    assert_eq!(ids, [a.id.as_str(), pair.id.as_str()]);
    let row = &rows[1];
    assert_eq!(row.status, "ok", "{row:?}");
    assert_eq!(row.labels, pair.labels);
    assert_eq!(row.foreground.len(), 2, "{row:?}");
    let frame = |id: &oassl_pipeline::SampleId| {
        image::open(ws.data().join(format!("extract/frames/{id}.jpg"))).unwrap()
    };
    let mosaic = frame(&pair.id);
    assert_eq!((mosaic.width(), mosaic.height()), (224, 448));
    // The caption was asked with the mosaic itself: the recorded image hash is the pair frame's.
    let bytes = std::fs::read(ws.data().join(format!("extract/frames/{}.jpg", pair.id))).unwrap();
    let records = read_table(&ws.data().join("captions/captions.parquet")).unwrap();
    assert_eq!(
        records[1].image_hash,
        oassl_pipeline::fingerprint::hash_bytes(&bytes)
    );
}
