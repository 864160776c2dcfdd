//! The application's own tokens (client credentials, RFC 6749 §4.4) for `token = "client"`
//! routes: one per audience, shared by every session and instance. Each is kept sealed in the
//! store under `client-token:{audience id}` (with its DPoP key when `bff.oidc.dpop` is on) and
//! in this process; a new one is obtained single-flight — in this process by the per-key
//! mutex that session refreshes use, across instances by the same store lock, one per audience.

use super::audience::Audience;
use super::lock::{Notice, Wake};
use super::record::Access;
use super::{TokenCare, TokenError, UpstreamToken};
use crate::config::Secret;
use crate::jwt::dpop::DpopKey;
use crate::oidc::client;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One client token, as stored and kept in the process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ClientToken {
    access_token: Secret,
    expires_at: i64,
    issued_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dpop_key: Option<DpopKey>,
}

impl ClientToken {
    fn access(&self) -> Access<'_> {
        Access { token: &self.access_token, expires_at: self.expires_at, issued_at: self.issued_at }
    }

    fn upstream(&self) -> UpstreamToken {
        UpstreamToken { token: self.access_token.clone(), dpop: self.dpop_key.clone() }
    }
}

/// This process's copies, by store key.
pub(super) type ClientMemo = Mutex<HashMap<String, Arc<ClientToken>>>;

fn store_key(audience: &Audience) -> String {
    format!("client-token:{}", audience.id)
}

impl TokenCare {
    /// The application's token for `audience`: this process's copy while it is not due, else
    /// the store's, else a new one from the provider.
    pub async fn client_token(&self, audience: &Audience) -> Result<UpstreamToken, TokenError> {
        let key = store_key(audience);
        if let Some(t) = self.memo_get(&key)
            && !t.access().due(crate::clock::now(), self.skew_secs)
        {
            return Ok(t.upstream());
        }
        Box::pin(self.client_token_locked(audience, &key, None)).await
    }

    /// After an upstream refused `rejected`: a new token unless someone already replaced it.
    pub async fn client_token_after_rejection(
        &self,
        audience: &Audience,
        rejected: &Secret,
    ) -> Result<UpstreamToken, TokenError> {
        let key = store_key(audience);
        Box::pin(self.client_token_locked(audience, &key, Some(rejected))).await
    }

    async fn client_token_locked(
        &self,
        audience: &Audience,
        key: &str,
        rejected: Option<&Secret>,
    ) -> Result<UpstreamToken, TokenError> {
        let skew = self.skew_secs;
        let needed = |t: &ClientToken| {
            t.access().due(crate::clock::now(), skew) || rejected.is_some_and(|r| *r == t.access_token)
        };
        let lock = self.process_lock(key);
        let result = {
            let _one_at_a_time = lock.lock().await;
            match self.memo_get(key).filter(|t| !needed(t)) {
                Some(t) => Ok(t.upstream()),
                None => self.client_token_flight(audience, key, &needed).await,
            }
        };
        self.release_process_lock(key, &lock);
        result
    }

    /// Across instances: the stored token when it will do, else the store lock and a grant,
    /// else a wait for the holder.
    async fn client_token_flight(
        &self,
        audience: &Audience,
        key: &str,
        needed: &impl Fn(&ClientToken) -> bool,
    ) -> Result<UpstreamToken, TokenError> {
        let hashed = self.keys.hash_id(key);
        let deadline = tokio::time::Instant::now() + self.lock.wait;
        let mut rx = self.lock.subscribe();
        loop {
            if let Some(t) = self.read_client_token(key).await?.filter(|t| !needed(t)) {
                return Ok(self.memo_put(key, t).upstream());
            }
            if let Some(held) = self.lock.try_acquire(&hashed).await? {
                let result = self.obtain_client_token(audience, key).await;
                let notice = match &result {
                    Ok(_) => Notice::Done,
                    Err(TokenError::AudienceRefused) => Notice::Refused,
                    Err(_) => Notice::Unavailable,
                };
                let lock = self.lock.clone();
                tokio::spawn(async move { lock.release(held, notice).await });
                return result;
            }
            match self.lock.wait(&hashed, &mut rx, deadline).await? {
                Wake::Notice(Notice::Done) | Wake::Recheck => {}
                Wake::Notice(Notice::Refused) => return Err(TokenError::AudienceRefused),
                Wake::Notice(_) | Wake::TimedOut => return Err(TokenError::AuthServerUnavailable),
            }
        }
    }

    /// A client-credentials grant for `audience`, stored for the other instances.
    #[tracing::instrument(name = "client token", level = "debug", skip_all)]
    async fn obtain_client_token(&self, audience: &Audience, key: &str) -> Result<UpstreamToken, TokenError> {
        let unavailable = |_| TokenError::AuthServerUnavailable;
        let alg = self.provider.dpop_alg().await.map_err(unavailable)?;
        let dpop = alg.map(DpopKey::generate);
        let meta = self.provider.metadata().await.map_err(unavailable)?;
        let form = audience.form();
        let call = client::client_credentials(&self.http, &meta, &self.creds, &form, dpop.as_ref());
        let res = match tokio::time::timeout(self.lock.ttl, call).await {
            Ok(Ok(res)) => res,
            Ok(Err(e)) if e.is_audience_refused() || e.is_grant_dead() => {
                tracing::warn!(error = %e, "the provider refused the application's token");
                self.count("client_refused");
                return Err(TokenError::AudienceRefused);
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the application's token could not be had");
                self.count("client_unavailable");
                return Err(TokenError::AuthServerUnavailable);
            }
            Err(_) => return Err(TokenError::AuthServerUnavailable),
        };
        let now = crate::clock::now();
        let lifetime = res.expires_in.unwrap_or(60).max(1);
        let token = ClientToken {
            access_token: res.access_token,
            expires_at: now + lifetime as i64,
            issued_at: now,
            dpop_key: dpop,
        };
        let plain = serde_json::to_vec(&token).unwrap_or_default();
        let sealed = self.keys.sealer.seal(key.as_bytes(), &plain);
        if let Err(e) = self.store.set(key, &sealed, Duration::from_secs(lifetime)).await {
            // This instance uses it anyway; the others obtain their own.
            tracing::warn!(error = %e, "the application's token could not be stored");
        }
        self.count("client_success");
        Ok(self.memo_put(key, token).upstream())
    }

    async fn read_client_token(&self, key: &str) -> Result<Option<ClientToken>, TokenError> {
        let Some(raw) = self.store.get(key).await? else { return Ok(None) };
        let plain = self.keys.sealer.open(key.as_bytes(), &raw).ok();
        Ok(plain.and_then(|p| serde_json::from_slice(&p).ok()))
    }

    fn memo_get(&self, key: &str) -> Option<Arc<ClientToken>> {
        self.client_memo.lock().unwrap_or_else(|p| p.into_inner()).get(key).cloned()
    }

    fn memo_put(&self, key: &str, token: ClientToken) -> Arc<ClientToken> {
        let token = Arc::new(token);
        self.client_memo.lock().unwrap_or_else(|p| p.into_inner()).insert(key.to_owned(), token.clone());
        token
    }
}
