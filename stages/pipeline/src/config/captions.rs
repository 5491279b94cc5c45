//! `[captions]`: stage one, frame and audio extraction and MLLM captioning.
//!
//! Model-specific request details (served model id, stop token ids, image size) come from a preset
//! (`internvl2`, `qwen2-vl`, `llava-next`) unless the section sets them itself.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ensure, InvalidValue};

/// Request defaults for one MLLM family as served by vLLM (README "Captioning with a real MLLM").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelPreset {
    pub name: &'static str,
    /// The Hugging Face repo `vllm serve` is started with (its default served model name).
    pub model: &'static str,
    /// Stop token ids sent with every request (InternVL2 may not stop at its end-of-turn token otherwise).
    pub stop_token_ids: &'static [u32],
    /// Longest image side sent, pixels (bounds the image tokens).
    pub max_side: u32,
}

/// The presets `[captions] preset` may name.
pub const PRESETS: &[ModelPreset] = &[
    ModelPreset {
        name: "internvl2",
        model: "OpenGVLab/InternVL2-8B",
        stop_token_ids: &[92542, 92543],
        max_side: 448,
    },
    ModelPreset {
        name: "qwen2-vl",
        model: "Qwen/Qwen2-VL-7B-Instruct",
        stop_token_ids: &[],
        max_side: 448,
    },
    ModelPreset {
        name: "llava-next",
        model: "llava-hf/llava-v1.6-mistral-7b-hf",
        stop_token_ids: &[],
        max_side: 336,
    },
];

/// Looks a preset up by name.
pub fn preset(name: &str) -> Option<&'static ModelPreset> {
    PRESETS.iter().find(|p| p.name == name)
}

/// Longest per-request timeout accepted, seconds (a day: vLLM queues can be long, but not unbounded).
const MAX_TIMEOUT_S: f64 = 86_400.0;
/// Longest retry delay accepted, milliseconds.
const MAX_BACKOFF_MS: u64 = 3_600_000;

/// Stage one's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptionsConfig {
    /// Side of the square extracted frame, pixels (the training input size).
    pub frame_size: u32,
    /// Sample rate of the extracted mono audio, Hz.
    pub audio_rate: u32,
    /// Length of the audio window centred on the frame, seconds.
    pub audio_seconds: f64,
    /// JPEG quality of extracted frames and of images sent to the MLLM.
    pub jpeg_quality: u8,
    /// Extraction worker threads (0 = one per core).
    pub extract_threads: usize,
    /// OpenAI-compatible base URLs (`http://host:8000/v1`); empty = start the local stand-in (`[stub]`).
    pub endpoints: Vec<String>,
    /// Environment variable holding the API key (sent as a bearer token); empty = no key.
    pub api_key_env: String,
    /// `internvl2`, `qwen2-vl`, `llava-next`, or empty for none.
    pub preset: String,
    /// Served model id; empty = the preset's, else the first id the endpoint lists at `/v1/models`.
    pub model: String,
    /// Prompt template (`{labels}` is replaced by the comma-separated labels), relative to the config file.
    pub prompt_file: PathBuf,
    /// Longest image side sent to the MLLM; 0 = the preset's (448 without one).
    pub max_side: u32,
    pub temperature: f64,
    pub max_tokens: u32,
    /// `json_schema`, `json_object` or `none`.
    pub response_format: String,
    /// Stop token ids; empty = the preset's.
    pub stop_token_ids: Vec<u32>,
    /// Requests in flight at once, over all endpoints.
    pub max_in_flight: usize,
    /// Tries per request on 429, 5xx, timeouts and connection errors.
    pub max_attempts: u32,
    /// Extra requests for a sample whose answer is not valid captions JSON.
    pub max_reasks: u32,
    /// Per-request timeout, seconds (vLLM queues without a limit, so keep it long).
    pub timeout_s: f64,
    /// First retry delay, milliseconds; doubles per try (with jitter) up to `backoff_max_ms`.
    pub backoff_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for CaptionsConfig {
    fn default() -> Self {
        Self {
            frame_size: 224,
            audio_rate: 22_050,
            audio_seconds: 3.0,
            jpeg_quality: 90,
            extract_threads: 0,
            endpoints: Vec::new(),
            api_key_env: String::new(),
            preset: String::new(),
            model: String::new(),
            prompt_file: PathBuf::from("prompts/oa-ssl-table5.txt"),
            max_side: 0,
            temperature: 0.0,
            max_tokens: 256,
            response_format: "json_schema".into(),
            stop_token_ids: Vec::new(),
            max_in_flight: 64,
            max_attempts: 8,
            max_reasks: 2,
            timeout_s: 600.0,
            backoff_ms: 200,
            backoff_max_ms: 30_000,
        }
    }
}

