//! Just enough HTTP/1.1 for the stand-in: request line, headers, a Content-Length body, keep-alive.
//!
//! Written by hand rather than with a web framework so that the stand-in can misbehave the way real servers do
//! (close a connection mid-request) without fighting the framework.

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// A parsed request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    pub keep_alive: bool,
}

/// Largest body accepted (a base64 frame is well below this).
const MAX_BODY: usize = 64 << 20;

/// Reads one request; `Ok(None)` when the client closed the connection between requests.
pub async fn read_request(reader: &mut BufReader<OwnedReadHalf>) -> Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().context("empty request line")?.to_string();
    let path = parts
        .next()
        .context("request line without a path")?
        .to_string();
    let version = parts.next().unwrap_or("HTTP/1.1").to_string();
    let mut content_length = 0usize;
    let mut keep_alive = version != "HTTP/1.0";
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await? == 0 {
            bail!("connection closed inside the headers");
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => {
                    content_length = value.parse().context("bad Content-Length")?;
                }
                "connection" => keep_alive = !value.eq_ignore_ascii_case("close"),
                "transfer-encoding" if value.eq_ignore_ascii_case("chunked") => {
                    bail!("chunked request bodies are not supported")
                }
                _ => {}
            }
        }
    }
    if content_length > MAX_BODY {
        bail!("body of {content_length} bytes is too large");
    }
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body).await?;
    Ok(Some(Request {
        method,
        path,
        body,
        keep_alive,
    }))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Writes a response with a body.
pub async fn write_response(
    writer: &mut OwnedWriteHalf,
    status: u16,
    content_type: &str,
    body: &[u8],
    keep_alive: bool,
) -> Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n",
        reason(status),
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    writer.write_all(head.as_bytes()).await?;
    writer.write_all(body).await?;
    writer.flush().await?;
    Ok(())
}
