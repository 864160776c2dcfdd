//! One upstream exchange: the session's access token added per attempt (as `Bearer`, or as
//! `DPoP` with a fresh proof per attempt when the session's tokens are bound), the deadline, the
//! single retry on a fresh connection when a reused one turns out closed (idempotent requests
//! only), the single retry with the upstream's nonce after a 401 `use_dpop_nonce`, and the
//! single refresh-and-retry after an upstream 401 `invalid_token` (replayable bodies only).

use super::client::{
    UpstreamBody, UpstreamHttp, UpstreamResponse, WorkerClient, describe, empty_body, full_body, is_timeout,
};
use crate::bff::session::TypedSession;
use crate::bff::tokens::{Credential, TokenCare, TokenError, UpstreamToken};
use crate::config::Secret;
use crate::jwt::dpop::{DPOP_HEADER, NONCE_HEADER, NonceCache};
use crate::web::{ApiError, ErrorCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tracing::Instrument as _;

/// What an exchange needs of the BFF: the per-worker client, token care, the upstream timeout
/// and the retry counter. Built by the handler, per request, from borrowed parts.
pub struct Exchange<'a> {
    /// This worker's upstream client.
    pub client: &'a WorkerClient,
    /// Access tokens, refreshed when due.
    pub tokens: &'a TokenCare,
    /// `bff.upstream_timeout_secs`: the deadline for the response head.
    pub timeout: Duration,
    /// Counts retries on a fresh connection.
    pub retries: &'a prometheus::IntCounter,
}

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
                ApiError::new(ErrorCode::UpstreamUnavailable, "the upstream is unavailable")
            }
            UpstreamError::Timeout => {
                ApiError::new(ErrorCode::UpstreamTimeout, "the upstream did not answer in time")
            }
            UpstreamError::TooLarge => crate::bff::policy::payload_too_large(),
            UpstreamError::Token(t) => t.into(),
        }
    }
}

/// Maps a token error to the API error, ending the session when the grant is gone.
pub fn end_session_if_needed(session: &TypedSession, e: &TokenError) {
    if matches!(e, TokenError::SessionExpired | TokenError::NoSession) {
        session.purge();
    }
}

