//! The stand-in's accept loop, routes and fault injection.
//!
//! Every fault is decided by the request itself: a hash of the seed, the request body and how many times that
//! same body has been received before. A run that sends the same requests therefore meets the same faults in
//! whatever order its requests arrive, and a retry of a request draws afresh (it is the next attempt).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use oassl_pipeline::config::StubConfig;

use crate::answer::{add_noise, answer_json, captions, completion_body, parse_request};
use crate::http::{read_request, write_response, HeadersTooLarge};
use crate::replay::Canned;

/// Request counts, served at `GET /stats` and readable from a [`StubHandle`].
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct StubStats {
    /// Every chat completion request received (including the ones answered with an error or dropped).
    pub chat_requests: u64,
    /// Chat requests answered with captions (status 200).
    pub answered: u64,
    /// Injected HTTP errors (all statuses together).
    pub injected_errors: u64,
    /// Injected errors per status.
    pub injected_429: u64,
    pub injected_500: u64,
    pub injected_503: u64,
    /// Connections closed without an answer.
    pub dropped: u64,
    /// Answers cut in half (not valid JSON), in a code fence, with prose around the JSON.
    pub malformed: u64,
    pub fenced: u64,
    pub prose: u64,
    /// Requests sent again before the `Retry-After` of their 429 had passed.
    pub early_retries: u64,
    /// Requests that could not be parsed (HTTP 400).
    pub bad_requests: u64,
    /// Requests refused for headers over the size bound (HTTP 431).
    pub headers_too_large: u64,
}

/// Seconds sent in the `Retry-After` header of an injected 429.
pub const RETRY_AFTER_S: u64 = 1;

/// What the stand-in remembers of one request body: how often it came, and when a 429 said it may come again.
#[derive(Default)]
struct Seen {
    attempts: u64,
    not_before: Option<Instant>,
}

struct State {
    cfg: StubConfig,
    seen: Mutex<HashMap<blake3::Hash, Seen>>,
    stats: Mutex<StubStats>,
    replay: Option<Vec<Canned>>,
    replay_next: AtomicUsize,
    ids: AtomicU64,
}

enum Reply {
    /// Status, extra headers, body.
    Send(u16, Vec<(&'static str, String)>, Vec<u8>),
    Drop,
}

impl Reply {
    fn send(status: u16, body: Vec<u8>) -> Self {
        Reply::Send(status, Vec::new(), body)
    }
}

impl State {
    /// The random source of one request: seeded by the seed, the body and the attempt number of that body.
    fn request_rng(&self, body: &[u8]) -> rand_chacha::ChaCha8Rng {
        let digest = blake3::hash(body);
        let now = Instant::now();
        let attempt = match self.seen.lock() {
            Ok(mut seen) => {
                let entry = seen.entry(digest).or_default();
                if entry.not_before.is_some_and(|t| now < t) {
                    self.count(|s| s.early_retries += 1);
                }
                entry.not_before = None;
                entry.attempts += 1;
                entry.attempts
            }
            Err(_) => 0,
        };
        let mut hasher = blake3::Hasher::new();
        hasher.update(&self.cfg.seed.to_le_bytes());
        hasher.update(digest.as_bytes());
        hasher.update(&attempt.to_le_bytes());
        rand_chacha::ChaCha8Rng::from_seed(*hasher.finalize().as_bytes())
    }

    /// Remembers that this body may not come back before `retry_after`.
    fn hold_off(&self, body: &[u8], retry_after: Duration) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.entry(blake3::hash(body)).or_default().not_before =
                Some(Instant::now() + retry_after);
        }
    }

    fn count(&self, f: impl FnOnce(&mut StubStats)) {
        if let Ok(mut s) = self.stats.lock() {
            f(&mut s);
        }
    }

    fn error_body(message: &str, code: u16) -> Vec<u8> {
        json!({"object": "error", "message": message, "type": "StubError", "code": code})
            .to_string()
            .into_bytes()
    }

