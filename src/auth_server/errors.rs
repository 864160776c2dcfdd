//! The two ways this server says no: OAuth JSON errors (RFC 6749 §5.2) for the back-channel
//! endpoints, and HTML error pages for the browser-facing ones.

use super::pages;
use crate::store::StoreError;
use crate::web::ApiError;
use crate::web::ErrorCode;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// An error of the token, revocation or userinfo endpoints.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// Malformed request (missing or repeated parameter, bad content type).
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// Client authentication failed.
    #[error("invalid_client")]
    InvalidClient {
        /// Whether the client tried HTTP Basic (then a `WWW-Authenticate` challenge is due).
        basic: bool,
    },
    /// The code or refresh token is invalid, expired, revoked, reused or not this client's.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// The grant type is not one this server knows.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    /// The requested scope exceeds what was granted.
    #[error("invalid_scope")]
    InvalidScope,
    /// The requested resource is malformed, not the client's, or not granted (RFC 8707 §2).
    #[error("invalid_target: {0}")]
    InvalidTarget(&'static str),
    /// The client may not use this grant type (RFC 6749 §5.2).
    #[error("unauthorized_client")]
    UnauthorizedClient,
    /// The bearer token is missing or invalid (userinfo).
    #[error("invalid_token: {0}")]
    InvalidToken(&'static str),
    /// The DPoP proof is missing, invalid, replayed or from another key (RFC 9449 §5).
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(&'static str),
    /// The store could not be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else (signing failed, serialisation failed).
    #[error("internal: {0}")]
    Internal(String),
}

impl OAuthError {
    /// The short label used in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient { .. } => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::UnauthorizedClient => "unauthorized_client",
            OAuthError::InvalidToken(_) => "invalid_token",
            OAuthError::InvalidDpopProof(_) => "invalid_dpop_proof",
            OAuthError::Store(_) => "store_unavailable",
            OAuthError::Internal(_) => "server_error",
        }
    }

    fn to_api_error(&self) -> ApiError {
        match self {
            OAuthError::InvalidRequest(d) => ApiError::new(ErrorCode::InvalidRequest, *d),
            OAuthError::InvalidClient { basic } => {
                let e = ApiError::new(ErrorCode::InvalidClient, "client authentication failed");
                if *basic { e.with_www_authenticate("Basic realm=\"cloakroom\"") } else { e }
            }
            OAuthError::InvalidGrant(d) => ApiError::new(ErrorCode::InvalidGrant, *d),
            OAuthError::UnsupportedGrantType => ApiError::new(
                ErrorCode::UnsupportedGrantType,
                "grant_type must be authorization_code, refresh_token or client_credentials",
            ),
            OAuthError::InvalidScope => {
                ApiError::new(ErrorCode::InvalidScope, "the requested scope exceeds the scope granted")
            }
            OAuthError::InvalidTarget(d) => ApiError::new(ErrorCode::InvalidTarget, *d),
            OAuthError::UnauthorizedClient => {
                ApiError::new(ErrorCode::UnauthorizedClient, "the client may not use this grant type")
            }
            OAuthError::InvalidToken(d) => ApiError::new(ErrorCode::InvalidToken, *d)
                .with_www_authenticate("Bearer error=\"invalid_token\""),
            OAuthError::InvalidDpopProof(d) => ApiError::new(ErrorCode::InvalidDpopProof, *d),
            OAuthError::Store(e) => ApiError::store_unavailable(e),
            OAuthError::Internal(e) => ApiError::internal(e),
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.to_api_error().status_code()
    }
    fn error_response(&self) -> HttpResponse {
        self.to_api_error().error_response()
    }
}

/// An error shown to a person as an HTML page (never a redirect: a bad client or redirect
/// URI must not send the browser anywhere).
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// The request cannot be served as asked; the text is shown to the user.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// A sign-in or sign-up form posted from another site (login CSRF).
    #[error("cross-site form post")]
    CrossSite,
    /// Too many failed logins.
    #[error("too many failed logins")]
    TooManyAttempts {
        /// Seconds until the counter window ends.
        retry_after: u64,
    },
    /// Too many sign-ups from one client address.
    #[error("too many sign-ups")]
    TooManySignups {
        /// Seconds until the counter window ends.
        retry_after: u64,
    },
    /// Too many authorization requests from one client address.
    #[error("too many authorization requests")]
    TooManyRequests {
        /// Seconds until the counter window ends.
        retry_after: u64,
    },
    /// The store could not be used.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else.
    #[error("internal: {0}")]
    Internal(String),
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::CrossSite => StatusCode::FORBIDDEN,
            PageError::TooManyAttempts { .. }
            | PageError::TooManySignups { .. }
            | PageError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            PageError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let message = match self {
            PageError::BadRequest(m) => *m,
            PageError::CrossSite => "This form can only be submitted from the sign-in page itself.",
            PageError::TooManyAttempts { .. } => {
                "Too many failed sign-in attempts. Please wait and try again."
            }
            PageError::TooManySignups { .. } => {
                "Too many sign-ups from your network. Please wait and try again."
            }
            PageError::TooManyRequests { .. } => {
                "Too many sign-in requests from your network. Please wait and try again."
            }
            PageError::Store(e) => {
                tracing::warn!(error = %e, "store unavailable");
                "The service is temporarily unavailable. Please try again."
            }
            PageError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                "Something went wrong."
            }
        };
        let mut res = pages::error_page(self.status_code(), message);
        match self {
            PageError::TooManyAttempts { retry_after }
            | PageError::TooManySignups { retry_after }
            | PageError::TooManyRequests { retry_after } => {
                if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&retry_after.to_string()) {
                    res.headers_mut().insert(actix_web::http::header::RETRY_AFTER, v);
                }
            }
            PageError::Store(_) => {
                res.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    actix_web::http::header::HeaderValue::from_static("1"),
                );
            }
            _ => {}
        }
        res
    }
}
