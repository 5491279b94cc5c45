//! `oassl embed` on a captions table: distinct texts embedded once, incremental after a caption change,
//! up to date when nothing changed, per-sample join for stage three.

use oassl_pipeline::tables::captions::{write_captions_minimal, CaptionRow};
use oassl_pipeline::tables::{read_parquet, read_sample_texts, str_column};
use oassl_pipeline::SampleId;

use crate::common::{assert_ok, Workspace};

pub(crate) fn minilm() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/models/all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "run `make setup` first: {} is missing",
        dir.display()
    );
    dir.display().to_string()
}

fn row(id: &str, labels: &[&str], fg: &[&str], bg: &str, status: &str) -> CaptionRow {
    CaptionRow {
        sample_id: SampleId::parse(id).unwrap(),
        labels: labels.iter().map(|s| s.to_string()).collect(),
        foreground: fg.iter().map(|s| s.to_string()).collect(),
        background: bg.into(),
        status: status.into(),
    }
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn embeds_distinct_texts_once_and_incrementally() {
    let ws = Workspace::with_config(&format!(
        "[embed]\nmodel_dir = \"{}\"\nbatch_size = 4\ndevice = \"cpu\"\n",
        minilm()
    ));
    let captions = ws.data().join("captions/captions.parquet");
    let mut rows = vec![
        row(
            "s1",
            &["red drum"],
            &["an image of a red drum being played"],
            "an image of a silent blue piano",
            "ok",
        ),
        row(
            "s2",
            &["red drum", "blue piano"],
            &[
                "an image of a red drum being played",
                "an image of a blue piano being played",
            ],
            "an image of a silent blue piano",
            "ok",
        ),
        row("s3", &["cyan flute"], &[], "", "failed"),
    ];
    write_captions_minimal(&captions, &rows).unwrap();
    let out = ws.oassl(&["embed"]);
    assert_ok(&out);
    // 3 distinct texts across 2 ok samples.
    assert!(
        stdout(&out).contains("2 samples, 3 distinct texts: 0 cached, 3 embedded"),
        "{}",
        stdout(&out)
    );
    let texts = read_sample_texts(&ws.data().join("embed/sample_text.parquet")).unwrap();
    assert_eq!(texts.len(), 2);
    assert_eq!(texts[1].foreground.len(), 2);
    assert_eq!(texts[1].background.len(), 384);
    // The same caption gives the same vector wherever it appears, and vectors are unit length.
    assert_eq!(texts[0].foreground[0], texts[1].foreground[0]);
    assert_eq!(texts[0].background, texts[1].background);
    let norm: f32 = texts[0]
        .background
        .iter()
        .map(|v| v * v)
        .sum::<f32>()
        .sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    // Every embedding row names the encoder that made it.
    let table = ws.data().join("embed/embeddings.parquet");
    let df = read_parquet(&table).unwrap();
    assert_eq!(df.height(), 3);
    let encoders = str_column(&df, "encoder", &table).unwrap();
    let first = encoders.get(0).unwrap().to_string();
    assert!(first.starts_with("bert"), "{first}");
    assert!((0..3).all(|i| encoders.get(i) == Some(first.as_str())));

    let again = ws.oassl(&["embed"]);
    assert_ok(&again);
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));

    // A changed caption: only the new text is embedded.
    rows[0].background = "an image of a plain background with no other objects".into();
    write_captions_minimal(&captions, &rows).unwrap();
    let out = ws.oassl(&["embed"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("4 distinct texts: 3 cached, 1 embedded"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn missing_inputs_name_what_to_run() {
    let ws = Workspace::with_config(&format!("[embed]\nmodel_dir = \"{}\"\n", minilm()));
    let out = ws.oassl(&["embed"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("make captions"));

    let ws = Workspace::with_config("[embed]\nmodel_dir = \"nowhere\"\n");
    write_captions_minimal(&ws.data().join("captions/captions.parquet"), &[]).unwrap();
    let out = ws.oassl(&["embed"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));

    let ws = Workspace::with_config("[embed]\npooling = \"eos\"\n");
    let out = ws.oassl(&["embed"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("[embed] pooling"));
}
