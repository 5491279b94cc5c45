//! The MLLM stand-in over real HTTP: it looks at the image and names the objects actually in it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use base64::Engine;
use rand::SeedableRng;
use serde_json::{json, Value};

use oassl_pipeline::config::{StubConfig, SynthConfig};
use oassl_synth::render::render_frame;
use oassl_synth::scene::{sample_scene, Scene};

/// The stand-in as a separate process; killed on drop.
struct StubProcess {
    child: Child,
    base: String,
}

impl StubProcess {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_oassl"))
            .args([
                "--config",
                "/nonexistent/pipeline.toml",
                "mllm-stub",
                "--port",
                "0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start stub");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read address line");
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Self { child, base: url }
    }
}

impl Drop for StubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scene_with(k: usize, want_same_class_silent: bool) -> Scene {
    let cfg = SynthConfig::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    loop {
        let s = sample_scene(
            &mut rng,
            &cfg,
            &oassl_synth::scene::background_pool(&cfg),
            "t".into(),
            "test",
            k,
        );
        let labels = s.labels();
        let twin = s
            .objects
            .iter()
            .any(|o| !o.sounding && labels.contains(&o.class_name));
        if twin == want_same_class_silent && s.objects.len() > k {
            return s;
        }
    }
}

fn request_for(scene: &Scene, labels: &str) -> Value {
    let img = render_frame(scene, 2.0, 4.0);
    let mut jpeg = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut jpeg, 90,
    ))
    .unwrap();
    let url = format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&jpeg)
    );
    json!({
        "model": "oassl-stub",
        "temperature": 0,
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": format!("Analyze the image.\nInput:\n- image: the attached image\n- class label: {labels}\nRETURN ONLY the JSON FORMAT.")}
        ]}]
    })
}

fn content_of(body: &Value) -> Value {
    let text = body["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    serde_json::from_str(text).expect("content is JSON")
}

#[test]
fn answers_name_the_objects_in_the_image() {
    let stub = StubProcess::start(&[]);
    let client = reqwest::blocking::Client::new();
    assert_eq!(
        client
            .get(format!("{}/health", stub.base))
            .send()
            .unwrap()
            .status(),
        200
    );
    let models: Value = client
        .get(format!("{}/v1/models", stub.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(models["data"][0]["id"], "oassl-stub");

    // A duet scene with a silent twin of a sounding class: the silent twin must land in the background.
    let scene = scene_with(2, true);
    let labels = scene.labels();
    let body: Value = client
        .post(format!("{}/v1/chat/completions", stub.base))
        .json(&request_for(&scene, &labels.join(", ")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let answer = content_of(&body);
    let fg = answer["foreground"]
        .as_array()
        .expect("two labels -> a list");
    assert_eq!(fg.len(), 2);
    for (caption, label) in fg.iter().zip(&labels) {
        assert_eq!(
            caption.as_str().unwrap(),
            format!("an image of a {label} being played")
        );
    }
    let bg = answer["background"].as_str().unwrap();
    for obj in scene.objects.iter().filter(|o| !o.sounding) {
        assert!(
            bg.contains(&format!("a silent {}", obj.class_name)),
            "{bg} lacks {}",
            obj.class_name
        );
    }
    assert!(!bg.contains("played"), "{bg}");
}

#[test]
fn single_label_gets_a_string_and_errors_are_injected() {
    let stub = StubProcess::start(&["--rate-500", "1.0"]);
    let client = reqwest::blocking::Client::new();
    let scene = scene_with(1, false);
    let resp = client
        .post(format!("{}/v1/chat/completions", stub.base))
        .json(&request_for(&scene, &scene.labels()[0]))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 500);
    drop(stub);

    let stub = StubProcess::start(&["--fenced-rate", "1.0"]);
    let body: Value = client
        .post(format!("{}/v1/chat/completions", stub.base))
        .json(&request_for(&scene, &scene.labels()[0]))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        text.starts_with("```json\n") && text.ends_with("\n```"),
        "{text}"
    );
    let inner: Value = serde_json::from_str(&text[8..text.len() - 4]).unwrap();
    assert_eq!(
        inner["foreground"],
        format!("an image of a {} being played", scene.labels()[0])
    );
    let stats: Value = client
        .get(format!("{}/stats", stub.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["chat_requests"], 1);
}

#[test]
fn replay_serves_canned_bodies_in_order_then_500() {
    let dir = tempfile::tempdir().unwrap();
    let replay = dir.path().join("r.jsonl");
    std::fs::write(
        &replay,
        "{\"content\": \"first\"}\n{\"status\": 503, \"body\": \"busy\"}\n",
    )
    .unwrap();
    let handle = oassl_stub::spawn(&StubConfig::default(), Some(&replay)).unwrap();
    let client = reqwest::blocking::Client::new();
    let url = format!("{}/chat/completions", handle.base_url());
    let first: Value = client
        .post(&url)
        .json(&json!({}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(first["choices"][0]["message"]["content"], "first");
    let second = client.post(&url).json(&json!({})).send().unwrap();
    assert_eq!(second.status(), 503);
    assert_eq!(second.text().unwrap(), "busy");
    assert_eq!(
        client.post(&url).json(&json!({})).send().unwrap().status(),
        500
    );
    assert_eq!(handle.stats().chat_requests, 3);
    handle.stop();
}

#[test]
fn dropped_connections_are_dropped() {
    let cfg = StubConfig {
        drop_rate: 1.0,
        ..StubConfig::default()
    };
    let handle = oassl_stub::spawn(&cfg, None).unwrap();
    let client = reqwest::blocking::Client::new();
    let err = client
        .post(format!("{}/chat/completions", handle.base_url()))
        .json(&json!({}))
        .send()
        .unwrap_err();
    assert!(
        err.is_request() || err.is_connect() || err.is_body(),
        "{err}"
    );
    assert_eq!(handle.stats().dropped, 1);
}
