//! The `jti` replay cache of a server checking DPoP proofs: each proof's (key, `jti`) is
//! remembered in the store for as long as the proof could still pass the `iat` window.

use super::VerifiedProof;
use crate::store::{Store, StoreError};
use std::time::Duration;

/// True when this is the first time the proof is seen (and it is now remembered); false for a
/// replay. `prefix` keeps each server's entries apart; `max_age_secs` is its `iat` window.
pub async fn first_use(
    store: &Store,
    prefix: &str,
    proof: &VerifiedProof,
    max_age_secs: i64,
) -> Result<bool, StoreError> {
    let id = crate::crypto::sha256_b64(format!("{}:{}", proof.jkt, proof.jti).as_bytes());
    let key = format!("{prefix}dpop_jti:{id}");
    // Valid for `max_age_secs` after `iat`, and `iat` may be a few seconds ahead: keep it longer.
    let ttl = Duration::from_secs((max_age_secs.max(1) + 10) as u64);
    store.set_nx(&key, b"1", ttl).await
}
