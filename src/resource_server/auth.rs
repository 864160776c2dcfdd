//! `BearerToken`: an actix extractor that authenticates a request by its `Authorization:
//! Bearer` JWT, statelessly (RFC 6750, RFC 9068). Usable in any actix service: put a
//! `web::Data<AccessTokenVerifier>` in app data and take `BearerToken` as a handler argument:
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use cloakroom::config::PublicUrl;
//! use cloakroom::jwt::{JwksCache, Verifier};
//! use cloakroom::resource_server::{AccessTokenVerifier, BearerToken};
//! use cloakroom::web::ApiError;
//! use std::time::Duration;
//!
//! async fn me(token: BearerToken) -> Result<String, ApiError> {
//!     let claims = token.require_scope("notes")?; // else 403 insufficient_scope
//!     Ok(claims.sub.clone())
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let issuer = PublicUrl::parse("https://login.example").expect("issuer URL");
//! let jwks = JwksCache::for_issuer(reqwest::Client::new(), issuer, Duration::from_secs(30));
//! let verifier = web::Data::new(AccessTokenVerifier::new(Verifier::new(jwks, 10), "https://api.example"));
//! HttpServer::new(move || App::new().app_data(verifier.clone()).route("/me", web::get().to(me)))
//!     .bind("127.0.0.1:8090")?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! Missing, malformed or invalid tokens: 401 `invalid_token` with
//! `WWW-Authenticate: Bearer error="invalid_token"`; the issuer's keys not loadable yet: 503
//! `temporarily_unavailable` (a fault on our side, not the client's token).

use crate::jwt::{AccessClaims, JwtError, TokenType, Verifier};
use crate::web::ApiError;
use crate::web::ErrorCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use std::future::Future;
use std::pin::Pin;

/// Verifies access tokens for one audience (app data).
#[derive(Clone)]
pub struct AccessTokenVerifier {
    /// The verifier of the trusted issuer.
    pub verifier: Verifier,
    /// This service's identifier, required in `aud`.
    pub audience: String,
    /// Counts outcomes (`ok`, `missing`, `invalid`, `keys_unavailable`) when set.
    pub outcomes: Option<prometheus::IntCounterVec>,
    /// The `acr` a token must carry, if any.
    pub required_acr: Option<String>,
    /// The longest time since `auth_time`, if any.
    pub max_auth_age: Option<u64>,
}

impl AccessTokenVerifier {
    /// Access tokens of `verifier`'s issuer for `audience`.
    pub fn new(verifier: Verifier, audience: impl Into<String>) -> Self {
        Self { verifier, audience: audience.into(), outcomes: None, required_acr: None, max_auth_age: None }
    }

    /// Counts every check in `counter`, labelled `outcome`.
    pub fn with_outcome_counter(mut self, counter: prometheus::IntCounterVec) -> Self {
        self.outcomes = Some(counter);
        self
    }

    /// Requires `acr` and an authentication no older than `max_age` seconds of every token;
    /// a weaker or older one is answered as RFC 9470 says.
    pub fn with_required_authentication(mut self, acr: Option<String>, max_age: Option<u64>) -> Self {
        self.required_acr = acr;
        self.max_auth_age = max_age;
        self
    }

    /// 401 `insufficient_user_authentication` (RFC 9470 §3) when `claims` fall short.
    fn check_authentication(&self, claims: &AccessClaims) -> Result<(), ApiError> {
        let acr_ok = self.required_acr.as_ref().is_none_or(|r| claims.acr.as_ref() == Some(r));
        let now = crate::clock::now();
        let age_ok = self
            .max_auth_age
            .is_none_or(|m| claims.auth_time.is_some_and(|t| now.saturating_sub(t) <= m as i64));
        if acr_ok && age_ok {
            return Ok(());
        }
        let mut challenge = String::from(r#"Bearer error="insufficient_user_authentication""#);
        challenge.push_str(r#", error_description="A stronger or more recent authentication is required""#);
        if let Some(acr) = &self.required_acr {
            let quoted = acr.replace('\\', "\\\\").replace('"', "\\\"");
            challenge.push_str(&format!(r#", acr_values="{quoted}""#));
        }
        if let Some(m) = self.max_auth_age {
            challenge.push_str(&format!(", max_age={m}"));
        }
        Err(ApiError::new(
            ErrorCode::InsufficientUserAuthentication,
            "a stronger or more recent authentication is required",
        )
        .with_www_authenticate(challenge))
    }

    fn count(&self, outcome: &str) {
        if let Some(c) = &self.outcomes {
            c.with_label_values(&[outcome]).inc();
        }
    }
}

/// The verified claims of the request's access token.
#[derive(Debug, Clone)]
pub struct BearerToken(pub AccessClaims);

impl BearerToken {
    /// Fails with 403 `insufficient_scope` unless the token carries `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<&AccessClaims, ApiError> {
        if self.0.has_scope(scope) {
            Ok(&self.0)
        } else {
            Err(ApiError::new(ErrorCode::InsufficientScope, format!("the token lacks scope `{scope}`"))
                .with_www_authenticate(format!(r#"Bearer error="insufficient_scope", scope="{scope}""#)))
        }
    }
}

fn invalid_token(description: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidToken, description)
        .with_www_authenticate(r#"Bearer error="invalid_token""#)
}

/// The token of the request's single `Authorization: Bearer` header.
fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let mut headers = req.headers().get_all(AUTHORIZATION);
    let value = headers.next().ok_or_else(|| invalid_token("no bearer token"))?;
    if headers.next().is_some() {
        return Err(invalid_token("more than one Authorization header"));
    }
    let value = value.to_str().map_err(|_| invalid_token("malformed Authorization header"))?;
    let (scheme, token) =
        value.split_once(' ').ok_or_else(|| invalid_token("malformed Authorization header"))?;
    let token = token.trim();
    let b64url = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || !token.chars().all(b64url) {
        return Err(invalid_token("malformed Authorization header"));
    }
    Ok(token.to_string())
}

impl FromRequest for BearerToken {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<AccessTokenVerifier>>().cloned();
        let token = bearer(req);
        Box::pin(async move {
            let verifier =
                verifier.ok_or_else(|| ApiError::internal(&"AccessTokenVerifier missing from app data"))?;
            let token = token.inspect_err(|_| verifier.count("missing"))?;
            match verifier
                .verifier
                .verify::<AccessClaims>(&token, &verifier.audience, TokenType::Access)
                .await
            {
                Ok(claims) => {
                    verifier.count("ok");
                    verifier.check_authentication(&claims)?;
                    Ok(BearerToken(claims))
                }
                Err(JwtError::KeysUnavailable) => {
                    verifier.count("keys_unavailable");
                    Err(ApiError::new(ErrorCode::TemporarilyUnavailable, "the issuer's keys are unavailable")
                        .with_retry_after(1))
                }
                Err(e) => {
                    verifier.count("invalid");
                    tracing::info!(reason = %e, "bearer token refused");
                    Err(invalid_token("the access token is invalid"))
                }
            }
        })
    }
}
