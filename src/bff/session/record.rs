//! What the BFF knows about a logged-in browser: one record under one key of actix-session's
//! state. A leaf: the store, the typed view and the session-ending service all read it.

use super::client_info::ClientInfo;
use crate::bff::tokens::TokenHandle;
use crate::config::Secret;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The key of the record in actix-session's state map.
pub const RECORD_KEY: &str = "rec";

/// What the BFF knows about a logged-in browser. Tokens are elsewhere (`tokens.rs`), reached
/// through `handle`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Random reference to this session's token record (never shown to the browser).
    pub handle: TokenHandle,
    /// Subject at the provider.
    pub sub: String,
    /// The provider's session id (`sid` of the ID token), for back-channel logout.
    #[serde(default)]
    pub sid: Option<String>,
    /// Profile claims shown by `/bff/user`.
    pub claims: serde_json::Map<String, serde_json::Value>,
    /// Unix seconds.
    pub created_at: i64,
    /// Absolute expiry, never extended (and never beyond the refresh token's).
    pub expires_at: i64,
    /// Idle expiry, extended by activity up to `expires_at`.
    pub idle_expires_at: i64,
    /// Token for form posts (logout, notes form), compared in constant time.
    pub csrf_token: Secret,
    /// Opaque random handle naming this session in `/bff/sessions` and the admin CLI; unrelated
    /// to the cookie value (which cannot be derived from it).
    #[serde(default)]
    pub public_id: String,
    /// Unix seconds of the last activity written back (at most every tenth of the idle timeout).
    #[serde(default)]
    pub last_seen: i64,
    /// The coarse client that logged in (user-agent family, network range).
    #[serde(default)]
    pub client: ClientInfo,
    /// The ID token's `acr` (authentication context class), when it had one. This and the
    /// next two are left out of the stored record when absent, to keep it small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The ID token's `amr` (authentication methods, RFC 8176), when it had them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The ID token's `auth_time` (when the user authenticated, Unix seconds), when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

impl SessionRecord {
    /// The record inside an actix-session state map, if any.
    pub fn from_state(state: &HashMap<String, String>) -> Option<Self> {
        state.get(RECORD_KEY).and_then(|s| serde_json::from_str(s).ok())
    }

    /// True when `token` is this session's form token.
    pub fn csrf_token_matches(&self, token: &str) -> bool {
        crate::crypto::constant_time_eq(self.csrf_token.expose().as_bytes(), token.as_bytes())
    }
}
