//! One caption request: the generation parameters, the image payload, the chat completions body and the
//! request key that names the answer in the journal.
//!
//! The key hashes everything that can change the answer: prompt template hash, image hash, labels, model and
//! generation parameters. Changing any of them asks again; reverting finds the old answer.

use std::io::Cursor;

use anyhow::{Context, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use oassl_pipeline::config::CaptionsConfig;
use oassl_pipeline::fingerprint::hash_json;

/// What the model is asked with, apart from the prompt and the image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerationParams {
    pub model: String,
    pub temperature: f64,
    pub max_tokens: u32,
    /// `json_schema`, `json_object` or `none`.
    pub response_format: String,
    pub stop_token_ids: Vec<u32>,
    /// Longest image side sent.
    pub max_side: u32,
    pub jpeg_quality: u8,
}

impl GenerationParams {
    /// The parameters a config gives for a resolved model id.
    pub fn from_config(cfg: &CaptionsConfig, model: &str) -> Self {
        Self {
            model: model.to_string(),
            temperature: cfg.temperature,
            max_tokens: cfg.max_tokens,
            response_format: cfg.response_format.clone(),
            stop_token_ids: cfg.effective_stop_token_ids(),
            max_side: cfg.effective_max_side(),
            jpeg_quality: cfg.jpeg_quality,
        }
    }
}

/// The key of one caption in the journal.
pub fn request_key(
    prompt_hash: &str,
    image_hash: &str,
    labels: &[String],
    params: &GenerationParams,
) -> Result<String> {
    hash_json(&(1u32, prompt_hash, image_hash, labels, params))
}

/// The JPEG to send: the frame as is when it already fits `max_side`, else resized and re-encoded.
pub fn image_payload(frame_jpeg: &[u8], max_side: u32, quality: u8) -> Result<Vec<u8>> {
    let img = image::load_from_memory(frame_jpeg).context("decoding the frame JPEG")?;
    if img.width().max(img.height()) <= max_side {
        return Ok(frame_jpeg.to_vec());
    }
    let resized = img
        .resize(max_side, max_side, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let mut out = Cursor::new(Vec::new());
    resized
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut out, quality,
        ))
        .context("encoding the resized frame")?;
    Ok(out.into_inner())
}

/// A `data:image/jpeg;base64,` URL.
pub fn data_url(jpeg: &[u8]) -> String {
    format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(jpeg)
    )
}

/// JSON schema of the answer for K labels: `foreground` a string (K = 1) or a list of K strings.
pub fn answer_schema(k: usize) -> Value {
    let foreground = if k == 1 {
        json!({"type": "string"})
    } else {
        json!({"type": "array", "items": {"type": "string"}, "minItems": k, "maxItems": k})
    };
    json!({
        "type": "object",
        "properties": {"foreground": foreground, "background": {"type": "string"}},
        "required": ["foreground", "background"],
        "additionalProperties": false
    })
}

/// The chat completions body: one user message with the prompt text and the image.
pub fn chat_body(params: &GenerationParams, prompt: &str, image_url: &str, k: usize) -> Value {
    let mut body = json!({
        "model": params.model,
        "messages": [{
            "role": "user",
            "content": [
                {"type": "text", "text": prompt},
                {"type": "image_url", "image_url": {"url": image_url}}
            ]
        }],
        "temperature": params.temperature,
        "max_tokens": params.max_tokens,
    });
    match params.response_format.as_str() {
        "json_schema" => {
            body["response_format"] = json!({
                "type": "json_schema",
                "json_schema": {"name": "captions", "schema": answer_schema(k)}
            })
        }
        "json_object" => body["response_format"] = json!({"type": "json_object"}),
        _ => {}
    }
    if !params.stop_token_ids.is_empty() {
        body["stop_token_ids"] = json!(params.stop_token_ids);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> GenerationParams {
        GenerationParams::from_config(&CaptionsConfig::default(), "m")
    }

    #[test]
    fn key_changes_with_each_input() {
        let p = params();
        let labels = vec!["a".to_string()];
        let base = request_key("p", "i", &labels, &p).unwrap();
        assert_eq!(base, request_key("p", "i", &labels, &p).unwrap());
        assert_ne!(base, request_key("q", "i", &labels, &p).unwrap());
        assert_ne!(base, request_key("p", "j", &labels, &p).unwrap());
        assert_ne!(base, request_key("p", "i", &["b".to_string()], &p).unwrap());
        let hot = GenerationParams {
            temperature: 0.5,
            ..p.clone()
        };
        assert_ne!(base, request_key("p", "i", &labels, &hot).unwrap());
    }

    #[test]
    fn body_carries_format_and_stop_ids() {
        let mut p = params();
        p.stop_token_ids = vec![92542];
        let body = chat_body(&p, "hi", "data:x", 2);
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(
            body["response_format"]["json_schema"]["schema"]["properties"]["foreground"]
                ["minItems"],
            2
        );
        assert_eq!(body["stop_token_ids"][0], 92542);
        assert_eq!(body["temperature"], 0.0);
        p.response_format = "none".into();
        p.stop_token_ids.clear();
        let body = chat_body(&p, "hi", "data:x", 1);
        assert!(body.get("response_format").is_none() && body.get("stop_token_ids").is_none());
    }

    #[test]
    fn large_images_are_resized_small_ones_kept() {
        let img = image::RgbImage::from_pixel(640, 320, image::Rgb([10, 200, 30]));
        let mut jpeg = Cursor::new(Vec::new());
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut jpeg, 90,
        ))
        .unwrap();
        let jpeg = jpeg.into_inner();
        let out = image_payload(&jpeg, 320, 90).unwrap();
        let back = image::load_from_memory(&out).unwrap();
        assert_eq!((back.width(), back.height()), (320, 160));
        assert_eq!(image_payload(&jpeg, 640, 90).unwrap(), jpeg);
        assert!(data_url(&out).starts_with("data:image/jpeg;base64,"));
    }
}
