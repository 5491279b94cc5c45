//! The captioning client: async HTTP with a bound on requests in flight, spread round-robin over the endpoints.
//!
//! Transport failures (429, 5xx, timeouts, connection errors) are retried with exponential backoff and jitter up
//! to `max_attempts` tries (a `Retry-After` in seconds on a 429 or 503 sets the wait instead, up to
//! [`MAX_RETRY_AFTER`]); other HTTP errors (400: context too long, ...) are recorded and not retried. An
//! answer that is not valid captions is asked again up to `max_reasks` times, then recorded `invalid` with the raw
//! answer. Every finished request is appended to the journal before the next one takes its slot.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::Rng;
use serde_json::Value;

use crate::answer::{completion_content, parse_captions, AnswerError};
use crate::caption_request::{chat_body, data_url, image_payload, GenerationParams};
use crate::journal::{CaptionStatus, Journal, JournalEntry};

/// Retry and concurrency settings.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub max_in_flight: usize,
    pub max_attempts: u32,
    pub max_reasks: u32,
    pub timeout: Duration,
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// Bearer token; never logged or stored.
    pub api_key: Option<String>,
}

/// One caption to ask for.
#[derive(Debug, Clone)]
pub struct CaptionJob {
    pub request_key: String,
    pub sample_id: String,
    pub labels: Vec<String>,
    pub frame: PathBuf,
    pub image_hash: String,
    pub prompt: String,
    pub prompt_hash: String,
}

impl CaptionJob {
    /// The journal entry of this job before any answer: `failed` with nothing filled in, so every early return
    /// records what went wrong on top of it.
    pub fn unanswered(&self, model: &str, attempts: u32) -> JournalEntry {
        JournalEntry {
            request_key: self.request_key.clone(),
            sample_id: self.sample_id.clone(),
            status: CaptionStatus::Failed,
            foreground: Vec::new(),
            background: String::new(),
            error: String::new(),
            attempts,
            latency_ms: 0,
            model: model.to_string(),
            prompt_hash: self.prompt_hash.clone(),
            image_hash: self.image_hash.clone(),
            raw_response: String::new(),
        }
    }
}

/// Why one HTTP request gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestFailure {
    #[error("HTTP {status}: {message}")]
    Http {
        status: u16,
        message: String,
        /// The server's `Retry-After`, when it sent one in seconds.
        retry_after: Option<Duration>,
    },
    #[error("timed out")]
    Timeout,
    #[error("connection error: {0}")]
    Connection(String),
}

impl RequestFailure {
    /// 429, 5xx, timeouts and connection errors are worth another try.
    pub fn retryable(&self) -> bool {
        match self {
            RequestFailure::Http { status, .. } => *status == 429 || *status >= 500,
            RequestFailure::Timeout | RequestFailure::Connection(_) => true,
        }
    }
}

/// The error message of an error body (`{"message"}` or `{"error": {"message"}}`), else the text.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.get("message")
            .or_else(|| v.pointer("/error/message"))
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    let text = message.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    text.chars().take(500).collect()
}

/// Longest `Retry-After` honoured: a server asking for more is waited on this long, then asked again (a
/// misconfigured proxy must not park a caption for hours).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// A `Retry-After` value in its seconds form; the HTTP-date form and anything else unparseable give `None`, and
/// the caller falls back to its own backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only: a number too large for u64 is still "very long", so it saturates to the cap.
    let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
    Some(Duration::from_secs(seconds.min(MAX_RETRY_AFTER.as_secs())))
}

/// Delay before retry `attempt` after `failure`: the server's `Retry-After` when it gave one (bounded by
/// [`MAX_RETRY_AFTER`]), else [`backoff_delay`].
pub fn retry_delay(settings: &ClientSettings, attempt: u32, failure: &RequestFailure) -> Duration {
    match failure {
        RequestFailure::Http {
            retry_after: Some(wait),
            ..
        } => (*wait).min(MAX_RETRY_AFTER),
        _ => backoff_delay(settings, attempt),
    }
}

