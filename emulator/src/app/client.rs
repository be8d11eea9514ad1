//! A tiny HTTP/1.1 client for the CLI subcommands (`shadow get`, `logs tail`, `publish`) that talk to
//! a running emulator on 127.0.0.1. Plain HTTP only, one request per connection: enough for our own
//! APIs, and it keeps an HTTP client stack out of the emulator's dependencies.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("only http://host:port URLs are supported, got {0:?}")]
    Url(String),
    #[error("cannot reach {url}: {source} (is `iot-emulator up` running?)")]
    Io {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed HTTP response from {0}")]
    Response(String),
}

/// One response: status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends `method` to `base_url` + `path_and_query` with `headers` and `body`.
pub async fn request(
    method: &str,
    base_url: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, ClientError> {
    let authority = base_url
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|authority| !authority.contains('/'))
        .ok_or_else(|| ClientError::Url(base_url.to_owned()))?;
    let io_error = |source| ClientError::Io {
        url: base_url.to_owned(),
        source,
    };
    let mut stream = TcpStream::connect(authority).await.map_err(io_error)?;
    let mut head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.map_err(io_error)?;
    stream.write_all(body).await.map_err(io_error)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.map_err(io_error)?;
    parse_response(&raw).ok_or_else(|| ClientError::Response(base_url.to_owned()))
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let split = raw.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = lines.any(|line| {
        line.to_ascii_lowercase()
            .replace(' ', "")
            .starts_with("transfer-encoding:chunked")
    });
    let body = if chunked {
        decode_chunked(body)?
    } else {
        body.to_vec()
    };
    Some(Response { status, body })
}

fn decode_chunked(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut decoded = Vec::new();
    loop {
        let line_end = body.windows(2).position(|window| window == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(decoded);
        }
        decoded.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_with_length_or_chunks_parse() {
        let plain =
            parse_response(b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((plain.status, plain.body.as_slice()), (404, &b"{}"[..]));
        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, b"abcde");
        assert!(parse_response(b"garbage").is_none());
    }
}