/// True for `401` with `WWW-Authenticate: Bearer|DPoP …error="<error>"`.
fn is_challenge(res: &UpstreamResponse, error: &str) -> bool {
    res.status() == reqwest::StatusCode::UNAUTHORIZED
        && res.headers().get_all(reqwest::header::WWW_AUTHENTICATE).iter().any(|v| {
            let v = String::from_utf8_lossy(v.as_bytes()).to_ascii_lowercase();
            (v.starts_with("bearer") || v.starts_with("dpop")) && v.contains(error)
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

impl Outgoing {
    /// A copy to send again, when the body can be sent again (none or in memory).
    pub fn replayable_copy(&self) -> Option<Outgoing> {
        let body = match &self.body {
            OutgoingBody::Empty => OutgoingBody::Empty,
            OutgoingBody::Bytes(b) => OutgoingBody::Bytes(b.clone()),
            OutgoingBody::Stream(_) => return None,
        };
        Some(Outgoing {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self.headers.clone(),
            body,
            over_limit: self.over_limit.clone(),
        })
    }
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

/// Sends `out` with the access token `credential` names (refreshed when due); with a
/// replayable body, on an upstream 401 `use_dpop_nonce` retries once with the nonce it gave,
/// and on a 401 `invalid_token` renews the token once and retries once.
pub async fn send_with_token(
    ex: &Exchange<'_>,
    credential: Credential<'_>,
    mut out: Outgoing,
) -> Result<UpstreamResponse, UpstreamError> {
    let token = ex.tokens.token_for(credential).await?;
    let replay = match &out.body {
        OutgoingBody::Empty => Some(None),
        OutgoingBody::Bytes(b) => Some(Some(b.clone())),
        OutgoingBody::Stream(_) => None,
    };
    let body = std::mem::replace(&mut out.body, OutgoingBody::Empty);
    let mut res = send_once(ex, &out, body, Some(&token)).await?;
    let Some(replay) = replay else { return Ok(res) };
    let again = || replay.clone().map(OutgoingBody::Bytes).unwrap_or(OutgoingBody::Empty);
    if token.dpop.is_some() && is_challenge(&res, "use_dpop_nonce") {
        // The answer's nonce is cached by now: the new proof carries it.
        res = send_once(ex, &out, again(), Some(&token)).await?;
    }
    if !is_challenge(&res, "invalid_token") {
        return Ok(res);
    }
    let token = ex.tokens.renew_after_rejection(credential, &token).await?;
    send_once(ex, &out, again(), Some(&token)).await
}

/// Sends `out` without any token: a route whose policy reads no session (`session = "none"`),
/// or an anonymous request on one where the session is optional.
pub async fn send_anonymous(ex: &Exchange<'_>, mut out: Outgoing) -> Result<UpstreamResponse, UpstreamError> {
    let body = std::mem::replace(&mut out.body, OutgoingBody::Empty);
    send_once(ex, &out, body, None).await
}

/// Sends one request within `upstream_timeout_secs`. When the pooled connection it went out on
/// turns out closed (the upstream's keep-alive ended as the request arrived) and the request is
/// safe to send again (idempotent method, no streamed body), sends it once more on a fresh
/// connection, within the same deadline. Never after a timeout, never for POST or PATCH.
async fn send_once(
    ex: &Exchange<'_>,
    out: &Outgoing,
    body: OutgoingBody,
    token: Option<&UpstreamToken>,
) -> Result<UpstreamResponse, UpstreamError> {
    // The upstream call's span: method, the upstream's host and the answer's status. Never the
    // URL (its path and query are the browser's), never a header.
    let span = tracing::debug_span!(
        "upstream call",
        otel.kind = "client",
        http.request.method = %out.method,
        server.address = out.url.host_str().unwrap_or_default(),
        http.response.status_code = tracing::field::Empty,
        outcome = tracing::field::Empty,
    );
    let result = send_once_within_deadline(ex, out, body, token).instrument(span.clone()).await;
    match &result {
        Ok(res) => span.record("http.response.status_code", res.status().as_u16()),
        Err(UpstreamError::Timeout) => span.record("outcome", "timeout"),
        Err(_) => span.record("outcome", "unavailable"),
    };
    result
}

async fn send_once_within_deadline(
    ex: &Exchange<'_>,
    out: &Outgoing,
    body: OutgoingBody,
    token: Option<&UpstreamToken>,
) -> Result<UpstreamResponse, UpstreamError> {
    let deadline = tokio::time::Instant::now() + ex.timeout;
    let replay = match &body {
        OutgoingBody::Empty if is_idempotent(&out.method) => Some(None),
        OutgoingBody::Bytes(b) if is_idempotent(&out.method) => Some(Some(b.clone())),
        _ => None,
    };
    match attempt(&ex.client.pooled, out, body, token, deadline).await {
        Err(Attempt::ConnectionLost(_)) if let Some(replay) = replay => {
            ex.retries.inc();
            let body = replay.map(OutgoingBody::Bytes).unwrap_or(OutgoingBody::Empty);
            attempt(&ex.client.fresh, out, body, token, deadline).await.map_err(Attempt::into_error)
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

/// `<scheme> <token>`, marked sensitive (never logged by the HTTP stack).
fn authorization(scheme: &str, token: &Secret) -> Result<http::HeaderValue, Attempt> {
    let mut value = String::with_capacity(scheme.len() + 1 + token.expose().len());
    value.push_str(scheme);
    value.push(' ');
    value.push_str(token.expose());
    let mut bearer = http::HeaderValue::try_from(value).map_err(|_| {
        Attempt::Final(UpstreamError::Unavailable("the access token is not a header value".into()))
    })?;
    bearer.set_sensitive(true);
    Ok(bearer)
}

/// Adds the token (and the DPoP proof, returning the origin whose nonces it uses).
fn add_credentials(
    headers: &mut http::HeaderMap,
    out: &Outgoing,
    token: Option<&UpstreamToken>,
) -> Result<Option<String>, Attempt> {
    match token {
        Some(UpstreamToken { token, dpop: None }) => {
            headers.insert(http::header::AUTHORIZATION, authorization("Bearer", token)?);
            Ok(None)
        }
        Some(UpstreamToken { token, dpop: Some(key) }) => {
            let origin = out.url.origin().ascii_serialization();
            let nonce = NonceCache::global().get(&origin);
            let proof =
                key.proof(out.method.as_str(), out.url.as_str(), Some(token.expose()), nonce.as_deref());
            let proof = http::HeaderValue::try_from(proof).map_err(|_| {
                Attempt::Final(UpstreamError::Unavailable("the DPoP proof is not a header value".into()))
            })?;
            headers.insert(http::header::AUTHORIZATION, authorization("DPoP", token)?);
            headers.insert(DPOP_HEADER, proof);
            Ok(Some(origin))
        }
        None => Ok(None),
    }
}

async fn attempt(
    client: &UpstreamHttp,
    out: &Outgoing,
    body: OutgoingBody,
    token: Option<&UpstreamToken>,
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
    let nonce_origin = add_credentials(request.headers_mut(), out, token)?;
    // Traces on: this call's context as `traceparent` (the browser's never came through).
    crate::telemetry::inject_current(request.headers_mut());
    match tokio::time::timeout_at(deadline, client.request(request)).await {
        Err(_) => Err(Attempt::Final(UpstreamError::Timeout)),
        Ok(Ok(res)) => {
            if let Some(origin) = nonce_origin
                && let Some(nonce) = res.headers().get(NONCE_HEADER).and_then(|v| v.to_str().ok())
            {
                NonceCache::global().put(&origin, nonce);
            }
            Ok(UpstreamResponse::new(res))
        }
        Ok(Err(_)) if out.over_limit.load(Ordering::SeqCst) => Err(Attempt::Final(UpstreamError::TooLarge)),
        Ok(Err(e)) if is_timeout(&e) => Err(Attempt::Final(UpstreamError::Timeout)),
        // The client resolves with the response head, so every error is one before a complete
        // response: a connect that failed (refused, reset) or a connection that closed while the
        // request was in flight — a reused keep-alive connection the upstream had just closed.
        Ok(Err(e)) => Err(Attempt::ConnectionLost(describe(&e))),
    }
}
