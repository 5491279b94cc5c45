//! A local stand-in for an OpenAI-compatible multimodal LLM server (vLLM's API), for demos and tests where no
//! real MLLM can run.
//!
//! It serves `POST /v1/chat/completions`, `GET /v1/models`, `GET /health` and `GET /stats` (request counts) on
//! loopback. It really looks at the image it receives: it decodes the base64 JPEG, finds AVS-Synth objects by
//! colour ([`detect`]), tells played objects (vibration marks to their right) from silent ones, and answers with
//! the foreground / background JSON the captioning prompt asks for ([`answer`]). Knobs in
//! [`oassl_pipeline::config::StubConfig`] inject latency, HTTP errors, dropped connections and malformed, fenced
//! or prose-wrapped answers; [`replay`] serves canned bodies from a JSONL file instead.

pub mod answer;
pub mod detect;
mod http;
pub mod replay;
mod server;

pub use server::{serve_forever, spawn, StubHandle, StubStats};