    fn chat(&self, body: &[u8]) -> Reply {
        self.count(|s| s.chat_requests += 1);
        let mut rng = self.request_rng(body);
        let mut roll = || rng.gen::<f64>();
        if let Some(replay) = &self.replay {
            let i = self.replay_next.fetch_add(1, Ordering::SeqCst);
            return match replay.get(i) {
                None => Reply::send(500, Self::error_body("replay exhausted", 500)),
                Some(Canned::Content(c)) => {
                    self.count(|s| s.answered += 1);
                    let id = self.ids.fetch_add(1, Ordering::SeqCst);
                    Reply::send(
                        200,
                        completion_body(&self.cfg.model, c, id)
                            .to_string()
                            .into_bytes(),
                    )
                }
                Some(Canned::Status(code, b)) => Reply::send(*code, b.clone().into_bytes()),
                Some(Canned::Verbatim(v)) => Reply::send(200, v.clone().into_bytes()),
            };
        }
        // Fault injection first: one roll picks at most one of the error outcomes.
        let r = roll();
        let c = &self.cfg;
        let mut edge = 0.0;
        for (rate, outcome) in [
            (c.rate_429, 429u16),
            (c.rate_500, 500),
            (c.rate_503, 503),
            (c.drop_rate, 0),
        ] {
            edge += rate;
            if r < edge {
                if outcome == 0 {
                    self.count(|s| s.dropped += 1);
                    return Reply::Drop;
                }
                self.count(|s| {
                    s.injected_errors += 1;
                    match outcome {
                        429 => s.injected_429 += 1,
                        500 => s.injected_500 += 1,
                        _ => s.injected_503 += 1,
                    }
                });
                let mut headers = Vec::new();
                if outcome == 429 {
                    // As rate-limiting proxies do; the stand-in notes any request that comes back sooner.
                    headers.push(("Retry-After", RETRY_AFTER_S.to_string()));
                    self.hold_off(body, Duration::from_secs(RETRY_AFTER_S));
                }
                return Reply::Send(
                    outcome,
                    headers,
                    Self::error_body("injected failure", outcome),
                );
            }
        }
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                self.count(|s| s.bad_requests += 1);
                return Reply::send(
                    400,
                    Self::error_body(&format!("body is not JSON: {e}"), 400),
                );
            }
        };
        let req = match parse_request(&value) {
            Ok(r) => r,
            Err(e) => {
                self.count(|s| s.bad_requests += 1);
                return Reply::send(400, Self::error_body(&format!("{e:#}"), 400));
            }
        };
        let (mut fg, mut bg) = captions(&req);
        if roll() < c.caption_noise {
            let pick = (roll() * 1000.0) as usize;
            fg = fg.iter().map(|f| add_noise(f, pick)).collect();
            bg = add_noise(&bg, pick);
        }
        let mut content = serde_json::to_string_pretty(&answer_json(&fg, &bg)).unwrap_or_default();
        if roll() < c.malformed_rate {
            // A truncated answer, as a model cut off by max_tokens would give.
            content.truncate(content.len() / 2);
            self.count(|s| s.malformed += 1);
        } else {
            if roll() < c.fenced_rate {
                content = format!("```json\n{content}\n```");
                self.count(|s| s.fenced += 1);
            }
            if roll() < c.prose_rate {
                content = format!("Sure! Here is the JSON you asked for:\n{content}\nLet me know if you need more.");
                self.count(|s| s.prose += 1);
            }
        }
        self.count(|s| s.answered += 1);
        let model = if req.model.is_empty() {
            &c.model
        } else {
            &req.model
        };
        let id = self.ids.fetch_add(1, Ordering::SeqCst);
        Reply::send(
            200,
            completion_body(model, &content, id)
                .to_string()
                .into_bytes(),
        )
    }

    fn route(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        let path = path.split('?').next().unwrap_or(path);
        match (method, path) {
            ("GET", "/health") => Reply::send(200, Vec::new()),
            ("GET", "/v1/models") => Reply::send(
                200,
                json!({"object": "list", "data": [{"id": self.cfg.model, "object": "model", "owned_by": "oassl", "max_model_len": 8192}]})
                    .to_string()
                    .into_bytes(),
            ),
            ("GET", "/stats") => Reply::send(
                200,
                serde_json::to_vec(&self.stats.lock().map(|s| s.clone()).unwrap_or_default())
                    .unwrap_or_default(),
            ),
            ("POST", "/v1/chat/completions") => self.chat(body),
            _ => Reply::send(404, Self::error_body("no such route", 404)),
        }
    }
}

