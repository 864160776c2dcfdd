//! `POST /bff/backchannel-logout`: OpenID Connect Back-Channel Logout 1.0 (§2.6-2.8).
//!
//! The provider calls it server to server with a form-encoded `logout_token`, so none of the
//! browser defences (CSRF header, `Origin`, content-type refusal) apply here: the signed token is
//! the only credential. It is validated only through [`crate::jwt::Verifier`] (`TokenType::Logout`,
//! audience = `client_id`; it also checks the logout shape: `events`, no `nonce`, `jti`,
//! `sub`/`sid`), then parsed here into whose sessions end — [`LogoutClaims::check`] repeats
//! those shape rules so the typed result never rests on a caller-side assumption — its `jti` is
//! remembered until the token expires (a replay is refused), and
//! every matching session ends in the shared store — hence on every instance. The provider's
//! tokens are not revoked: the provider ended them itself.

use super::session::{EndTarget, SessionEnder};
use super::state::BffState;
use crate::jwt::{JwtError, TokenType};
use crate::store::StoreError;
use crate::web::ApiError;
use crate::web::ErrorCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use prometheus::{IntCounterVec, Opts, Registry};
use serde::Deserialize;
use std::time::Duration;

/// The `events` member a logout token must carry (BCL §2.4).
pub use crate::jwt::verify::BACKCHANNEL_LOGOUT_EVENT as BACKCHANNEL_EVENT;

/// Largest request body read; a logout token is far smaller.
const MAX_BODY: usize = 32 * 1024;

/// Logout tokens valid for longer than this are refused: their `jti` must be remembered until
/// they expire, and a provider has no reason to issue long-lived ones (they are sent at once).
pub const MAX_REMAINING_LIFETIME_SECS: i64 = 24 * 3600;

/// Why a back-channel logout request was refused. Never carries the token.
#[derive(Debug, thiserror::Error)]
pub enum BackchannelError {
    /// Not a form post with exactly one `logout_token`.
    #[error("expected a form post with one logout_token")]
    BadRequest,
    /// The body is over the limit.
    #[error("request body over the limit")]
    TooLarge,
    /// Signature, algorithm, type, `iss`, `aud`, `iat`, `exp` or a claim type is wrong.
    #[error("the logout token is invalid: {0}")]
    Token(JwtError),
    /// A logout-token rule the verifier does not know (BCL §2.4/§2.6).
    #[error("the logout token is invalid: {0}")]
    Claims(&'static str),
    /// This `jti` was seen before.
    #[error("the logout token was already used")]
    Replayed,
    /// The issuer's keys could not be fetched; the provider may retry.
    #[error("the issuer's keys are unavailable")]
    KeysUnavailable,
    /// The store failed; the provider may retry.
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
}

impl BackchannelError {
    fn outcome(&self) -> &'static str {
        match self {
            Self::BadRequest | Self::TooLarge => "bad_request",
            Self::Token(_) | Self::Claims(_) => "invalid_token",
            Self::Replayed => "replayed",
            Self::KeysUnavailable => "keys_unavailable",
            Self::Store(_) => "store_error",
        }
    }
}

impl From<BackchannelError> for ApiError {
    fn from(e: BackchannelError) -> Self {
        match &e {
            BackchannelError::Store(cause) => ApiError::store_unavailable(cause),
            BackchannelError::KeysUnavailable => {
                ApiError::new(ErrorCode::AuthServerUnavailable, e.to_string()).with_retry_after(1)
            }
            BackchannelError::TooLarge => ApiError::new(ErrorCode::PayloadTooLarge, e.to_string()),
            _ => ApiError::new(ErrorCode::InvalidRequest, e.to_string()),
        }
    }
}