/// Section name in config errors.
const S: &str = "captions";

impl CaptionsConfig {
    /// The preset named by `preset`, if any.
    pub fn model_preset(&self) -> Option<&'static ModelPreset> {
        preset(&self.preset)
    }

    /// The longest image side to send: the section's, else the preset's, else 448.
    pub fn effective_max_side(&self) -> u32 {
        if self.max_side > 0 {
            self.max_side
        } else {
            self.model_preset().map(|p| p.max_side).unwrap_or(448)
        }
    }

    /// Stop token ids to send: the section's, else the preset's.
    pub fn effective_stop_token_ids(&self) -> Vec<u32> {
        if !self.stop_token_ids.is_empty() {
            self.stop_token_ids.clone()
        } else {
            self.model_preset()
                .map(|p| p.stop_token_ids.to_vec())
                .unwrap_or_default()
        }
    }

    /// The model id from the section or the preset; `None` means "ask the endpoint".
    pub fn configured_model(&self) -> Option<String> {
        if !self.model.is_empty() {
            Some(self.model.clone())
        } else {
            self.model_preset().map(|p| p.model.to_string())
        }
    }

    pub(crate) fn validate(&self) -> Result<(), InvalidValue> {
        self.validate_extraction()?;
        self.validate_request()?;
        self.validate_client()
    }

    /// What extraction writes: frame, audio window, JPEG, threads.
    fn validate_extraction(&self) -> Result<(), InvalidValue> {
        ensure(
            (32..=2048).contains(&self.frame_size),
            S,
            "frame_size",
            || format!("{} is outside 32..=2048", self.frame_size),
        )?;
        ensure(
            (8_000..=192_000).contains(&self.audio_rate),
            S,
            "audio_rate",
            || format!("{} is outside 8000..=192000", self.audio_rate),
        )?;
        ensure(
            self.audio_seconds.is_finite()
                && self.audio_seconds > 0.0
                && self.audio_seconds <= 60.0,
            S,
            "audio_seconds",
            || format!("{} is outside (0, 60]", self.audio_seconds),
        )?;
        ensure(
            (1..=100).contains(&self.jpeg_quality),
            S,
            "jpeg_quality",
            || format!("{} is outside 1..=100", self.jpeg_quality),
        )?;
        ensure(self.extract_threads <= 1024, S, "extract_threads", || {
            format!("{} is more than 1024", self.extract_threads)
        })?;
        Ok(())
    }

    /// What a request asks: endpoints, model preset, prompt, image size, generation settings.
    fn validate_request(&self) -> Result<(), InvalidValue> {
        for e in &self.endpoints {
            ensure(
                e.starts_with("http://") || e.starts_with("https://"),
                S,
                "endpoints",
                || format!("{e:?} is not an http(s) URL"),
            )?;
        }
        ensure(
            self.preset.is_empty() || preset(&self.preset).is_some(),
            S,
            "preset",
            || {
                let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
                format!("{:?} is not one of {}", self.preset, names.join(", "))
            },
        )?;
        ensure(
            !self.prompt_file.as_os_str().is_empty(),
            S,
            "prompt_file",
            || "must not be empty".into(),
        )?;
        ensure(
            self.max_side == 0 || (32..=4096).contains(&self.max_side),
            S,
            "max_side",
            || format!("{} is outside 32..=4096 (0 = the preset's)", self.max_side),
        )?;
        ensure(
            self.temperature.is_finite() && (0.0..=2.0).contains(&self.temperature),
            S,
            "temperature",
            || format!("{} is outside 0..=2", self.temperature),
        )?;
        ensure(
            (1..=8192).contains(&self.max_tokens),
            S,
            "max_tokens",
            || format!("{} is outside 1..=8192", self.max_tokens),
        )?;
        ensure(
            matches!(
                self.response_format.as_str(),
                "json_schema" | "json_object" | "none"
            ),
            S,
            "response_format",
            || {
                format!(
                    "{:?} is not one of json_schema, json_object, none",
                    self.response_format
                )
            },
        )?;
        Ok(())
    }

    /// How requests are sent: concurrency, retries, timeouts and back-off.
    fn validate_client(&self) -> Result<(), InvalidValue> {
        ensure(
            (1..=4096).contains(&self.max_in_flight),
            S,
            "max_in_flight",
            || format!("{} is outside 1..=4096", self.max_in_flight),
        )?;
        ensure(
            (1..=100).contains(&self.max_attempts),
            S,
            "max_attempts",
            || format!("{} is outside 1..=100", self.max_attempts),
        )?;
        ensure(self.max_reasks <= 20, S, "max_reasks", || {
            format!("{} is more than 20", self.max_reasks)
        })?;
        // Each of these becomes a Duration (from_secs_f64 panics past u64 seconds) or a sleep: bound them here.
        ensure(
            self.timeout_s.is_finite() && self.timeout_s > 0.0 && self.timeout_s <= MAX_TIMEOUT_S,
            S,
            "timeout_s",
            || format!("{} is outside (0, {MAX_TIMEOUT_S}] seconds", self.timeout_s),
        )?;
        ensure(
            self.backoff_max_ms <= MAX_BACKOFF_MS,
            S,
            "backoff_max_ms",
            || {
                format!(
                    "{} is more than {MAX_BACKOFF_MS} ms (one hour)",
                    self.backoff_max_ms
                )
            },
        )?;
        ensure(
            self.backoff_ms <= self.backoff_max_ms,
            S,
            "backoff_ms",
            || {
                format!(
                    "{} is more than backoff_max_ms {}",
                    self.backoff_ms, self.backoff_max_ms
                )
            },
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PipelineConfig;
    use std::path::Path;

    #[test]
    fn preset_fills_model_and_stop_ids_unless_set() {
        let cfg = CaptionsConfig {
            preset: "internvl2".into(),
            ..Default::default()
        };
        assert_eq!(
            cfg.configured_model().as_deref(),
            Some("OpenGVLab/InternVL2-8B")
        );
        assert_eq!(cfg.effective_stop_token_ids(), vec![92542, 92543]);
        let own = CaptionsConfig {
            stop_token_ids: vec![2],
            model: "m".into(),
            ..cfg
        };
        assert_eq!(own.effective_stop_token_ids(), vec![2]);
        assert_eq!(own.configured_model().as_deref(), Some("m"));
        assert_eq!(CaptionsConfig::default().configured_model(), None);
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, key) in [
            ("[captions]\npreset = \"gpt\"\n", "[captions] preset"),
            (
                "[captions]\nresponse_format = \"xml\"\n",
                "[captions] response_format",
            ),
            (
                "[captions]\nendpoints = [\"ftp://x\"]\n",
                "[captions] endpoints",
            ),
            (
                "[captions]\nmax_in_flight = 0\n",
                "[captions] max_in_flight",
            ),
        ] {
            let err = PipelineConfig::parse(text, Path::new("p.toml")).unwrap_err();
            assert!(format!("{err:#}").contains(key), "{err:#}");
        }
    }
}
