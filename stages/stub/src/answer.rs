//! Turning a chat request into the captions JSON the prompt asks for.
//!
//! The labels come from the prompt's last `class label:` line (the Table 5 prompt's input section); the image from
//! the first `image_url` data URL. Foreground: one caption per label, about the played object of that class.
//! Background: the silent objects.

use anyhow::{bail, Context, Result};
use base64::Engine;
use image::RgbImage;
use serde_json::{json, Value};

use oassl_synth::catalogue::CATALOGUE;

use crate::detect::{detect, Detection};

/// What the stand-in needs from a chat request.
#[derive(Debug, Clone)]
pub struct CaptionRequest {
    pub labels: Vec<String>,
    pub image: RgbImage,
    pub model: String,
}

/// Extracts the labels and decodes the image of a chat completions body.
pub fn parse_request(body: &Value) -> Result<CaptionRequest> {
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .context("body has no `messages` list")?;
    let mut text = String::new();
    let mut image_url = None;
    for message in messages {
        match message.get("content") {
            Some(Value::String(s)) => text.push_str(s),
            Some(Value::Array(parts)) => {
                for part in parts {
                    match part.get("type").and_then(Value::as_str) {
                        Some("text") => {
                            text.push_str(part.get("text").and_then(Value::as_str).unwrap_or(""));
                            text.push('\n');
                        }
                        Some("image_url") if image_url.is_none() => {
                            image_url = part
                                .pointer("/image_url/url")
                                .and_then(Value::as_str)
                                .map(str::to_string);
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let url = image_url.context("no image_url part in the messages")?;
    let b64 = url
        .split_once(";base64,")
        .map(|(_, d)| d)
        .context("image_url is not a base64 data URL")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .context("image_url data is not valid base64")?;
    let image = image::load_from_memory(&bytes)
        .context("image data is not a decodable image")?
        .to_rgb8();
    let labels = text
        .rfind("class label:")
        .map(|at| {
            let rest = &text[at + "class label:".len()..];
            let line = rest.lines().next().unwrap_or("");
            line.split(',')
                .map(|l| l.trim().trim_matches('"').to_string())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Ok(CaptionRequest {
        labels,
        image,
        model,
    })
}

fn name_of(class: usize) -> &'static str {
    CATALOGUE[class].name
}

/// The captions for a request: (foreground per label, background).
pub fn captions(req: &CaptionRequest) -> (Vec<String>, String) {
    let detections = detect(&req.image);
    let mut used = vec![false; detections.len()];
    let mut foreground = Vec::new();
    let labels: Vec<String> = if req.labels.is_empty() {
        // No label given: describe what is being played.
        detections
            .iter()
            .filter(|d| d.played)
            .map(|d| name_of(d.class).to_string())
            .collect()
    } else {
        req.labels.clone()
    };
    for label in &labels {
        let pick = |want_played: bool, used: &[bool]| {
            detections.iter().enumerate().position(|(i, d)| {
                !used[i] && d.played == want_played && name_of(d.class) == label.as_str()
            })
        };
        match pick(true, &used) {
            Some(i) => {
                used[i] = true;
                foreground.push(format!("an image of a {label} being played"));
            }
            None => foreground.push(format!("an image of a {label}")),
        }
    }
    let rest: Vec<&Detection> = detections
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(d, _)| d)
        .collect();
    let background = if rest.is_empty() {
        "an image of a plain background with no other objects".to_string()
    } else {
        let parts: Vec<String> = rest
            .iter()
            .map(|d| {
                let state = if d.played { "played" } else { "silent" };
                format!("a {state} {}", name_of(d.class))
            })
            .collect();
        format!("an image of {}, and a plain background", parts.join(", "))
    };
    (foreground, background)
}

/// The answer JSON in the prompt's format: `foreground` is a string for one label and a list for several.
pub fn answer_json(foreground: &[String], background: &str) -> Value {
    let fg = if foreground.len() == 1 {
        json!(foreground[0])
    } else {
        json!(foreground)
    };
    json!({ "foreground": fg, "background": background })
}

/// Wraps answer text in an OpenAI chat completion response.
pub fn completion_body(model: &str, content: &str, id: u64) -> Value {
    json!({
        "id": format!("chatcmpl-stub-{id}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": content },
            "finish_reason": "stop"
        }],
        "usage": { "prompt_tokens": 0, "completion_tokens": content.len() / 4, "total_tokens": content.len() / 4 }
    })
}

/// Replaces the colour word of a caption with another class's colour: the "caption noise" knob.
pub fn add_noise(caption: &str, pick: usize) -> String {
    let colours: Vec<&str> = CATALOGUE
        .iter()
        .filter_map(|c| c.name.split_whitespace().next())
        .collect();
    for (i, colour) in colours.iter().enumerate() {
        let needle = format!(" {colour} ");
        if caption.contains(&needle) {
            let other = colours[(i + 1 + pick % (colours.len() - 1)) % colours.len()];
            return caption.replacen(&needle, &format!(" {other} "), 1);
        }
    }
    caption.to_string()
}

/// Checks a request is a chat request the stand-in can answer; errors become HTTP 400.
pub fn validate_body(body: &Value) -> Result<()> {
    if !body.is_object() {
        bail!("body is not a JSON object");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_label_is_a_string_several_a_list() {
        let one = answer_json(&["an image of a red drum being played".into()], "bg");
        assert!(one["foreground"].is_string());
        let two = answer_json(&["a".into(), "b".into()], "bg");
        assert_eq!(two["foreground"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn noise_swaps_the_colour_word() {
        let noisy = add_noise("an image of a red drum being played", 0);
        assert_ne!(noisy, "an image of a red drum being played");
        assert!(noisy.ends_with("drum being played"));
    }
}