/// The claims of a logout token as signed; [`LogoutClaims::check`] turns them into a
/// [`LogoutRequest`].
#[derive(Debug, Deserialize)]
pub struct LogoutClaims {
    iss: String,
    exp: i64,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    sid: Option<String>,
    #[serde(default)]
    events: Option<serde_json::Map<String, serde_json::Value>>,
    /// Everything else: only to see that no `nonce` member is present, even `null`.
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// A checked logout token.
#[derive(Debug, Clone)]
pub struct LogoutRequest {
    /// Store key that remembers the token's `jti` (`bcl:jti:{sha256(iss + jti)}`).
    pub jti_key: String,
    /// How long that key must live: the token's remaining lifetime plus the leeway.
    pub jti_ttl: Duration,
    /// Whose sessions end.
    pub target: EndTarget,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

impl LogoutClaims {
    /// Applies BCL §2.4/§2.6 beyond what the verifier checked, at time `now`.
    pub fn check(self, now: i64, leeway_secs: u64) -> Result<LogoutRequest, BackchannelError> {
        if self.other.contains_key("nonce") {
            return Err(BackchannelError::Claims("a nonce is present"));
        }
        let jti = non_empty(self.jti).ok_or(BackchannelError::Claims("jti is missing"))?;
        let events = self.events.ok_or(BackchannelError::Claims("events is missing"))?;
        if !events.get(BACKCHANNEL_EVENT).is_some_and(serde_json::Value::is_object) {
            return Err(BackchannelError::Claims("events lacks the back-channel logout event"));
        }
        let target = match (non_empty(self.sid), non_empty(self.sub)) {
            (Some(sid), _) => EndTarget::Sid(sid),
            (None, Some(sub)) => EndTarget::Sub(sub),
            (None, None) => return Err(BackchannelError::Claims("neither sid nor sub is present")),
        };
        let remaining = self.exp.saturating_sub(now);
        if remaining > MAX_REMAINING_LIFETIME_SECS {
            return Err(BackchannelError::Claims("the token is valid for too long"));
        }
        let ttl = remaining.saturating_add(leeway_secs as i64).max(1) as u64;
        let jti_hash = crate::crypto::sha256_b64(format!("{}{}", self.iss, jti).as_bytes());
        Ok(LogoutRequest {
            jti_key: format!("bcl:jti:{jti_hash}"),
            jti_ttl: Duration::from_secs(ttl),
            target,
        })
    }
}

/// What the endpoint needs besides [`BffState`]: the session store and its counter.
#[derive(Clone)]
pub struct Backchannel {
    ender: SessionEnder,
    outcomes: IntCounterVec,
}

impl Backchannel {
    /// Creates the endpoint's state and registers `cloakroom_backchannel_logout_total{outcome}`.
    pub fn new(ender: SessionEnder, registry: &Registry) -> Result<Self, prometheus::Error> {
        let outcomes = IntCounterVec::new(
            Opts::new("cloakroom_backchannel_logout_total", "Back-channel logout requests by outcome"),
            &["outcome"],
        )?;
        registry.register(Box::new(outcomes.clone()))?;
        for o in ["success", "bad_request", "invalid_token", "replayed", "keys_unavailable", "store_error"] {
            outcomes.with_label_values(&[o]);
        }
        Ok(Self { ender, outcomes })
    }
}

async fn read_body(mut payload: web::Payload) -> Result<Vec<u8>, BackchannelError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BackchannelError::BadRequest)?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(BackchannelError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The one `logout_token` field of the form; a repeated field is refused.
fn logout_token(body: &[u8]) -> Result<String, BackchannelError> {
    let mut found = url::form_urlencoded::parse(body).filter(|(k, _)| k == "logout_token");
    match (found.next(), found.next()) {
        (Some((_, v)), None) if !v.is_empty() => Ok(v.into_owned()),
        _ => Err(BackchannelError::BadRequest),
    }
}

/// `POST /bff/backchannel-logout`: 200 once every matching session is gone; 400
/// `invalid_request` for any bad or replayed token; 503 when the store or the issuer's keys
/// are unavailable (the provider retries). Always `Cache-Control: no-store`.
pub async fn backchannel_logout(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<BffState>,
    bcl: web::Data<Backchannel>,
) -> Result<HttpResponse, ApiError> {
    match handle(&req, payload, &state, &bcl).await {
        Ok(ended) => {
            bcl.outcomes.with_label_values(&["success"]).inc();
            tracing::info!(sessions = ended, "back-channel logout ended sessions");
            Ok(HttpResponse::Ok().insert_header(crate::web::no_store()).finish())
        }
        Err(e) => {
            bcl.outcomes.with_label_values(&[e.outcome()]).inc();
            if !matches!(e, BackchannelError::Store(_)) {
                tracing::info!(error = %e, "back-channel logout refused");
            }
            Err(e.into())
        }
    }
}

async fn handle(
    req: &HttpRequest,
    payload: web::Payload,
    state: &BffState,
    bcl: &Backchannel,
) -> Result<usize, BackchannelError> {
    if !crate::web::is_form(req) {
        return Err(BackchannelError::BadRequest);
    }
    let token = logout_token(&read_body(payload).await?)?;
    let claims: LogoutClaims =
        state.provider.verifier().verify(&token, &state.creds.client_id, TokenType::Logout).await.map_err(
            |e| match e {
                JwtError::KeysUnavailable => BackchannelError::KeysUnavailable,
                other => BackchannelError::Token(other),
            },
        )?;
    let logout = claims.check(crate::clock::now(), super::id_token::LEEWAY_SECS)?;
    if !state.store.set_nx(&logout.jti_key, b"1", logout.jti_ttl).await? {
        return Err(BackchannelError::Replayed);
    }
    match bcl.ender.end_target(&logout.target).await {
        Ok(n) => Ok(n),
        Err(e) => {
            // Let the provider's retry of this very token through: forget its jti.
            if let Err(del) = state.store.del(&logout.jti_key).await {
                tracing::warn!(error = %del, "could not forget the jti of a failed back-channel logout");
            }
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(overrides: serde_json::Value) -> LogoutClaims {
        let mut c = json!({ "iss": "http://op", "aud": "bff", "iat": 1000, "exp": 1120, "jti": "j-1",
                            "sub": "alice", "sid": "s-1", "events": { BACKCHANNEL_EVENT: {} } });
        for (k, v) in overrides.as_object().unwrap() {
            match v {
                serde_json::Value::String(s) if s == "<absent>" => {
                    c.as_object_mut().unwrap().remove(k);
                }
                _ => c[k] = v.clone(),
            }
        }
        serde_json::from_value(c).unwrap()
    }

    #[test]
    fn a_token_with_sid_and_sub_targets_the_sid_and_remembers_its_jti_until_expiry() {
        let req = claims(json!({})).check(1000, 30).unwrap();
        assert_eq!(req.target, EndTarget::Sid("s-1".into()));
        assert_eq!(req.jti_ttl, Duration::from_secs(150));
        let expected = crate::crypto::sha256_b64(b"http://opj-1");
        assert_eq!(req.jti_key, format!("bcl:jti:{expected}"));
    }

    #[test]
    fn a_token_with_only_sub_targets_the_subject() {
        let req = claims(json!({ "sid": "<absent>" })).check(1000, 30).unwrap();
        assert_eq!(req.target, EndTarget::Sub("alice".into()));
    }

    #[test]
    fn every_rule_beyond_the_verifier_refuses_its_mutation() {
        for (what, c) in [
            ("nonce", json!({ "nonce": "n" })),
            ("null nonce", json!({ "nonce": null })),
            ("no jti", json!({ "jti": "<absent>" })),
            ("empty jti", json!({ "jti": "" })),
            ("no events", json!({ "events": "<absent>" })),
            ("other event", json!({ "events": { "http://example.com/other": {} } })),
            ("event not an object", json!({ "events": { BACKCHANNEL_EVENT: "yes" } })),
            ("neither sid nor sub", json!({ "sid": "<absent>", "sub": "<absent>" })),
            ("empty sid and sub", json!({ "sid": "", "sub": "" })),
            ("valid for days", json!({ "exp": 1000 + 3 * 86400 })),
        ] {
            assert!(claims(c).check(1000, 30).is_err(), "{what}");
        }
    }

    #[test]
    fn claims_of_the_wrong_json_type_do_not_parse() {
        for c in [json!({ "sid": 5 }), json!({ "jti": 7 }), json!({ "events": [] })] {
            let mut base = json!({ "iss": "i", "exp": 1, "jti": "j", "sub": "s", "events": {} });
            for (k, v) in c.as_object().unwrap() {
                base[k] = v.clone();
            }
            assert!(serde_json::from_value::<LogoutClaims>(base).is_err());
        }
    }
}
