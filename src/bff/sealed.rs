//! Sealed records under an older key: both the session store and token care open records that
//! `session_key` rotation left sealed under a previous key, and seal them again under the current
//! one. The shared piece below both, so neither imports the other.

use super::keys::Keys;
use crate::store::Store;

/// `session_key` rotation: a record opened with an older key is sealed again under the current
/// one (compare-and-swap, keeping its expiry), so that the older key can be dropped once every
/// live session has been used. Failures only postpone that.
pub async fn reseal(store: &Store, keys: &Keys, key: &str, sealed: &[u8], plain: &[u8]) {
    let resealed = keys.sealer.seal(key.as_bytes(), plain);
    let result = match store.ttl(key).await {
        Ok(Some(ttl)) => store.compare_and_swap(key, sealed, &resealed, ttl).await.map(|_| ()),
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "a record sealed under an older key was not resealed yet");
    }
}
