//! A session's token record: what is stored (sealed) under `tokens:{hashed handle}`, when it is
//! due for a refresh, and how it is opened and kept in the near cache. The session store reads
//! token records too (one round trip for both on a near-cache miss), so this sits below both.
//! Its stored form (compact, tokens as bytes) is in `record/stored.rs`.

use super::audience::Audience;
use crate::bff::keys::Keys;
use crate::bff::near_cache::{NearCache, Ticket};
use crate::config::Secret;
use crate::jwt::dpop::DpopKey;
use crate::oidc::TokenResponse;
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

mod stored;

/// A session's reference to its token record: a random handle (kept in the session record,
/// never shown to the browser) and the store key derived from it. The key is a keyed hash,
/// computed once per parsed session record: a session record in the near cache answers every
/// later request's lookup without hashing again.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenHandle {
    handle: Secret,
    #[serde(skip)]
    key: OnceLock<String>,
}

impl TokenHandle {
    /// A new random handle.
    pub fn random() -> Self {
        Self { handle: Secret::new(crate::crypto::random_token(32)), key: OnceLock::new() }
    }

    /// The store key of the token record (`tokens:{hashed handle}`).
    pub fn key(&self, keys: &Keys) -> &str {
        self.key.get_or_init(|| tokens_key(keys, self.handle.expose()))
    }

    /// The handle read back from a stored session record.
    pub fn from_stored(handle: String) -> Self {
        Self { handle: Secret::new(handle), key: OnceLock::new() }
    }

    /// The handle itself (for the refresh lock's key).
    pub fn expose(&self) -> &str {
        self.handle.expose()
    }
}

impl std::fmt::Debug for TokenHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHandle([redacted])")
    }
}

/// A session's tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The access token sent upstream.
    pub access_token: Secret,
    /// When it expires (Unix seconds).
    pub access_expires_at: i64,
    /// When it was obtained.
    pub access_issued_at: i64,
    /// The refresh token, if any.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// When the refresh token expires, if the provider said.
    #[serde(default)]
    pub refresh_expires_at: Option<i64>,
    /// The latest ID token, kept only for `bff.logout_id_token_hint` (its `id_token_hint`): by
    /// default nothing reads it after the login, and it is about half of the record.
    #[serde(default)]
    pub id_token: Option<Secret>,
    /// The session's absolute expiry: the record's TTL.
    pub session_expires_at: i64,
    /// The session's DPoP key (`bff.oidc.dpop = "on"`): the tokens are bound to it, and every
    /// token and upstream call carries a proof it signed. Made at login, kept for the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<DpopKey>,
    /// Access tokens for routes' own audiences (`resource`/`scopes`), each obtained from the
    /// refresh token above; short field names, since every session carries them.
    #[serde(default, skip_serializing_if = "Vec::is_empty", rename = "aud")]
    pub audiences: Vec<AudienceToken>,
}

/// An access token for one audience of a session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AudienceToken {
    /// The audience's id ([`Audience::id`]).
    #[serde(rename = "i")]
    pub id: String,
    /// The access token.
    #[serde(rename = "t")]
    pub access_token: Secret,
    /// When it expires (Unix seconds).
    #[serde(rename = "e")]
    pub expires_at: i64,
    /// When it was obtained.
    #[serde(rename = "n")]
    pub issued_at: i64,
}

/// One access token of a record, with its times.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// The token.
    pub token: &'a Secret,
    /// When it expires.
    pub expires_at: i64,
    /// When it was obtained.
    pub issued_at: i64,
}

impl Access<'_> {
    /// True when it expires within `min(skew, lifetime / 2)`.
    pub fn due(&self, now: i64, skew_secs: u64) -> bool {
        let lifetime = (self.expires_at - self.issued_at).max(0);
        let margin = (skew_secs as i64).min(lifetime / 2);
        self.expires_at - now <= margin
    }
}

/// Access token lifetime assumed when the provider does not say.
const DEFAULT_EXPIRES_IN: u64 = 60;

impl TokenRecord {
    /// The record for a token response; members the response lacks are kept from `previous`.
    /// The ID token is kept only when `keep_id_token`.
    pub fn from_response(
        res: &TokenResponse,
        session_expires_at: i64,
        previous: Option<&TokenRecord>,
        keep_id_token: bool,
    ) -> Self {
        let now = crate::clock::now();
        let refresh_expires_at = match (res.refresh_expires_in, res.refresh_token.is_some()) {
            (Some(secs), _) if secs > 0 => Some(now + secs as i64),
            (_, true) => None,
            _ => previous.and_then(|p| p.refresh_expires_at),
        };
        Self {
            access_token: res.access_token.clone(),
            access_expires_at: now + res.expires_in.unwrap_or(DEFAULT_EXPIRES_IN) as i64,
            access_issued_at: now,
            refresh_token: res
                .refresh_token
                .clone()
                .or_else(|| previous.and_then(|p| p.refresh_token.clone())),
            refresh_expires_at,
            id_token: res
                .id_token
                .clone()
                .or_else(|| previous.and_then(|p| p.id_token.clone()))
                .filter(|_| keep_id_token),
            session_expires_at,
            dpop_key: previous.and_then(|p| p.dpop_key.clone()),
            audiences: previous.map(|p| p.audiences.clone()).unwrap_or_default(),
        }
    }

