//! What crosses the proxy in headers: the browser's request headers the route's allow-list lets
//! travel upstream ([`super::header_policy`]), our own `X-Forwarded-For/Proto/Host`, and the
//! upstream's response headers that may reach the browser.

use super::client::UpstreamResponse;
use super::header_policy::RequestHeaderPolicy;
use actix_web::HttpRequest;
use std::borrow::Cow;
use std::collections::HashSet;

/// The `X-Forwarded-Proto` and `X-Forwarded-Host` values sent upstream: the public URL's,
/// computed once at start.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    /// `X-Forwarded-Proto`.
    pub proto: Option<reqwest::header::HeaderValue>,
    /// `X-Forwarded-Host`.
    pub host: Option<reqwest::header::HeaderValue>,
}

impl Forwarded {
    /// The values for the public URL `url`.
    pub fn of(url: &url::Url) -> Self {
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let value = |v: &str| reqwest::header::HeaderValue::from_str(v).ok().filter(|v| !v.is_empty());
        Self { proto: value(url.scheme()), host: value(&host) }
    }
}

const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "te", "trailer", "trailers", "transfer-encoding", "upgrade"];

/// Header names listed in `Connection` (they are hop-by-hop too), normalised.
fn connection_listed<'a>(values: impl Iterator<Item = &'a [u8]>) -> HashSet<String> {
    values
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(','))
        .map(|s| normalise(s.trim()).into_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Lower case with `_` read as `-`, so `X_Forwarded_For` is treated as `X-Forwarded-For`.
/// Parsed header names are lower case already: the common case allocates nothing.
fn normalise(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b == b'_' || b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase().replace('_', "-"))
    } else {
        Cow::Borrowed(name)
    }
}

fn is_hop_by_hop(n: &str, listed: &HashSet<String>) -> bool {
    HOP_BY_HOP.contains(&n) || n.starts_with("proxy-") || listed.contains(n)
}

/// True when an upstream response header must not reach the browser. An upstream's CORS
/// headers go too: the browser talks to the BFF's origin, which shares nothing cross-origin,
/// and an upstream's `Access-Control-Allow-Origin: *` with credentials must not become its policy.
/// So do its framing, sniffing, referrer and opener policies: the BFF's own apply on its origin
/// (an upstream's Content-Security-Policy stays, beside the BFF's, and both are enforced).
pub fn drop_response_header(name: &str, listed: &HashSet<String>) -> bool {
    let n = normalise(name);
    is_hop_by_hop(&n, listed)
        || matches!(
            &*n,
            "set-cookie"
                | "set-cookie2"
                | "content-length"
                | "x-frame-options"
                | "x-content-type-options"
                | "referrer-policy"
                | "cross-origin-opener-policy"
        )
        || n.starts_with("access-control-")
}

/// A connection's peer address as an `X-Forwarded-For` value, made when the connection is
/// accepted ([`PeerHeader::on_connect`]) rather than formatted on every request.
pub struct PeerHeader(reqwest::header::HeaderValue);

impl PeerHeader {
    /// For `HttpServer::on_connect`: keeps the peer's address of a TCP connection.
    pub fn on_connect(conn: &dyn std::any::Any, data: &mut actix_web::dev::Extensions) {
        let peer = conn.downcast_ref::<actix_web::rt::net::TcpStream>().and_then(|s| s.peer_addr().ok());
        if let Some(v) = peer.and_then(|a| reqwest::header::HeaderValue::from_str(&a.ip().to_string()).ok()) {
            data.insert(PeerHeader(v));
        }
    }
}

/// The headers sent upstream: the browser's that the route's `policy` allows (minus any its
/// `Connection` header lists), plus our own `X-Forwarded-For/Proto/Host`. `Authorization` is
/// added per attempt.
pub fn forward_headers(
    req: &HttpRequest,
    forwarded: &Forwarded,
    policy: &RequestHeaderPolicy,
) -> reqwest::header::HeaderMap {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let listed = connection_listed(req.headers().get_all("connection").map(|v| v.as_bytes()));
    let mut out = HeaderMap::new();
    for (name, value) in req.headers() {
        if !policy.allows(name.as_str()) || listed.contains(name.as_str()) {
            continue;
        }
        if let (Ok(n), Ok(v)) =
            (HeaderName::from_bytes(name.as_str().as_bytes()), HeaderValue::from_bytes(value.as_bytes()))
        {
            out.append(n, v);
        }
    }
    // The public URL's parts were computed at start, the peer's address once per connection.
    let peer = match req.conn_data::<PeerHeader>() {
        Some(PeerHeader(v)) => Some(v.clone()),
        None => req.peer_addr().and_then(|a| HeaderValue::from_str(&a.ip().to_string()).ok()),
    };
    for (name, value) in [
        ("x-forwarded-for", peer),
        ("x-forwarded-proto", forwarded.proto.clone()),
        ("x-forwarded-host", forwarded.host.clone()),
    ] {
        if let Some(v) = value {
            out.insert(name, v);
        }
    }
    out
}

/// Response headers worth passing back to the browser (name, value), borrowed from `res`.
pub fn response_headers(res: &UpstreamResponse) -> impl Iterator<Item = (&str, &[u8])> {
    let listed = connection_listed(res.headers().get_all("connection").iter().map(|v| v.as_bytes()));
    res.headers()
        .iter()
        .filter(move |(n, _)| !drop_response_header(n.as_str(), &listed))
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_cookies_and_hop_by_hop_headers_do_not_reach_the_browser() {
        let listed = HashSet::new();
        assert!(drop_response_header("Set-Cookie", &listed));
        assert!(drop_response_header("Transfer-Encoding", &listed));
        assert!(drop_response_header("Access-Control-Allow-Origin", &listed));
        assert!(drop_response_header("access-control-allow-credentials", &listed));
        assert!(drop_response_header("X-Frame-Options", &listed));
        assert!(drop_response_header("referrer-policy", &listed));
        assert!(!drop_response_header("Content-Type", &listed));
        assert!(!drop_response_header("Content-Security-Policy", &listed));
    }
}
