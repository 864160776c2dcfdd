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
//! A token bound to a DPoP key (`cnf.jkt`) must come as `Authorization: DPoP` with a proof
//! ([`super::dpop`]); as Bearer it is 401 with `WWW-Authenticate: DPoP error="invalid_token"`,
//! a bad proof 401 with `DPoP error="invalid_dpop_proof"` (or `use_dpop_nonce` and a
//! `DPoP-Nonce`). Missing, malformed or invalid tokens: 401 `invalid_token` with
//! `WWW-Authenticate: Bearer error="invalid_token"`; the issuer's keys not loadable yet: 503
//! `temporarily_unavailable` (a fault on our side, not the client's token).

use super::dpop::{self, DpopPolicy};
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
    /// How DPoP proofs are checked; without it a DPoP-bound token is refused.
    pub dpop: Option<DpopPolicy>,
    /// The `acr` a token must carry, if any.
    pub required_acr: Option<String>,
    /// The longest time since `auth_time`, if any.
    pub max_auth_age: Option<u64>,
}

impl AccessTokenVerifier {
    /// Access tokens of `verifier`'s issuer for `audience`.
    pub fn new(verifier: Verifier, audience: impl Into<String>) -> Self {
        Self {
            verifier,
            audience: audience.into(),
            outcomes: None,
            dpop: None,
            required_acr: None,
            max_auth_age: None,
        }
    }

    /// Accepts DPoP-bound tokens with proofs checked by `policy`.
    pub fn with_dpop(mut self, policy: DpopPolicy) -> Self {
        self.dpop = Some(policy);
        self
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

/// How the request presented its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Dpop,
}

/// The scheme and token of the request's single `Authorization: Bearer|DPoP` header.
fn presented(req: &HttpRequest) -> Result<(Scheme, String), ApiError> {
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
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(invalid_token("malformed Authorization header"));
    };
    if token.is_empty() || !token.chars().all(b64url) {
        return Err(invalid_token("malformed Authorization header"));
    }
    Ok((scheme, token.to_string()))
}

/// A bound token needs the DPoP scheme and a proof of its key; an unbound one needs Bearer.
async fn check_binding(
    verifier: &AccessTokenVerifier,
    req: &HttpRequest,
    scheme: Scheme,
    token: &str,
    claims: &AccessClaims,
) -> Result<(), ApiError> {
    match (scheme, claims.dpop_jkt()) {
        (Scheme::Bearer, None) => Ok(()),
        (Scheme::Bearer, Some(_)) => {
            Err(dpop::challenge("invalid_token", "a DPoP-bound token must be sent with a DPoP proof"))
        }
        (Scheme::Dpop, None) => Err(invalid_token("the access token is not DPoP-bound")),
        (Scheme::Dpop, Some(jkt)) => match &verifier.dpop {
            Some(policy) => policy.check(req, token, jkt).await,
            None => Err(dpop::challenge("invalid_token", "this server does not accept DPoP-bound tokens")),
        },
    }
}

impl FromRequest for BearerToken {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<AccessTokenVerifier>>().cloned();
        let presented = presented(req);
        let req = req.clone();
        Box::pin(async move {
            let verifier =
                verifier.ok_or_else(|| ApiError::internal(&"AccessTokenVerifier missing from app data"))?;
            let (scheme, token) = presented.inspect_err(|_| verifier.count("missing"))?;
            match verifier
                .verifier
                .verify::<AccessClaims>(&token, &verifier.audience, TokenType::Access)
                .await
            {
                Ok(claims) => {
                    if let Err(e) = check_binding(&verifier, &req, scheme, &token, &claims).await {
                        verifier.count("invalid");
                        return Err(e);
                    }
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
