//! OpenAI-compatible endpoints: base URLs (`http://host:8000/v1`), their `/health` and `/v1/models` routes, and
//! the check made before a run sends work (skip an endpoint whose `/health` fails; make sure the model is served).

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// A base URL without a trailing slash.
pub fn normalise(base: &str) -> String {
    base.trim_end_matches('/').to_string()
}

/// The server root of a base URL (`http://h:8000/v1` -> `http://h:8000`): vLLM serves `/health` there.
pub fn server_root(base: &str) -> &str {
    base.trim_end_matches('/')
        .strip_suffix("/v1")
        .unwrap_or(base.trim_end_matches('/'))
}

/// `GET <root>/health` answered 2xx.
pub async fn healthy(http: &reqwest::Client, base: &str) -> bool {
    let url = format!("{}/health", server_root(base));
    matches!(http.get(&url).send().await, Ok(r) if r.status().is_success())
}

/// The model ids `GET <base>/models` lists.
pub async fn served_models(
    http: &reqwest::Client,
    base: &str,
    api_key: Option<&str>,
) -> Result<Vec<String>> {
    let url = format!("{}/models", normalise(base));
    let mut req = http.get(&url);
    if let Some(key) = api_key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        bail!("GET {url}: HTTP {status}");
    }
    let body: Value = resp
        .json()
        .await
        .with_context(|| format!("GET {url}: body is not JSON"))?;
    Ok(body
        .get("data")
        .and_then(Value::as_array)
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Keeps the endpoints whose `/health` answers and that serve the model; picks the model when none is
/// configured (the first one the first healthy endpoint lists). Fails when no endpoint is usable.
pub async fn select(
    http: &reqwest::Client,
    bases: &[String],
    model: Option<&str>,
    api_key: Option<&str>,
) -> Result<(Vec<String>, String)> {
    let mut usable = Vec::new();
    let mut chosen = model.map(str::to_string);
    let mut problems = Vec::new();
    for base in bases {
        let base = normalise(base);
        if !healthy(http, &base).await {
            tracing::warn!("endpoint {base}: /health failed, skipped");
            problems.push(format!("{base}: /health failed"));
            continue;
        }
        let models = match served_models(http, &base, api_key).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("endpoint {base}: {e:#}, skipped");
                problems.push(format!("{e:#}"));
                continue;
            }
        };
        match &chosen {
            None => match models.first() {
                Some(m) => chosen = Some(m.clone()),
                None => {
                    problems.push(format!("{base}: /v1/models lists no model"));
                    continue;
                }
            },
            Some(m) if !models.iter().any(|x| x == m) => {
                tracing::warn!(
                    "endpoint {base} does not serve {m} (it serves {models:?}), skipped"
                );
                problems.push(format!("{base}: does not serve {m} (serves {models:?})"));
                continue;
            }
            Some(_) => {}
        }
        usable.push(base);
    }
    match chosen {
        Some(model) if !usable.is_empty() => Ok((usable, model)),
        _ => bail!("no usable captioning endpoint: {}", problems.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_strips_v1() {
        assert_eq!(server_root("http://h:8000/v1/"), "http://h:8000");
        assert_eq!(server_root("http://h:8000"), "http://h:8000");
        assert_eq!(normalise("http://h/v1/"), "http://h/v1");
    }
}
