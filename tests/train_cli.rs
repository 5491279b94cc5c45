//! `oassl train` / `oassl eval` through the binary: config refusal, missing inputs, and a tiny end-to-end run
//! (synth → label captions → text vectors → train → up to date → eval).

use std::collections::BTreeMap;

use oassl_pipeline::manifest::Manifest;
use oassl_pipeline::tables::{write_sample_texts, SampleText};

use crate::common::{assert_ok, Workspace};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn unknown_train_and_eval_keys_are_refused() {
    let ws = Workspace::with_config("[train.loss]\nlambda_3 = 0.1\n");
    let out = ws.oassl(&["train"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("lambda_3"), "{}", stderr(&out));
    let ws = Workspace::with_config("[eval]\nprotocol = \"nope\"\n");
    let out = ws.oassl(&["eval"]);
    assert!(stderr(&out).contains("[eval] protocol"), "{}", stderr(&out));
}

#[test]
fn missing_inputs_name_what_to_run() {
    let ws = Workspace::with_config("");
    let out = ws.oassl(&["train"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("make data"), "{}", stderr(&out));
    let out = ws.oassl(&["eval"]);
    assert!(stderr(&out).contains("make train"), "{}", stderr(&out));
}

#[test]
fn tiny_run_trains_reports_up_to_date_and_evaluates() {
    let ws = Workspace::with_config(
        "[synth]\nwidth = 64\nheight = 64\ntrain_single = 3\ntrain_duet = 3\ntest_single = 2\ntest_duet = 2\n\
         [train]\ndevice = \"cpu\"\nimage_size = 64\naudio_seconds = 0.5\nbatch_size = 3\nepochs = 1\n\
         [eval]\ndevice = \"cpu\"\ngallery_tile = 64\n",
    );
    assert_ok(&ws.oassl(&["synth", "--layout", "extracted"]));
    assert_ok(&ws.oassl(&["label-captions"]));
    // Stand-in text vectors (stage two is tested on its own): one fixed vector per caption.
    let manifest = Manifest::read(&ws.data().join("dataset/manifest.csv")).unwrap();
    let mut table: BTreeMap<String, Vec<f32>> = BTreeMap::new();
    let mut vector = |s: &str| {
        let n = table.len() as f32;
        table
            .entry(s.to_string())
            .or_insert_with(|| {
                (0..8)
                    .map(|i| ((i as f32 + 1.0) * (n + 1.0)).sin())
                    .collect()
            })
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
    write_sample_texts(&ws.data().join("embed/sample_text.parquet"), &rows).unwrap();

    let out = ws.oassl(&["train"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("steps 0..2 of 2"), "{}", stdout(&out));
    let again = ws.oassl(&["train"]);
    assert_ok(&again);
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));

    let out = ws.oassl(&["eval"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("centre prior") && text.contains("random map"),
        "{text}"
    );
    for f in [
        "metrics.json",
        "results.md",
        "gallery.png",
        "maps.safetensors",
    ] {
        assert!(ws.data().join("eval").join(f).is_file(), "{f}");
    }
}
