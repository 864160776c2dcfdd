//! Calling an upstream with the session's access token: headers (what the browser sent that
//! the route's [`super::header_policy`] lets through, what we set ourselves), the one shared
//! client, timeouts, and the single retry after an upstream 401 `invalid_token` (only for
//! bodies that can be replayed), and the single retry on a fresh connection when a reused one
//! turns out closed (idempotent only).

use super::header_policy::RequestHeaderPolicy;
use super::session::TypedSession;
use super::state::BffState;
use super::tokens::TokenError;
pub use super::upstream_client::WorkerClient;
use super::upstream_client::{
    UpstreamBody, UpstreamHttp, UpstreamResponse, describe, empty_body, full_body, is_timeout,
};
use crate::config::Secret;
use crate::web::ApiError;
use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why an upstream call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Connection refused, reset, DNS…
    #[error("upstream unavailable: {0}")]
    Unavailable(String),
    /// No answer within `upstream_timeout_secs`.
    #[error("upstream timed out")]
    Timeout,
    /// The request body went over `max_body_bytes` while streaming.
    #[error("request body too large")]
    TooLarge,
    /// No usable token.
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl From<UpstreamError> for ApiError {
    fn from(e: UpstreamError) -> Self {
        match e {
            UpstreamError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "upstream unavailable");
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream_unavailable", "the upstream is unavailable")
            }
            UpstreamError::Timeout => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "the upstream did not answer in time",
            ),
            UpstreamError::TooLarge => payload_too_large(),
            UpstreamError::Token(t) => t.into(),
        }
    }
}

/// 413 `payload_too_large`.
pub fn payload_too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is too large")
}

