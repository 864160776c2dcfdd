//! The shape of a WebSocket upgrade on a route that relays WebSockets (`websocket = true`):
//! any request there that asks for a protocol switch (an `Upgrade` header, or `upgrade` listed
//! in `Connection`) must be a well-formed RFC 6455 opening handshake — `GET`, `Upgrade:
//! websocket`, `Connection: upgrade`, `Sec-WebSocket-Version: 13`, a `Sec-WebSocket-Key` of 16
//! bytes in base64 — or it is refused with 400 before anything reaches the upstream (upgrade
//! smuggling: `Upgrade: h2c`, a handshake the BFF would answer differently from the upstream).
//! On every other route the hop-by-hop `Upgrade` and `Connection` headers are dropped and the
//! request is proxied as a plain one (`proxy/headers.rs`).

use crate::web::{ApiError, ErrorCode};
use actix_web::HttpRequest;
use actix_web::http::{Method, header};
use base64::Engine;

/// Why an upgrade request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UpgradeError {
    /// Not `GET`.
    #[error("a WebSocket upgrade must be a GET")]
    Method,
    /// `Upgrade` is not exactly `websocket`, or `Connection` does not list `upgrade`.
    #[error("only a WebSocket upgrade is accepted here")]
    NotWebSocket,
    /// `Sec-WebSocket-Version` is not `13`.
    #[error("unsupported WebSocket version")]
    Version,
    /// `Sec-WebSocket-Key` is missing or not 16 bytes in base64.
    #[error("malformed Sec-WebSocket-Key")]
    Key,
}

impl From<UpgradeError> for ApiError {
    fn from(e: UpgradeError) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, e.to_string())
    }
}

/// True when `value` (a comma-separated header) lists `token`, case-insensitively.
fn lists(req: &HttpRequest, name: header::HeaderName, token: &str) -> bool {
    req.headers()
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// True when the request asks for a protocol switch of any kind.
pub fn is_attempt(req: &HttpRequest) -> bool {
    req.headers().contains_key(header::UPGRADE) || lists(req, header::CONNECTION, "upgrade")
}

/// The request is a well-formed WebSocket opening handshake (RFC 6455 §4.2.1).
pub fn check_handshake(req: &HttpRequest) -> Result<(), UpgradeError> {
    if req.method() != Method::GET {
        return Err(UpgradeError::Method);
    }
    let upgrades: Vec<_> = req.headers().get_all(header::UPGRADE).collect();
    let websocket_only = upgrades.len() == 1 && upgrades[0].as_bytes().eq_ignore_ascii_case(b"websocket");
    if !websocket_only || !lists(req, header::CONNECTION, "upgrade") {
        return Err(UpgradeError::NotWebSocket);
    }
    let one = |name| {
        let mut values = req.headers().get_all(name);
        match (values.next(), values.next()) {
            (Some(v), None) => Some(v.as_bytes()),
            _ => None,
        }
    };
    if one(header::SEC_WEBSOCKET_VERSION) != Some(b"13".as_slice()) {
        return Err(UpgradeError::Version);
    }
    let key = one(header::SEC_WEBSOCKET_KEY).ok_or(UpgradeError::Key)?;
    match base64::engine::general_purpose::STANDARD.decode(key) {
        Ok(raw) if raw.len() == 16 => Ok(()),
        _ => Err(UpgradeError::Key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn handshake() -> TestRequest {
        TestRequest::get()
            .insert_header(("Upgrade", "websocket"))
            .insert_header(("Connection", "keep-alive, Upgrade"))
            .insert_header(("Sec-WebSocket-Version", "13"))
            .insert_header(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="))
    }

    #[test]
    fn a_well_formed_handshake_passes_and_every_malformed_one_is_refused() {
        assert_eq!(check_handshake(&handshake().to_http_request()), Ok(()));
        let cases = [
            (handshake().method(Method::POST), UpgradeError::Method),
            (handshake().insert_header(("Upgrade", "h2c")), UpgradeError::NotWebSocket),
            (handshake().insert_header(("Connection", "keep-alive")), UpgradeError::NotWebSocket),
            (handshake().insert_header(("Sec-WebSocket-Version", "8")), UpgradeError::Version),
            (handshake().insert_header(("Sec-WebSocket-Key", "c2hvcnQ=")), UpgradeError::Key),
            (handshake().insert_header(("Sec-WebSocket-Key", "!!")), UpgradeError::Key),
        ];
        for (req, expected) in cases {
            let req = req.to_http_request();
            assert!(is_attempt(&req));
            assert_eq!(check_handshake(&req), Err(expected));
        }
        assert!(!is_attempt(&TestRequest::get().to_http_request()));
    }
}
