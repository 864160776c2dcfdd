//! The one error type that reaches the wire: `{"error": code, "error_description": text}`.

use super::ErrorCode;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

/// An error answer in the contract's JSON shape. Build it with the constructors; a 5xx never
/// carries internal detail (the cause is logged, not sent).
#[derive(Debug, Clone)]
pub struct ApiError {
    code: ErrorCode,
    description: String,
    retry_after: Option<u64>,
    www_authenticate: Option<String>,
    dpop_nonce: Option<String>,
    login_url: Option<String>,
}

impl ApiError {
    /// An error with its code (which fixes the status) and a description shown to the client.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
            www_authenticate: None,
            dpop_nonce: None,
            login_url: None,
        }
    }

    /// 500 with a generic text; `cause` goes to the log only.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::ServerError, "internal error")
    }

    /// 503 `store_unavailable` with `Retry-After`; `cause` goes to the log only.
    pub fn store_unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "session store unavailable");
        Self::new(ErrorCode::StoreUnavailable, "the session store is unavailable").with_retry_after(1)
    }

    /// Adds `Retry-After: secs`.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Adds a `WWW-Authenticate` header.
    pub fn with_www_authenticate(mut self, value: impl Into<String>) -> Self {
        self.www_authenticate = Some(value.into());
        self
    }

    /// Adds `DPoP-Nonce: nonce`: the nonce the client's next DPoP proof must carry.
    pub fn with_dpop_nonce(mut self, nonce: impl Into<String>) -> Self {
        self.dpop_nonce = Some(nonce.into());
        self
    }

    /// Adds `"login_url"` to the body: where the browser goes to sign in as the error asks.
    pub fn with_login_url(mut self, url: impl Into<String>) -> Self {
        self.login_url = Some(url.into());
        self
    }

    /// The machine-readable code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.code.status().as_u16(), self.code, self.description)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.code.status());
        res.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if let Some(v) = &self.www_authenticate {
            res.insert_header((header::WWW_AUTHENTICATE, v.clone()));
        }
        if let Some(nonce) = &self.dpop_nonce {
            res.insert_header(("DPoP-Nonce", nonce.clone()));
        }
        let mut body =
            serde_json::json!({ "error": self.code.as_str(), "error_description": self.description });
        if let Some(url) = &self.login_url {
            body["login_url"] = url.as_str().into();
        }
        res.json(body)
    }
}