async fn handle(state: Arc<State>, stream: TcpStream) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let req = match read_request(&mut reader).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                let status = if e.is::<HeadersTooLarge>() {
                    state.count(|s| s.headers_too_large += 1);
                    431
                } else {
                    400
                };
                let body = State::error_body(&format!("{e:#}"), status);
                let _ =
                    write_response(&mut write, status, "application/json", &[], &body, false).await;
                crate::http::linger(&mut reader, write).await;
                return;
            }
        };
        if state.cfg.latency_ms > 0 && req.path.starts_with("/v1/chat") {
            tokio::time::sleep(Duration::from_millis(state.cfg.latency_ms)).await;
        }
        let reply = state.route(&req.method, &req.path, &req.body);
        match reply {
            Reply::Drop => return,
            Reply::Send(status, headers, body) => {
                let kind = if body.is_empty() {
                    "text/plain"
                } else {
                    "application/json"
                };
                if write_response(&mut write, status, kind, &headers, &body, req.keep_alive)
                    .await
                    .is_err()
                    || !req.keep_alive
                {
                    return;
                }
            }
        }
    }
}

/// A running stand-in: its address, counts, and a way to stop it.
pub struct StubHandle {
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StubHandle {
    /// Base URL for an OpenAI client (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Current request counts.
    pub fn stats(&self) -> StubStats {
        self.state
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for StubHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn make_state(cfg: &StubConfig, replay: Option<&Path>) -> Result<Arc<State>> {
    let replay = replay.map(crate::replay::read).transpose()?;
    Ok(Arc::new(State {
        cfg: cfg.clone(),
        seen: Mutex::new(HashMap::new()),
        stats: Mutex::new(StubStats::default()),
        replay,
        replay_next: AtomicUsize::new(0),
        ids: AtomicU64::new(0),
    }))
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stop: oneshot::Receiver<()>) {
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(handle(state.clone(), stream));
                }
            }
        }
    }
}

/// Starts the stand-in on its own thread and runtime; returns once it is listening.
pub fn spawn(cfg: &StubConfig, replay: Option<&Path>) -> Result<StubHandle> {
    let state = make_state(cfg, replay)?;
    let std_listener = std::net::TcpListener::bind((cfg.host.as_str(), cfg.port))
        .with_context(|| format!("binding the MLLM stand-in to {}:{}", cfg.host, cfg.port))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let (tx, rx) = oneshot::channel();
    let thread_state = state.clone();
    let thread = std::thread::Builder::new()
        .name("mllm-stub".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!("stand-in runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                match TcpListener::from_std(std_listener) {
                    Ok(listener) => accept_loop(listener, thread_state, rx).await,
                    Err(e) => tracing::error!("stand-in listener: {e}"),
                }
            });
        })
        .context("starting the stand-in thread")?;
    Ok(StubHandle {
        addr,
        state,
        stop: Some(tx),
        thread: Some(thread),
    })
}

