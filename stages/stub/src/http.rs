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

/// Largest request line plus headers accepted; more is answered 431 (a client sends a few hundred bytes).
pub const MAX_HEADERS: usize = 64 << 10;

/// The request line and headers are longer than [`MAX_HEADERS`].
#[derive(Debug, thiserror::Error)]
#[error("request headers are larger than {MAX_HEADERS} bytes")]
pub struct HeadersTooLarge;

/// Reads one line of the head, charging it to `budget`; a line that does not end within the budget is refused
/// before more of it is buffered.
async fn read_head_line(
    reader: &mut BufReader<OwnedReadHalf>,
    budget: &mut usize,
    line: &mut String,
) -> Result<usize> {
    let n = (&mut *reader).take(*budget as u64).read_line(line).await?;
    if n > 0 && !line.ends_with('\n') && n >= *budget {
        return Err(HeadersTooLarge.into());
    }
    *budget -= n;
    Ok(n)
}

/// Reads one request; `Ok(None)` when the client closed the connection between requests.
pub async fn read_request(reader: &mut BufReader<OwnedReadHalf>) -> Result<Option<Request>> {
    let mut budget = MAX_HEADERS;
    let mut line = String::new();
    if read_head_line(reader, &mut budget, &mut line).await? == 0 {
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
        if read_head_line(reader, &mut budget, &mut header).await? == 0 {
            if budget == 0 {
                return Err(HeadersTooLarge.into());
            }
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
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Writes a response with a body and any extra headers.
pub async fn write_response(
    writer: &mut OwnedWriteHalf,
    status: u16,
    content_type: &str,
    headers: &[(&str, String)],
    body: &[u8],
    keep_alive: bool,
) -> Result<()> {
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: {}\r\n{extra}\r\n",
        reason(status),
        body.len(),
        if keep_alive { "keep-alive" } else { "close" }
    );
    writer.write_all(head.as_bytes()).await?;
    writer.write_all(body).await?;
    writer.flush().await?;
    Ok(())
}

/// Closes a connection after an error answer without losing that answer: closing with unread request bytes
/// makes the kernel send a reset, which can discard the response before the client reads it. So the write side
/// is shut first and what the client still sends is read and dropped, bounded in bytes and time.
pub async fn linger(reader: &mut BufReader<OwnedReadHalf>, mut writer: OwnedWriteHalf) {
    let _ = writer.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 8192];
        let mut left = MAX_BODY;
        while left > 0 {
            match reader.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
}
