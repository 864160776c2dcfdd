//! Every error code the three programs put on the wire (`{"error": code, …}`), with the HTTP
//! status it always travels with. The contract (`shared/contract.md`, README "Contract") lists
//! them; adding one here is the only way to send a new one.

use actix_web::http::StatusCode;

/// A machine-readable error code and its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 400: malformed or refused input.
    InvalidRequest,
    /// 401: no cookie, or an unknown, expired or ended session.
    Unauthenticated,
    /// 401: the provider refused the refresh; the session has ended.
    SessionExpired,
    /// 403: a possible cross-site request (missing `X-CSRF: 1`, foreign `Origin`, bad form token).
    Csrf,
    /// 404: no such resource.
    NotFound,
    /// 405: a method this endpoint or route never takes.
    MethodNotAllowed,
    /// 409: the request conflicts with the resource's state.
    Conflict,
    /// 413: the request body is over the limit.
    PayloadTooLarge,
    /// 415: a content type a cross-site form could send, on a JSON endpoint.
    UnsupportedMediaType,
    /// 429: a rate limit was reached (`Retry-After` says when to try again).
    TooManyRequests,
    /// 500: an internal error; the cause is logged, never sent.
    ServerError,
    /// 502: the upstream could not be reached.
    UpstreamUnavailable,
    /// 503: the session store could not be reached; the session is kept.
    StoreUnavailable,
    /// 503: the auth server could not be reached while a refresh was due; the session is kept.
    AuthServerUnavailable,
    /// 503: a dependency (the issuer's keys) is briefly unavailable.
    TemporarilyUnavailable,
    /// 504: the upstream did not answer in time.
    UpstreamTimeout,
    /// 401: a bearer token that is missing, malformed, expired or not for this server (RFC 6750).
    InvalidToken,
    /// 403: a bearer token without the scope the resource needs (RFC 6750).
    InsufficientScope,
    /// 401: client authentication failed (RFC 6749 §5.2).
    InvalidClient,
    /// 400: the grant is invalid, expired, revoked or not this client's (RFC 6749 §5.2).
    InvalidGrant,
    /// 400: the requested scope is invalid or exceeds the grant (RFC 6749 §5.2).
    InvalidScope,
    /// 400: a grant type this server does not support (RFC 6749 §5.2).
    UnsupportedGrantType,
    /// 400: the requested resource is invalid, unknown or not allowed (RFC 8707 §2).
    InvalidTarget,
    /// 400: the client may not use this grant type (RFC 6749 §5.2).
    UnauthorizedClient,
    /// 409: the reference notes API's per-user limit.
    TooManyNotes,
    /// 400: at a token endpoint, a DPoP proof that is missing, malformed, replayed, or not for
    /// this request or key (RFC 9449 §5). A resource server says it as 401 `invalid_token` with
    /// `WWW-Authenticate: DPoP error="invalid_dpop_proof"` (§7.1).
    InvalidDpopProof,
    /// 400: at a token endpoint, the DPoP proof must carry the nonce the `DPoP-Nonce` header
    /// gives (RFC 9449 §8). A resource server says it as 401 `invalid_token` with
    /// `WWW-Authenticate: DPoP error="use_dpop_nonce"` (§9).
    UseDpopNonce,
    /// 400: `/bff/login` got a parameter that is not allowed, repeated or malformed.
    InvalidLoginParameter,
    /// 401: the token's authentication is too weak or too old for this resource (RFC 9470).
    InsufficientUserAuthentication,
    /// 401: the session's authentication is too weak or too old for this call (RFC 9470); the
    /// answer names the `login_url` that asks for what is needed.
    StepUpRequired,
    /// 403: the provider would not issue a token for this route's resource or scopes (or the
    /// application's own token); the session is kept.
    TokenRefused,
}

impl ErrorCode {
    /// The code as sent.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Unauthenticated => "unauthenticated",
            Self::SessionExpired => "session_expired",
            Self::Csrf => "csrf",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TooManyRequests => "too_many_requests",
            Self::ServerError => "server_error",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::StoreUnavailable => "store_unavailable",
            Self::AuthServerUnavailable => "auth_server_unavailable",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidTarget => "invalid_target",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::TooManyNotes => "too_many_notes",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InvalidLoginParameter => "invalid_login_parameter",
            Self::StepUpRequired => "step_up_required",
            Self::TokenRefused => "token_refused",
            Self::InsufficientUserAuthentication => "insufficient_user_authentication",
        }
    }

    /// The status this code is always sent with.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest
            | Self::InvalidGrant
            | Self::InvalidScope
            | Self::UnsupportedGrantType
            | Self::InvalidTarget
            | Self::UnauthorizedClient
            | Self::InvalidDpopProof
            | Self::UseDpopNonce
            | Self::InvalidLoginParameter => StatusCode::BAD_REQUEST,
            Self::Unauthenticated
            | Self::SessionExpired
            | Self::InvalidToken
            | Self::InvalidClient
            | Self::StepUpRequired
            | Self::InsufficientUserAuthentication => StatusCode::UNAUTHORIZED,
            Self::Csrf | Self::InsufficientScope | Self::TokenRefused => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict | Self::TooManyNotes => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            Self::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Self::StoreUnavailable | Self::AuthServerUnavailable | Self::TemporarilyUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