/// Delay before try `attempt` (1 = first retry): exponential, capped, with half of it random.
pub fn backoff_delay(settings: &ClientSettings, attempt: u32) -> Duration {
    let base = settings.backoff.as_millis() as u64;
    let cap = settings.backoff_max.as_millis() as u64;
    let exp = base
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(20))
        .min(cap);
    let half = exp / 2;
    let jitter = if half > 0 {
        rand::thread_rng().gen_range(0..=half)
    } else {
        0
    };
    Duration::from_millis(half + jitter)
}

/// Sends caption requests.
pub struct CaptionClient {
    http: reqwest::Client,
    endpoints: Vec<String>,
    next: AtomicUsize,
    settings: ClientSettings,
    params: GenerationParams,
}

impl CaptionClient {
    /// A client over `endpoints` (base URLs ending in `/v1`).
    pub fn new(
        endpoints: Vec<String>,
        settings: ClientSettings,
        params: GenerationParams,
    ) -> Result<Self> {
        let http = http_client(&settings)?;
        Ok(Self {
            http,
            endpoints,
            next: AtomicUsize::new(0),
            settings,
            params,
        })
    }

    fn endpoint(&self) -> &str {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        &self.endpoints[i % self.endpoints.len()]
    }

    async fn send_once(&self, body: &[u8]) -> Result<Vec<u8>, RequestFailure> {
        let url = format!("{}/chat/completions", self.endpoint());
        let mut req = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(key) = &self.settings.api_key {
            req = req.bearer_auth(key);
        }
        let classify = |e: reqwest::Error| {
            if e.is_timeout() {
                RequestFailure::Timeout
            } else {
                RequestFailure::Connection(e.without_url().to_string())
            }
        };
        let resp = req.send().await.map_err(classify)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = resp.bytes().await.map_err(classify)?;
        if status == 200 {
            Ok(bytes.to_vec())
        } else {
            Err(RequestFailure::Http {
                status,
                message: error_message(&bytes),
                retry_after,
            })
        }
    }

    /// Asks for one caption, with retries and re-asks; always returns a journal entry.
    pub async fn caption(&self, job: &CaptionJob) -> JournalEntry {
        let started = Instant::now();
        let mut entry = job.unanswered(&self.params.model, 0);
        let body = match self.request_body(job) {
            Ok(b) => b,
            Err(e) => {
                entry.error = format!("preparing request: {e:#}");
                return entry;
            }
        };
        let mut answers = 0;
        let mut transport_tries = 0;
        loop {
            entry.attempts += 1;
            match self.send_once(&body).await {
                Ok(bytes) => {
                    answers += 1;
                    transport_tries = 0;
                    let outcome = completion_content(&bytes).and_then(|text| {
                        entry.raw_response = text.clone();
                        parse_captions(&text, job.labels.len())
                    });
                    match outcome {
                        Ok(c) => {
                            entry.status = CaptionStatus::Ok;
                            entry.foreground = c.foreground;
                            entry.background = c.background;
                            entry.error.clear();
                            break;
                        }
                        Err(e) => {
                            if let AnswerError::NotCompletion(_) = e {
                                entry.raw_response =
                                    String::from_utf8_lossy(&bytes).chars().take(4000).collect();
                            }
                            entry.error = format!("bad answer: {e}");
                            if answers > self.settings.max_reasks {
                                entry.status = CaptionStatus::Invalid;
                                break;
                            }
                        }
                    }
                }
                Err(failure) => {
                    transport_tries += 1;
                    entry.error = failure.to_string();
                    if !failure.retryable() || transport_tries >= self.settings.max_attempts {
                        entry.status = CaptionStatus::Failed;
                        break;
                    }
                    tokio::time::sleep(retry_delay(&self.settings, transport_tries, &failure))
                        .await;
                }
            }
        }
        entry.latency_ms = started.elapsed().as_millis() as u64;
        entry
    }

