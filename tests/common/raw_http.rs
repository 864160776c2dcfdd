//! A raw HTTP/1.1 client over a plain TCP stream, for requests a normal client would refuse to
//! send or would normalise: absolute-form and authority-form targets, unencoded `..`,
//! conflicting `Content-Length` / `Transfer-Encoding`, bytes that are not visible ASCII,
//! repeated headers. Every byte written is exactly what the test wrote.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One response parsed from the stream.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Header lines in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every `Set-Cookie` value.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n == "set-cookie").map(|(_, v)| v.as_str()).collect()
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or `Null`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// `host:port` of a base URL such as `http://127.0.0.1:1234`.
pub fn authority(base_url: &str) -> String {
    base_url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

/// Writes `request` as is to `base_url`'s server, reads until the server closes the connection
/// (or 10 s pass) and parses every response in what came back.
pub async fn exchange(base_url: &str, request: &[u8]) -> Vec<RawResponse> {
    let mut stream = tokio::net::TcpStream::connect(authority(base_url)).await.expect("connect");
    stream.write_all(request).await.expect("write request");
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
    parse_responses(&buf)
}

/// Sends `request` and returns the one (first) response; panics when none came back.
pub async fn send(base_url: &str, request: &[u8]) -> RawResponse {
    exchange(base_url, request)
        .await
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(request)))
}

/// `METHOD target HTTP/1.1` with `Host` (the server's own authority unless `headers` brings
/// one), the given header lines, `Connection: close`, and `body` (with a `Content-Length` when
/// non-empty and `headers` brings none).
pub fn request(base_url: &str, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\n").into_bytes();
    let has = |n: &str| headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n));
    if !has("host") {
        out.extend_from_slice(format!("Host: {}\r\n", authority(base_url)).as_bytes());
    }
    for (n, v) in headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() && !has("content-length") && !has("transfer-encoding") {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses consecutive HTTP/1.1 responses (Content-Length, chunked, or to the end).
pub fn parse_responses(mut buf: &[u8]) -> Vec<RawResponse> {
    let mut out = Vec::new();
    while let Some(end) = find(buf, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let rest = &buf[end + 4..];
        let get = |n: &str| headers.iter().find(|(h, _)| h == n).map(|(_, v)| v.clone());
        let (body, consumed) = if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            dechunk(rest)
        } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            let len = len.min(rest.len());
            (rest[..len].to_vec(), len)
        } else if status == 204 || status == 304 || (100..200).contains(&status) {
            (Vec::new(), 0)
        } else {
            (rest.to_vec(), rest.len())
        };
        out.push(RawResponse { status, headers, body });
        buf = &rest[consumed..];
    }
    out
}

fn dechunk(mut buf: &[u8]) -> (Vec<u8>, usize) {
    let start = buf.len();
    let mut body = Vec::new();
    while let Some(line_end) = find(buf, b"\r\n") {
        let size_text = String::from_utf8_lossy(&buf[..line_end]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        buf = &buf[line_end + 2..];
        if size == 0 {
            let trailer_end = find(buf, b"\r\n").map(|i| i + 2).unwrap_or(buf.len());
            buf = &buf[trailer_end..];
            break;
        }
        let take = size.min(buf.len());
        body.extend_from_slice(&buf[..take]);
        buf = &buf[(take + 2).min(buf.len())..];
    }
    (body, start - buf.len())
}
