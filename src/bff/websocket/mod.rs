//! WebSocket routes (`websocket = true` on a `[[bff.routes]]` entry): the route's policy has
//! checked the upgrade by then (the BFF's own `Origin`, a well-formed handshake, the session as
//! the route's `session` says). [`open`] connects to the upstream first — with `Authorization:
//! Bearer <access token>` (or `DPoP` with a proof) when the socket has a session, the browser's offered subprotocols and
//! the route's allowed headers, never the browser's cookies — and answers the browser's 101 only
//! once the upstream accepted, with the subprotocol the upstream chose. The frames are then
//! relayed ([`relay`]) until a side closes, the socket idles, a message is over the limit or
//! the session ends ([`registry`]: on every instance, within a second).
//!
//! By default sockets do not slide the session's idle timeout: a user who only keeps a socket
//! open is signed out at the idle deadline like one who does nothing, and the socket closes with
//! 1008. With `bff.websocket_slides_session` their frames slide it as requests do (a store write
//! at most once per tenth of the idle timeout per socket, by compare-and-swap).

pub mod registry;
pub mod relay;

pub use registry::SocketRegistry;
pub use relay::{Limits, SessionWatch};

use crate::bff::metrics::BffMetrics;
use crate::bff::tokens::UpstreamToken;
use crate::jwt::dpop::NonceCache;
use crate::web::{ApiError, ErrorCode};
use actix_web::{HttpRequest, HttpResponse, web};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// What every relayed socket shares, built once at start.
#[derive(Clone)]
pub struct Sockets {
    /// The open sockets by session.
    pub registry: SocketRegistry,
    /// The message size and idle limits.
    pub limits: Limits,
    /// How long the upstream may take to accept (`bff.upstream_timeout_secs`).
    pub connect_timeout: Duration,
    /// The gauge and counter of sockets.
    pub metrics: Arc<BffMetrics>,
}

/// The upstream end of a socket to open.
pub struct UpstreamTarget {
    /// The upstream URL (`http`/`https`, turned into `ws`/`wss`).
    pub url: url::Url,
    /// The session's access token (and DPoP key); `None`: an anonymous socket.
    pub token: Option<UpstreamToken>,
    /// The browser's `Sec-WebSocket-Protocol` values, forwarded as they came.
    pub protocols: Vec<http::HeaderValue>,
    /// The request headers the route forwards (`X-Forwarded-*` included); any
    /// `Sec-WebSocket-*` among them is dropped: the handshake's own are made for the upstream.
    pub headers: http::HeaderMap,
}

/// Why a socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum WebSocketError {
    /// The upstream could not be reached or refused the handshake.
    #[error("the upstream refused the WebSocket: {0}")]
    Refused(String),
    /// The upstream did not accept within the upstream timeout.
    #[error("the upstream did not accept the WebSocket in time")]
    Timeout,
    /// The browser's handshake could not be answered.
    #[error("malformed WebSocket handshake")]
    Handshake,
}

impl From<WebSocketError> for ApiError {
    fn from(e: WebSocketError) -> Self {
        match e {
            WebSocketError::Refused(cause) => {
                tracing::warn!(error = %cause, "upstream WebSocket unavailable");
                ApiError::new(ErrorCode::UpstreamUnavailable, "the upstream is unavailable")
            }
            WebSocketError::Timeout => {
                ApiError::new(ErrorCode::UpstreamTimeout, "the upstream did not answer in time")
            }
            WebSocketError::Handshake => ApiError::new(ErrorCode::InvalidRequest, e.to_string()),
        }
    }
}

/// Opens a relayed socket: the upstream first, then the browser's 101 (with the subprotocol
/// the upstream chose), then the relay on this worker. `session` is the socket's session, for
/// one that has a token: it is closed (1008) when that session ends or expires.
pub async fn open(
    req: &HttpRequest,
    payload: web::Payload,
    target: UpstreamTarget,
    session: Option<SessionWatch>,
    sockets: &Sockets,
) -> Result<HttpResponse, WebSocketError> {
    let (upstream, protocol) = connect(target, sockets).await?;
    let offered: Vec<&str> = protocol.iter().map(String::as_str).collect();
    let (response, browser_tx, browser_rx) =
        actix_ws::handle_with_protocols(req, payload, &offered).map_err(|_| WebSocketError::Handshake)?;
    let max = sockets.limits.max_message_bytes;
    let browser_rx = browser_rx.max_frame_size(max).aggregate_continuations().max_continuation_size(max);
    let relay = relay::Relay {
        browser_tx,
        browser_rx,
        upstream,
        limits: sockets.limits,
        session,
        registry: sockets.registry.clone(),
        metrics: sockets.metrics.clone(),
    };
    // The browser's side is not `Send`: the relay stays on this worker.
    actix_web::rt::spawn(relay::run(relay));
    Ok(response)
}

/// The upstream's socket and the subprotocol it chose.
async fn connect(
    target: UpstreamTarget,
    sockets: &Sockets,
) -> Result<(relay::UpstreamSocket, Option<String>), WebSocketError> {
    let refused = |e: &dyn std::fmt::Display| WebSocketError::Refused(e.to_string());
    let proof = target.token.as_ref().and_then(|t| dpop_proof(t, &target.url));
    let mut url = target.url;
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme).map_err(|()| WebSocketError::Refused("not an http(s) upstream".into()))?;
    let mut request = url.as_str().into_client_request().map_err(|e| refused(&e))?;
    let headers = request.headers_mut();
    for (name, value) in &target.headers {
        if !name.as_str().starts_with("sec-websocket-") {
            headers.append(name.clone(), value.clone());
        }
    }
    for protocol in target.protocols {
        headers.append(http::header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    if let Some(token) = &target.token {
        let scheme = if proof.is_some() { "DPoP" } else { "Bearer" };
        let mut bearer = http::HeaderValue::try_from(format!("{scheme} {}", token.token.expose()))
            .map_err(|_| WebSocketError::Refused("the access token is not a header value".into()))?;
        bearer.set_sensitive(true);
        headers.insert(http::header::AUTHORIZATION, bearer);
    }
    if let Some(proof) = proof {
        let proof = http::HeaderValue::try_from(proof)
            .map_err(|_| WebSocketError::Refused("the DPoP proof is not a header value".into()))?;
        headers.insert(crate::jwt::dpop::DPOP_HEADER, proof);
    }
    let max = sockets.limits.max_message_bytes;
    let config = WebSocketConfig::default().max_message_size(Some(max)).max_frame_size(Some(max));
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    let (socket, response) = tokio::time::timeout(sockets.connect_timeout, connecting)
        .await
        .map_err(|_| WebSocketError::Timeout)?
        .map_err(|e| refused(&describe(&e)))?;
    let protocol = response
        .headers()
        .get(http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((socket, protocol))
}

/// The handshake's DPoP proof when the session's tokens are bound: it names the HTTP request
/// the handshake is (GET of the http(s) URL), with the origin's latest nonce.
fn dpop_proof(token: &UpstreamToken, url: &url::Url) -> Option<String> {
    let key = token.dpop.as_ref()?;
    let nonce = NonceCache::global().get(&url.origin().ascii_serialization());
    Some(key.proof("GET", url.as_str(), Some(token.token.expose()), nonce.as_deref()))
}

/// What went wrong, without anything of the request (a refused handshake's error holds the
/// upstream's response, never our headers).
fn describe(e: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        Error::Http(res) => format!("the upstream answered {}", res.status()),
        other => other.to_string(),
    }
}