/// Runs the stand-in in the foreground until Ctrl-C; prints its address first.
pub fn serve_forever(cfg: &StubConfig, replay: Option<&Path>) -> Result<()> {
    let handle = spawn(cfg, replay)?;
    println!(
        "oassl mllm-stub listening on http://{} (model {})",
        handle.addr, cfg.model
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    handle.stop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn faulty() -> StubConfig {
        StubConfig {
            rate_429: 0.2,
            rate_500: 0.2,
            rate_503: 0.2,
            drop_rate: 0.2,
            seed: 5,
            ..StubConfig::default()
        }
    }

    /// The outcome (status or drop) of each request, in the order given.
    fn outcomes(state: &State, bodies: &[Vec<u8>]) -> Vec<u16> {
        bodies
            .iter()
            .map(|b| match state.chat(b) {
                Reply::Send(status, ..) => status,
                Reply::Drop => 0,
            })
            .collect()
    }

    #[test]
    fn faults_follow_the_request_not_the_arrival_order() {
        // Bodies that are not chat requests: whatever the fault roll leaves through is answered 400.
        let bodies: Vec<Vec<u8>> = (0..40)
            .map(|i| format!("{{\"n\": {i}}}").into_bytes())
            .collect();
        let forward = make_state(&faulty(), None).unwrap();
        let mut by_body: HashMap<Vec<u8>, Vec<u16>> = HashMap::new();
        for round in 0..3 {
            for (b, o) in bodies.iter().zip(outcomes(&forward, &bodies)) {
                by_body.entry(b.clone()).or_default().push(o);
                let _ = round;
            }
        }
        // Another server, the same requests in reverse order (and each body's attempts interleaved differently).
        let backward = make_state(&faulty(), None).unwrap();
        let reversed: Vec<Vec<u8>> = bodies.iter().rev().cloned().collect();
        let mut again: HashMap<Vec<u8>, Vec<u16>> = HashMap::new();
        for _ in 0..3 {
            for (b, o) in reversed.iter().zip(outcomes(&backward, &reversed)) {
                again.entry(b.clone()).or_default().push(o);
            }
        }
        assert_eq!(by_body, again);
        // Every kind shows up, and a body's later attempts do not repeat its first outcome forever.
        let all: Vec<u16> = by_body.values().flatten().copied().collect();
        for kind in [0, 400, 429, 500, 503] {
            assert!(all.contains(&kind), "no {kind} in {all:?}");
        }
        assert!(by_body.values().any(|o| o.iter().any(|x| *x != o[0])));
        let stats = forward.stats.lock().unwrap().clone();
        assert_eq!(
            stats.injected_errors,
            stats.injected_429 + stats.injected_500 + stats.injected_503
        );
        assert_eq!(stats.chat_requests, 120);
        // Another seed is another draw.
        let other = make_state(
            &StubConfig {
                seed: 6,
                ..faulty()
            },
            None,
        )
        .unwrap();
        let first: Vec<u16> = bodies.iter().map(|b| by_body[b][0]).collect();
        assert_ne!(outcomes(&other, &bodies), first);
    }

    #[test]
    fn a_429_carries_retry_after_and_an_early_retry_is_counted() {
        let state = make_state(
            &StubConfig {
                rate_429: 1.0,
                ..StubConfig::default()
            },
            None,
        )
        .unwrap();
        match state.chat(b"{}") {
            Reply::Send(429, headers, _) => {
                assert_eq!(headers, vec![("Retry-After", RETRY_AFTER_S.to_string())])
            }
            _ => panic!("expected a 429"),
        }
        let _ = state.chat(b"{}");
        let stats = state.stats.lock().unwrap().clone();
        assert_eq!((stats.injected_429, stats.early_retries), (2, 1));
    }

    fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // The server may stop reading once the bound is passed; the answer must come back anyway.
        let _ = stream.write_all(request);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[test]
    fn oversized_headers_get_431_and_normal_ones_pass() {
        let handle = spawn(&StubConfig::default(), None).unwrap();
        let big = "a".repeat(crate::http::MAX_HEADERS + 1);
        // One huge header line.
        let one = format!("GET /health HTTP/1.1\r\nX-Big: {big}\r\n\r\n");
        let answer = raw_exchange(handle.addr, one.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:.200}");
        // Many small ones adding up past the bound.
        let many: String = (0..2000)
            .map(|i| format!("X-H{i}: {}\r\n", "b".repeat(40)))
            .collect();
        let answer = raw_exchange(
            handle.addr,
            format!("GET /health HTTP/1.1\r\n{many}\r\n").as_bytes(),
        );
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:.200}");
        // A request line without an end.
        let answer = raw_exchange(handle.addr, format!("GET /{big}").as_bytes());
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:.200}");
        assert_eq!(handle.stats().headers_too_large, 3);
        // Headers just under the bound are served.
        let fits = format!(
            "GET /health HTTP/1.1\r\nConnection: close\r\nX-Fill: {}\r\n\r\n",
            "c".repeat(crate::http::MAX_HEADERS - 200)
        );
        let answer = raw_exchange(handle.addr, fits.as_bytes());
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer:.200}");
        handle.stop();
    }
}
