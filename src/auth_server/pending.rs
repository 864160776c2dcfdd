//! Pending authorization requests: validated `/authorize` parameters kept in the store under
//! a random id while the user signs in (the id travels in the login form). Each is bound to
//! the browser that asked for it by a `__Host-` cookie: only that browser can complete — or
//! spend — it, so whoever learns a request id cannot void someone else's sign-in.

use super::state::{AppState, keys};
use crate::crypto::{constant_time_eq, random_token, sha256_b64};
use crate::store::StoreError;
use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A validated authorization request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    /// The client.
    pub client_id: String,
    /// The registered redirect URI it named.
    pub redirect_uri: String,
    /// Granted scope values.
    pub scope: Vec<String>,
    /// Opaque client state, returned as is.
    pub state: Option<String>,
    /// Put into the ID token.
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// `acr_values` asked for, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values: Vec<String>,
    /// `max_age` asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u64>,
    /// `login_hint`: prefills the username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_hint: Option<String>,
    /// `resource` values named (RFC 8707), each allowed for the client.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// SHA-256 of the browser binding value (the [`BINDING_COOKIE`]); set when saved.
    #[serde(default)]
    pub binding_hash: Option<String>,
}

/// The cookie binding pending requests to a browser.
pub const BINDING_COOKIE: &str = "__Host-cloakroom-op-req";

/// A browser's binding value: the one its cookie holds, or a new one to set.
pub struct Binding {
    value: String,
    is_new: bool,
}

impl Binding {
    /// The binding of the browser sending `req`, or a fresh one.
    pub fn of(req: &HttpRequest) -> Self {
        match cookie_value(req) {
            Some(value) => Self { value, is_new: false },
            None => Self { value: random_token(32), is_new: true },
        }
    }

    /// The cookie to set when the browser had none (a session cookie).
    pub fn cookie(&self) -> Option<Cookie<'static>> {
        self.is_new.then(|| {
            Cookie::build(BINDING_COOKIE, self.value.clone())
                .path("/")
                .secure(true)
                .http_only(true)
                .same_site(SameSite::Lax)
                .finish()
        })
    }
}

fn cookie_value(req: &HttpRequest) -> Option<String> {
    let c = req.cookie(BINDING_COOKIE)?;
    valid_id(c.value()).then(|| c.value().to_string())
}

/// Whether `auth` belongs to the browser sending `req`.
fn is_bound(auth: &AuthRequest, req: &HttpRequest) -> bool {
    let Some(expected) = &auth.binding_hash else { return false };
    cookie_value(req)
        .is_some_and(|v| constant_time_eq(sha256_b64(v.as_bytes()).as_bytes(), expected.as_bytes()))
}

/// Checks the shape of a request id before it is looked up.
pub fn valid_id(id: &str) -> bool {
    id.len() == 43 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Stores `req`, bound to `binding`, and returns its id.
pub async fn save(state: &AppState, req: &AuthRequest, binding: &Binding) -> Result<String, StoreError> {
    let id = random_token(32);
    let mut bound = req.clone();
    bound.binding_hash = Some(sha256_b64(binding.value.as_bytes()));
    let bytes = serde_json::to_vec(&bound).unwrap_or_default();
    let ttl = Duration::from_secs(state.config.authorization_request_ttl_secs);
    state.store.set(&keys::pending(&id), &bytes, ttl).await?;
    Ok(id)
}

/// The pending request with this id, when it belongs to the browser sending `http`.
pub async fn load(state: &AppState, id: &str, http: &HttpRequest) -> Result<Option<AuthRequest>, StoreError> {
    Ok(load_raw(state, id, http).await?.map(|(_, auth)| auth))
}

/// Removes and returns the pending request (it is completed once), when it belongs to the
/// browser sending `http`; another browser's attempt leaves it in place.
pub async fn take(state: &AppState, id: &str, http: &HttpRequest) -> Result<Option<AuthRequest>, StoreError> {
    let Some((raw, auth)) = load_raw(state, id, http).await? else { return Ok(None) };
    Ok(state.store.compare_and_delete(&keys::pending(id), &raw).await?.then_some(auth))
}

async fn load_raw(
    state: &AppState,
    id: &str,
    http: &HttpRequest,
) -> Result<Option<(Vec<u8>, AuthRequest)>, StoreError> {
    if !valid_id(id) {
        return Ok(None);
    }
    let Some(raw) = state.store.get(&keys::pending(id)).await? else { return Ok(None) };
    let Some(auth) = serde_json::from_slice::<AuthRequest>(&raw).ok() else { return Ok(None) };
    Ok(is_bound(&auth, http).then_some((raw, auth)))
}