    /// This record after a token response for `audience`: the audience's access token
    /// replaced, the login's kept, the refresh token rotated when the response rotated it.
    pub fn with_audience_response(
        &self,
        audience: &Audience,
        res: &TokenResponse,
        keep_id_token: bool,
    ) -> Self {
        let mut new = Self::from_response(res, self.session_expires_at, Some(self), keep_id_token);
        new.access_token = self.access_token.clone();
        new.access_expires_at = self.access_expires_at;
        new.access_issued_at = self.access_issued_at;
        let entry = AudienceToken {
            id: audience.id.clone(),
            access_token: res.access_token.clone(),
            expires_at: crate::clock::now() + res.expires_in.unwrap_or(DEFAULT_EXPIRES_IN) as i64,
            issued_at: crate::clock::now(),
        };
        match new.audiences.iter_mut().find(|t| t.id == audience.id) {
            Some(t) => *t = entry,
            None => new.audiences.push(entry),
        }
        new
    }

    /// The access token for `audience` (the login's for `None`), if the record holds one.
    pub fn access(&self, audience: Option<&Audience>) -> Option<Access<'_>> {
        match audience {
            None => Some(Access {
                token: &self.access_token,
                expires_at: self.access_expires_at,
                issued_at: self.access_issued_at,
            }),
            Some(a) => self.audiences.iter().find(|t| t.id == a.id).map(|t| Access {
                token: &t.access_token,
                expires_at: t.expires_at,
                issued_at: t.issued_at,
            }),
        }
    }

    /// True when the access token for `audience` is missing or expires within
    /// `min(skew, lifetime / 2)`.
    pub fn due_for(&self, audience: Option<&Audience>, now: i64, skew_secs: u64) -> bool {
        self.access(audience).is_none_or(|a| a.due(now, skew_secs))
    }

    /// True when the login's access token expires within `min(skew, lifetime / 2)`.
    pub fn refresh_due(&self, now: i64, skew_secs: u64) -> bool {
        self.due_for(None, now, skew_secs)
    }

    pub(super) fn ttl(&self) -> Duration {
        Duration::from_secs((self.session_expires_at - crate::clock::now()).max(1) as u64)
    }
}

/// A token record as the near cache keeps it: the stored bytes and what they open to.
pub type CachedTokens = (Vec<u8>, TokenRecord);

/// Opens the sealed token record stored under `key`; true when an older key sealed it.
pub fn open_tokens(keys: &Keys, key: &str, raw: &[u8]) -> Option<(TokenRecord, bool)> {
    let (plain, old_key) = keys.sealer.open_noting_key(key.as_bytes(), raw).ok()?;
    Some((TokenRecord::from_stored(&plain)?, old_key))
}

/// Store key of the token record of the session with `handle`.
fn tokens_key(keys: &Keys, handle: &str) -> String {
    keys.hashed_key("tokens:", handle)
}

/// Opens `raw` (read under `ticket`), reseals it when an older key sealed it, and keeps it in
/// `cache` until the session's end.
pub async fn cache_tokens(
    store: &Store,
    cache: &NearCache,
    keys: &Keys,
    key: &str,
    ticket: Option<Ticket>,
    raw: Vec<u8>,
) -> Option<Arc<CachedTokens>> {
    let (record, old_key) = open_tokens(keys, key, &raw)?;
    if old_key {
        crate::bff::sealed::reseal(store, keys, key, &raw, &record.to_stored()).await;
    }
    let expires_at = record.session_expires_at;
    let cached = Arc::new((raw, record));
    cache.fill(key, ticket, cached.clone(), expires_at);
    Some(cached)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(issued: i64, expires: i64) -> TokenRecord {
        TokenRecord {
            access_token: Secret::new("a"),
            access_expires_at: expires,
            access_issued_at: issued,
            refresh_token: None,
            refresh_expires_at: None,
            id_token: None,
            session_expires_at: expires + 1000,
            dpop_key: None,
            audiences: Vec::new(),
        }
    }

    #[test]
    fn a_dpop_key_adds_at_most_64_bytes_to_the_record_and_none_when_dpop_is_off() {
        let plain = record(1000, 1300);
        let with_key = TokenRecord {
            dpop_key: Some(DpopKey::generate(crate::jwt::dpop::DpopAlg::EdDsa)),
            ..plain.clone()
        };
        let (a, b) = (plain.to_stored(), with_key.to_stored());
        assert_eq!(TokenRecord::from_stored(&a).unwrap().dpop_key, None);
        assert!(b.len() - a.len() <= 64, "{} bytes", b.len() - a.len());
        let back = TokenRecord::from_stored(&b).unwrap();
        assert_eq!(back.dpop_key, with_key.dpop_key);
    }

    #[test]
    fn a_refresh_is_due_within_the_skew_but_never_earlier_than_half_the_lifetime() {
        let r = record(1000, 1300);
        assert!(!r.refresh_due(1200, 30));
        assert!(r.refresh_due(1271, 30));
        let short = record(1000, 1010);
        assert!(!short.refresh_due(1004, 30), "half of 10 s is 5 s");
        assert!(short.refresh_due(1005, 30));
    }
}