    fn request_body(&self, job: &CaptionJob) -> Result<Vec<u8>> {
        let frame = std::fs::read(&job.frame)
            .with_context(|| format!("reading frame {}", job.frame.display()))?;
        let jpeg = image_payload(&frame, self.params.max_side, self.params.jpeg_quality)?;
        let body = chat_body(
            &self.params,
            &job.prompt,
            &data_url(&jpeg),
            job.labels.len(),
        );
        Ok(serde_json::to_vec(&body)?)
    }
}

/// The reqwest client: pool sized for the in-flight bound, per-request timeout.
pub fn http_client(settings: &ClientSettings) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(Duration::from_secs(10).min(settings.timeout))
        .pool_max_idle_per_host(settings.max_in_flight)
        .build()
        .context("building the HTTP client")
}

/// Runs every job with at most `max_in_flight` at once, appending each finished one to the journal (synced per
/// batch of completions); `on_done` sees each entry. Returns the entries in completion order.
pub async fn caption_all(
    client: Arc<CaptionClient>,
    jobs: Vec<CaptionJob>,
    journal: &mut Journal,
    mut on_done: impl FnMut(&JournalEntry),
) -> Result<Vec<JournalEntry>> {
    let limit = client.settings.max_in_flight.max(1);
    let mut pending = jobs.into_iter();
    let mut running = tokio::task::JoinSet::new();
    let spawn = |running: &mut tokio::task::JoinSet<JournalEntry>, job: CaptionJob| {
        let client = client.clone();
        running.spawn(async move { client.caption(&job).await });
    };
    for job in pending.by_ref().take(limit) {
        spawn(&mut running, job);
    }
    let mut finished = Vec::new();
    while let Some(first) = running.join_next().await {
        let mut batch = vec![first.context("caption task panicked")?];
        while let Some(more) = running.try_join_next() {
            batch.push(more.context("caption task panicked")?);
        }
        journal.append(&batch)?;
        for entry in &batch {
            on_done(entry);
            if let Some(job) = pending.next() {
                spawn(&mut running, job);
            }
        }
        finished.extend(batch);
    }
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClientSettings {
        ClientSettings {
            max_in_flight: 4,
            max_attempts: 3,
            max_reasks: 1,
            timeout: Duration::from_secs(5),
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(1000),
            api_key: None,
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let s = settings();
        for attempt in 1..12 {
            let d = backoff_delay(&s, attempt).as_millis() as u64;
            let exp = (100u64 << (attempt - 1)).min(1000);
            assert!(d >= exp / 2 && d <= exp, "attempt {attempt}: {d}");
        }
    }

    #[test]
    fn which_failures_are_retried() {
        let http = |status| RequestFailure::Http {
            status,
            message: String::new(),
            retry_after: None,
        };
        assert!(http(429).retryable() && http(500).retryable() && http(503).retryable());
        assert!(!http(400).retryable() && !http(401).retryable());
        assert!(RequestFailure::Timeout.retryable());
        assert_eq!(
            error_message(br#"{"error":{"message":"too long","code":400}}"#),
            "too long"
        );
        assert_eq!(error_message(br#"{"object":"error","message":"m"}"#), "m");
    }

    #[test]
    fn retry_after_seconds_are_honoured_within_a_bound() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("99999999999999999999999999"),
            Some(MAX_RETRY_AFTER)
        );
        for bad in ["", "-1", "1.5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad), None, "{bad:?}");
        }
        let s = settings();
        let with = |retry_after| RequestFailure::Http {
            status: 429,
            message: String::new(),
            retry_after,
        };
        assert_eq!(
            retry_delay(&s, 1, &with(Some(Duration::from_secs(7)))),
            Duration::from_secs(7)
        );
        assert_eq!(
            retry_delay(&s, 1, &with(Some(Duration::from_secs(10_000)))),
            MAX_RETRY_AFTER
        );
        // Without one (or on a timeout) the exponential backoff applies: attempt 3 of 100 ms is 200..=400 ms.
        for failure in [with(None), RequestFailure::Timeout] {
            let d = retry_delay(&s, 3, &failure).as_millis();
            assert!((200..=400).contains(&d), "{failure:?}: {d}");
        }
    }
}
