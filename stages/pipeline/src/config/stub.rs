//! `[stub]`: the local MLLM stand-in that `make captions` starts when no real endpoint is configured.

use serde::{Deserialize, Serialize};

use super::{ensure, InvalidValue};

/// Behaviour knobs of `oassl mllm-stub` (each can also be given on its command line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StubConfig {
    /// Address to bind; loopback by default so the stand-in is never reachable from outside.
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Model id reported by `/v1/models` and in answers.
    pub model: String,
    /// Delay before each answer, milliseconds.
    pub latency_ms: u64,
    /// Share of requests answered with HTTP 429, 500 and 503.
    pub rate_429: f64,
    pub rate_500: f64,
    pub rate_503: f64,
    /// Share of requests whose connection is closed without an answer.
    pub drop_rate: f64,
    /// Share of answers whose content is not valid JSON.
    pub malformed_rate: f64,
    /// Share of answers wrapped in a ```json code fence.
    pub fenced_rate: f64,
    /// Share of answers with prose before and after the JSON.
    pub prose_rate: f64,
    /// Share of captions with a word swapped for a wrong one.
    pub caption_noise: f64,
    /// Seed of the stand-in's random choices.
    pub seed: u64,
}

impl Default for StubConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            model: "oassl-stub".into(),
            latency_ms: 0,
            rate_429: 0.0,
            rate_500: 0.0,
            rate_503: 0.0,
            drop_rate: 0.0,
            malformed_rate: 0.0,
            fenced_rate: 0.0,
            prose_rate: 0.0,
            caption_noise: 0.0,
            seed: 0,
        }
    }
}

impl StubConfig {
    pub(crate) fn validate(&self) -> Result<(), InvalidValue> {
        const S: &str = "stub";
        let rates: [(&'static str, f64); 8] = [
            ("rate_429", self.rate_429),
            ("rate_500", self.rate_500),
            ("rate_503", self.rate_503),
            ("drop_rate", self.drop_rate),
            ("malformed_rate", self.malformed_rate),
            ("fenced_rate", self.fenced_rate),
            ("prose_rate", self.prose_rate),
            ("caption_noise", self.caption_noise),
        ];
        for (key, v) in rates {
            ensure(v.is_finite() && (0.0..=1.0).contains(&v), S, key, || {
                format!("{v} is outside 0..=1")
            })?;
        }
        let errors = self.rate_429 + self.rate_500 + self.rate_503 + self.drop_rate;
        ensure(errors <= 1.0, S, "rate_429", || {
            format!("error and drop rates add up to {errors}, more than 1")
        })?;
        // A sleep per request: ten minutes is already far past any client timeout worth testing.
        ensure(self.latency_ms <= 600_000, S, "latency_ms", || {
            format!("{} is more than 600000 ms", self.latency_ms)
        })?;
        ensure(!self.host.is_empty(), S, "host", || {
            "must not be empty".into()
        })?;
        Ok(())
    }
}