/// Maps a token error to the API error, ending the session when the grant is gone.
pub fn end_session_if_needed(session: &TypedSession, e: &TokenError) {
    if matches!(e, TokenError::SessionExpired | TokenError::NoSession) {
        session.purge();
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
    state: &BffState,
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
        ("x-forwarded-proto", state.public.forwarded_proto.clone()),
        ("x-forwarded-host", state.public.forwarded_host.clone()),
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

/// True for `401` with `WWW-Authenticate: Bearer error="invalid_token"`.
fn is_invalid_token(res: &UpstreamResponse) -> bool {
    res.status() == reqwest::StatusCode::UNAUTHORIZED
        && res.headers().get_all(reqwest::header::WWW_AUTHENTICATE).iter().any(|v| {
            let v = String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase();
            v.starts_with("bearer") && v.contains("invalid_token")
        })
}

/// One request to send: a body factory is not needed, since only empty bodies are retried.
pub struct Outgoing {
    /// Method.
    pub method: reqwest::Method,
    /// Absolute upstream URL.
    pub url: url::Url,
    /// Headers (without `Authorization`).
    pub headers: reqwest::header::HeaderMap,
    /// A streamed body (never retried), a small replayable one, or none.
    pub body: OutgoingBody,
    /// Set by the body pump when the limit was crossed.
    pub over_limit: Arc<AtomicBool>,
}

/// The body of an [`Outgoing`] request.
pub enum OutgoingBody {
    /// No body: replayable.
    Empty,
    /// An in-memory body: replayable.
    Bytes(bytes::Bytes),
    /// A streamed body: sent once, never retried.
    Stream(UpstreamBody),
}

/// Sends `out` with the session's access token (refreshed when due); on an upstream 401
/// `invalid_token` with a replayable body, refreshes once and retries once.
pub async fn send_with_token(
    state: &BffState,
    client: &WorkerClient,
    handle: &Secret,
    mut out: Outgoing,
) -> Result<UpstreamResponse, UpstreamError> {
    let token = state.tokens.valid_access_token(handle).await?;
    let replay = match &out.body {
        OutgoingBody::Empty => Some(None),
        OutgoingBody::Bytes(b) => Some(Some(b.clone())),
        OutgoingBody::Stream(_) => None,
    };
    let body = std::mem::replace(&mut out.body, OutgoingBody::Empty);
    let res = send_once(state, client, &out, body, &token).await?;
    let Some(replay) = replay else { return Ok(res) };
    if !is_invalid_token(&res) {
        return Ok(res);
    }
    let token = state.tokens.refresh_after_rejection(handle, &token).await?;
    let body = replay.map(OutgoingBody::Bytes).unwrap_or(OutgoingBody::Empty);
    send_once(state, client, &out, body, &token).await
}

/// Sends one request within `upstream_timeout_secs`. When the pooled connection it went out on
/// turns out closed (the upstream's keep-alive ended as the request arrived) and the request is
/// safe to send again (idempotent method, no streamed body), sends it once more on a fresh
/// connection, within the same deadline. Never after a timeout, never for POST or PATCH.
async fn send_once(
    state: &BffState,
    client: &WorkerClient,
    out: &Outgoing,
    body: OutgoingBody,
    token: &Secret,
) -> Result<UpstreamResponse, UpstreamError> {
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_secs(state.config.upstream_timeout_secs);
    let replay = match &body {
        OutgoingBody::Empty if is_idempotent(&out.method) => Some(None),
        OutgoingBody::Bytes(b) if is_idempotent(&out.method) => Some(Some(b.clone())),
        _ => None,
    };
    match attempt(&client.pooled, out, body, token, deadline).await {
        Err(Attempt::ConnectionLost(_)) if let Some(replay) = replay => {
            state.metrics.upstream_retries.inc();
            let body = replay.map(OutgoingBody::Bytes).unwrap_or(OutgoingBody::Empty);
            attempt(&client.fresh, out, body, token, deadline).await.map_err(Attempt::into_error)
        }
        other => other.map_err(Attempt::into_error),
    }
}

/// Methods whose repetition has the effect of one request (RFC 9110 §9.2.2).
fn is_idempotent(method: &reqwest::Method) -> bool {
    use reqwest::Method;
    [Method::GET, Method::HEAD, Method::OPTIONS, Method::PUT, Method::DELETE].contains(method)
}

/// How one attempt failed.
enum Attempt {
    /// The connection failed before a response head arrived (refused, reset, closed while the
    /// request was in flight): the only failure a retry on a fresh connection can cure.
    ConnectionLost(String),
    /// Anything else: timeout, body over the limit.
    Final(UpstreamError),
}

impl Attempt {
    fn into_error(self) -> UpstreamError {
        match self {
            Attempt::ConnectionLost(cause) => UpstreamError::Unavailable(cause),
            Attempt::Final(e) => e,
        }
    }
}

async fn attempt(
    client: &UpstreamHttp,
    out: &Outgoing,
    body: OutgoingBody,
    token: &Secret,
    deadline: tokio::time::Instant,
) -> Result<UpstreamResponse, Attempt> {
    let body = match body {
        OutgoingBody::Empty => empty_body(),
        OutgoingBody::Bytes(b) => full_body(b),
        OutgoingBody::Stream(s) => s,
    };
    let uri = http::Uri::try_from(out.url.as_str())
        .map_err(|e| Attempt::Final(UpstreamError::Unavailable(format!("upstream URL: {e}"))))?;
    let mut request = http::Request::new(body);
    *request.method_mut() = out.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = out.headers.clone();
    let mut value = String::with_capacity(7 + token.expose().len());
    value.push_str("Bearer ");
    value.push_str(token.expose());
    let mut bearer = http::HeaderValue::try_from(value).map_err(|_| {
        Attempt::Final(UpstreamError::Unavailable("the access token is not a header value".into()))
    })?;
    bearer.set_sensitive(true);
    request.headers_mut().insert(http::header::AUTHORIZATION, bearer);
    match tokio::time::timeout_at(deadline, client.request(request)).await {
        Err(_) => Err(Attempt::Final(UpstreamError::Timeout)),
        Ok(Ok(res)) => Ok(UpstreamResponse::new(res)),
        Ok(Err(_)) if out.over_limit.load(Ordering::SeqCst) => Err(Attempt::Final(UpstreamError::TooLarge)),
        Ok(Err(e)) if is_timeout(&e) => Err(Attempt::Final(UpstreamError::Timeout)),
        // The client resolves with the response head, so every error is one before a complete
        // response: a connect that failed (refused, reset) or a connection that closed while the
        // request was in flight — a reused keep-alive connection the upstream had just closed.
        Ok(Err(e)) => Err(Attempt::ConnectionLost(describe(&e))),
    }
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
