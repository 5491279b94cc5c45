//! The stand-in's accept loop, routes and fault injection.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use oassl_pipeline::config::StubConfig;

use crate::answer::{add_noise, answer_json, captions, completion_body, parse_request};
use crate::http::{read_request, write_response};
use crate::replay::Canned;

/// Request counts, served at `GET /stats` and readable from a [`StubHandle`].
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct StubStats {
    /// Every chat completion request received (including the ones answered with an error or dropped).
    pub chat_requests: u64,
    /// Chat requests answered with captions (status 200).
    pub answered: u64,
    /// Injected HTTP errors and dropped connections.
    pub injected_errors: u64,
    pub dropped: u64,
    /// Requests that could not be parsed (HTTP 400).
    pub bad_requests: u64,
}

struct State {
    cfg: StubConfig,
    rng: Mutex<rand_chacha::ChaCha8Rng>,
    stats: Mutex<StubStats>,
    replay: Option<Vec<Canned>>,
    replay_next: AtomicUsize,
    ids: AtomicU64,
}

enum Reply {
    Send(u16, Vec<u8>),
    Drop,
}

impl State {
    fn roll(&self) -> f64 {
        self.rng.lock().map(|mut r| r.gen::<f64>()).unwrap_or(0.5)
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
        if let Some(replay) = &self.replay {
            let i = self.replay_next.fetch_add(1, Ordering::SeqCst);
            return match replay.get(i) {
                None => Reply::Send(500, Self::error_body("replay exhausted", 500)),
                Some(Canned::Content(c)) => {
                    self.count(|s| s.answered += 1);
                    let id = self.ids.fetch_add(1, Ordering::SeqCst);
                    Reply::Send(
                        200,
                        completion_body(&self.cfg.model, c, id)
                            .to_string()
                            .into_bytes(),
                    )
                }
                Some(Canned::Status(code, b)) => Reply::Send(*code, b.clone().into_bytes()),
                Some(Canned::Verbatim(v)) => Reply::Send(200, v.clone().into_bytes()),
            };
        }
        // Fault injection first: one roll picks at most one of the error outcomes.
        let r = self.roll();
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
                self.count(|s| s.injected_errors += 1);
                return Reply::Send(outcome, Self::error_body("injected failure", outcome));
            }
        }
        let value: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                self.count(|s| s.bad_requests += 1);
                return Reply::Send(
                    400,
                    Self::error_body(&format!("body is not JSON: {e}"), 400),
                );
            }
        };
        let req = match parse_request(&value) {
            Ok(r) => r,
            Err(e) => {
                self.count(|s| s.bad_requests += 1);
                return Reply::Send(400, Self::error_body(&format!("{e:#}"), 400));
            }
        };
        let (mut fg, mut bg) = captions(&req);
        if self.roll() < c.caption_noise {
            let pick = (self.roll() * 1000.0) as usize;
            fg = fg.iter().map(|f| add_noise(f, pick)).collect();
            bg = add_noise(&bg, pick);
        }
        let mut content = serde_json::to_string_pretty(&answer_json(&fg, &bg)).unwrap_or_default();
        if self.roll() < c.malformed_rate {
            // A truncated answer, as a model cut off by max_tokens would give.
            content.truncate(content.len() / 2);
        } else {
            if self.roll() < c.fenced_rate {
                content = format!("```json\n{content}\n```");
            }
            if self.roll() < c.prose_rate {
                content = format!("Sure! Here is the JSON you asked for:\n{content}\nLet me know if you need more.");
            }
        }
        self.count(|s| s.answered += 1);
        let model = if req.model.is_empty() {
            &c.model
        } else {
            &req.model
        };
        let id = self.ids.fetch_add(1, Ordering::SeqCst);
        Reply::Send(
            200,
            completion_body(model, &content, id)
                .to_string()
                .into_bytes(),
        )
    }

    fn route(&self, method: &str, path: &str, body: &[u8]) -> Reply {
        let path = path.split('?').next().unwrap_or(path);
        match (method, path) {
            ("GET", "/health") => Reply::Send(200, Vec::new()),
            ("GET", "/v1/models") => Reply::Send(
                200,
                json!({"object": "list", "data": [{"id": self.cfg.model, "object": "model", "owned_by": "oassl", "max_model_len": 8192}]})
                    .to_string()
                    .into_bytes(),
            ),
            ("GET", "/stats") => Reply::Send(
                200,
                serde_json::to_vec(&self.stats.lock().map(|s| s.clone()).unwrap_or_default())
                    .unwrap_or_default(),
            ),
            ("POST", "/v1/chat/completions") => self.chat(body),
            _ => Reply::Send(404, Self::error_body("no such route", 404)),
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
                let body = State::error_body(&format!("{e:#}"), 400);
                let _ = write_response(&mut write, 400, "application/json", &body, false).await;
                return;
            }
        };
        if state.cfg.latency_ms > 0 && req.path.starts_with("/v1/chat") {
            tokio::time::sleep(Duration::from_millis(state.cfg.latency_ms)).await;
        }
        let reply = state.route(&req.method, &req.path, &req.body);
        match reply {
            Reply::Drop => return,
            Reply::Send(status, body) => {
                let kind = if body.is_empty() {
                    "text/plain"
                } else {
                    "application/json"
                };
                if write_response(&mut write, status, kind, &body, req.keep_alive)
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
        rng: Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed)),
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
