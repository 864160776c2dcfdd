//! Small cryptographic helpers shared by the three programs: random identifiers, hashing of
//! secrets for storage, constant-time comparison and authenticated encryption at rest.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// `n` bytes from the operating system's CSPRNG, base64url without padding.
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// `N` random bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    buf
}

/// SHA-256 of `data`, base64url without padding. Used to store secrets (codes, refresh tokens)
/// under their hash so that a dump of the store reveals nothing usable.
pub fn sha256_b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(data))
}

/// HMAC-SHA-256 of `data` under `key`, base64url without padding: a keyed ("salted") hash for
/// values that must be looked up but never stored or logged as they are (session ids).
pub fn keyed_hash(key: &[u8], data: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// [`keyed_hash`] under one fixed key, with the key's HMAC state computed once: each hash then
/// costs the message's blocks only, not the key's two (ids are hashed on every request).
#[derive(Clone)]
pub struct KeyedHasher(Hmac<Sha256>);

impl KeyedHasher {
    /// A hasher under `key`.
    pub fn new(key: &[u8]) -> Self {
        // HMAC accepts keys of any length, so this cannot fail.
        Self(<Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!()))
    }

    /// `keyed_hash(key, data)`.
    pub fn hash(&self, data: &[u8]) -> String {
        self.hash_after("", data)
    }

    /// `prefix` followed by `keyed_hash(key, data)`, in one allocation (store keys).
    pub fn hash_after(&self, prefix: &str, data: &[u8]) -> String {
        let mut mac = self.0.clone();
        mac.update(data);
        let mut out = String::with_capacity(prefix.len() + 43);
        out.push_str(prefix);
        URL_SAFE_NO_PAD.encode_string(mac.finalize().into_bytes(), &mut out);
        out
    }
}

impl std::fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHasher([redacted])")
    }
}

/// Compares two secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Errors of [`Sealer::open`]: the ciphertext was not produced by any of our keys for this context.
#[derive(Debug, thiserror::Error)]
#[error("ciphertext could not be authenticated")]
pub struct OpenError;

/// AES-256-GCM with a list of keys: the first seals, every one may open (key rotation).
/// The `context` (associated data) binds a ciphertext to where it is stored, so a record
/// copied under another key does not decrypt.
#[derive(Clone)]
pub struct Sealer {
    ciphers: Vec<Aes256Gcm>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").field("keys", &self.ciphers.len()).finish()
    }
}

const NONCE_LEN: usize = 12;

impl Sealer {
    /// Builds a sealer from 32-byte keys; the first one encrypts.
    pub fn new(keys: &[[u8; 32]]) -> Self {
        let ciphers =
            keys.iter().map(|k| Aes256Gcm::new_from_slice(k).unwrap_or_else(|_| unreachable!())).collect();
        Self { ciphers }
    }

    /// Encrypts `plaintext`; output is `nonce || ciphertext+tag`.
    pub fn seal(&self, context: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce = random_bytes::<NONCE_LEN>();
        let cipher = &self.ciphers[0];
        let mut out = nonce.to_vec();
        // Encryption with a valid key and in-memory buffers does not fail.
        let ct =
            cipher.encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad: context }).unwrap_or_default();
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts what [`Sealer::seal`] produced under any of the keys.
    pub fn open(&self, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_noting_key(context, sealed).map(|(plain, _)| plain)
    }

    /// Like [`Sealer::open`], and says whether an older key (not the first) opened it: such
    /// data should be sealed again, before that key is dropped.
    pub fn open_noting_key(&self, context: &[u8], sealed: &[u8]) -> Result<(Vec<u8>, bool), OpenError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(OpenError);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| OpenError)?;
        let nonce = Nonce::from(nonce);
        self.ciphers
            .iter()
            .enumerate()
            .find_map(|(i, c)| c.decrypt(&nonce, Payload { msg: ct, aad: context }).ok().map(|p| (p, i > 0)))
            .ok_or(OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_keyed_hasher_gives_the_keyed_hash_of_each_input() {
        let hasher = KeyedHasher::new(b"k");
        for data in [b"first".as_slice(), b"second", b"first"] {
            assert_eq!(hasher.hash(data), keyed_hash(b"k", data));
        }
        assert_ne!(hasher.hash(b"first"), KeyedHasher::new(b"other").hash(b"first"));
        assert_eq!(hasher.hash_after("p:", b"first"), format!("p:{}", keyed_hash(b"k", b"first")));
    }

    #[test]
    fn sealed_data_opens_with_any_listed_key_and_only_in_its_context() {
        let old = random_bytes::<32>();
        let new = random_bytes::<32>();
        let sealed = Sealer::new(&[old]).seal(b"ctx", b"secret");
        let rotated = Sealer::new(&[new, old]);
        assert_eq!(rotated.open(b"ctx", &sealed).unwrap(), b"secret");
        assert!(rotated.open(b"other", &sealed).is_err());
        assert!(Sealer::new(&[new]).open(b"ctx", &sealed).is_err());
        assert_eq!(rotated.open_noting_key(b"ctx", &sealed).unwrap(), (b"secret".to_vec(), true));
        let fresh = rotated.seal(b"ctx", b"secret");
        assert_eq!(rotated.open_noting_key(b"ctx", &fresh).unwrap(), (b"secret".to_vec(), false));
    }

    #[test]
    fn random_tokens_have_the_requested_entropy_and_differ() {
        let a = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token(32));
    }
}
