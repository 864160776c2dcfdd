//! Revoking a session's refresh token at the provider (RFC 7009) when the session ends by the
//! user's or an operator's wish. The provider's own logouts (back-channel) need none.

use super::{TokenCare, TokenHandle, TokenRecord};
use crate::oidc::client;
use crate::store::StoreError;
use std::time::Duration;

impl TokenCare {
    /// Revokes the session's refresh token where the provider offers revocation; a failed
    /// attempt is retried in the background (4 times, growing pauses). Returns the tokens read,
    /// for the logout URL's `id_token_hint`.
    pub async fn revoke_at_provider(&self, handle: &TokenHandle) -> Result<Option<TokenRecord>, StoreError> {
        let tokens = self.read(handle).await?.map(|(_, t)| t);
        let refresh = tokens.as_ref().and_then(|t| t.refresh_token.clone());
        let meta = match (&refresh, self.provider.metadata().await.ok()) {
            (Some(_), Some(meta)) if meta.revocation_endpoint.is_some() => Some(meta),
            _ => None,
        };
        let (Some(refresh), Some(meta)) = (refresh, meta) else { return Ok(tokens) };
        let (http, creds) = (self.http.clone(), self.creds.clone());
        if let Err(e) = client::revoke(&http, &meta, &creds, refresh.expose(), "refresh_token").await {
            tracing::warn!(error = %e, "revocation at logout failed; retrying in the background");
            tokio::spawn(async move {
                for attempt in 1..=4u32 {
                    tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
                    if client::revoke(&http, &meta, &creds, refresh.expose(), "refresh_token").await.is_ok() {
                        return;
                    }
                }
                tracing::warn!("revocation at logout failed for good");
            });
        }
        Ok(tokens)
    }
}
