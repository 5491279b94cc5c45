//! Offline batch mode: the pending requests as OpenAI Batch API lines (`custom_id`, `method`, `url`, `body`) for
//! `vllm run-batch` or the hosted Batch API, and their result lines read back through the same validation.
//!
//! `custom_id` is the request key, so results join back to every sample that shares it.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::answer::{completion_content_of, parse_captions};
use crate::caption_request::{chat_body, data_url, image_payload, GenerationParams};
use crate::client::CaptionJob;
use crate::journal::{CaptionStatus, JournalEntry};

/// Writes one Batch API line per job, atomically.
pub fn export(path: &Path, jobs: &[CaptionJob], params: &GenerationParams) -> Result<()> {
    oassl_pipeline::atomic::write_with(path, |w| {
        use std::io::Write;
        for job in jobs {
            let frame = std::fs::read(&job.frame)
                .with_context(|| format!("reading frame {}", job.frame.display()))?;
            let jpeg = image_payload(&frame, params.max_side, params.jpeg_quality)?;
            let line = json!({
                "custom_id": job.request_key,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": chat_body(params, &job.prompt, &data_url(&jpeg), job.labels.len()),
            });
            serde_json::to_writer(&mut *w, &line)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// Reads Batch API output lines for the given jobs (by request key) into journal entries.
pub fn import(
    path: &Path,
    jobs: &HashMap<String, CaptionJob>,
    model: &str,
) -> Result<Vec<JournalEntry>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading batch results {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .with_context(|| format!("{}: line {} is not JSON", path.display(), i + 1))?;
        let Some(job) = value
            .get("custom_id")
            .and_then(Value::as_str)
            .and_then(|id| jobs.get(id))
        else {
            continue;
        };
        out.push(entry_of(&value, job, model));
    }
    Ok(out)
}

fn entry_of(line: &Value, job: &CaptionJob, model: &str) -> JournalEntry {
    let mut entry = job.unanswered(model, 1);
    if let Some(err) = line.get("error").filter(|e| !e.is_null()) {
        entry.error = format!("batch error: {err}");
        return entry;
    }
    // `response.body` (current) or the completion directly in `response` (older vLLM).
    let response = line.get("response").cloned().unwrap_or(Value::Null);
    let status = response
        .get("status_code")
        .and_then(Value::as_u64)
        .unwrap_or(200);
    let body = response.get("body").cloned().unwrap_or(response);
    if status != 200 {
        entry.error = format!("HTTP {status}: {body}");
        return entry;
    }
    match completion_content_of(&body) {
        Ok(text) => {
            entry.raw_response = text.clone();
            match parse_captions(&text, job.labels.len()) {
                Ok(c) => {
                    entry.status = CaptionStatus::Ok;
                    entry.foreground = c.foreground;
                    entry.background = c.background;
                }
                Err(e) => {
                    entry.status = CaptionStatus::Invalid;
                    entry.error = format!("bad answer: {e}");
                }
            }
        }
        Err(e) => entry.error = e.to_string(),
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(k: usize) -> CaptionJob {
        CaptionJob {
            request_key: "key1".into(),
            sample_id: "s".into(),
            labels: (0..k).map(|i| format!("l{i}")).collect(),
            frame: "f.jpg".into(),
            image_hash: "i".into(),
            prompt: "p".into(),
            prompt_hash: "h".into(),
        }
    }

    #[test]
    fn both_result_shapes_and_errors_are_read() {
        let completion = json!({"choices": [{"message": {"content": "{\"foreground\": \"an image of a\", \"background\": \"an image of b\"}"}}]});
        let new = json!({"custom_id": "key1", "response": {"status_code": 200, "body": completion}, "error": null});
        let old = json!({"custom_id": "key1", "response": completion});
        for line in [new, old] {
            let e = entry_of(&line, &job(1), "m");
            assert_eq!(e.status, CaptionStatus::Ok, "{e:?}");
            assert_eq!(e.foreground, vec!["an image of a".to_string()]);
        }
        let wrong_k = entry_of(
            &json!({"custom_id": "key1", "response": completion}),
            &job(2),
            "m",
        );
        assert_eq!(wrong_k.status, CaptionStatus::Invalid);
        let failed = json!({"custom_id": "key1", "response": {"status_code": 400, "body": {"message": "too long"}}});
        assert_eq!(
            entry_of(&failed, &job(1), "m").status,
            CaptionStatus::Failed
        );
    }
}
