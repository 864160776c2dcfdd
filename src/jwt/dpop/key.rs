//! A DPoP key and the proofs it signs. The key travels (sealed, inside the BFF's token record) as
//! `"<alg>.<base64url of the raw 32-byte private key>"`: 49 bytes for either algorithm. What
//! proofs repeat — the signing key, the encoded header with the public JWK, the thumbprint — is
//! derived once when the key is made or read, so a proof costs one signature.

use super::{DpopAlg, PROOF_TYP, access_token_hash, htu, thumbprint};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A DPoP private key. Cheap to clone; `Debug` shows the algorithm and thumbprint, never the key.
#[derive(Clone)]
pub struct DpopKey(Arc<Inner>);

struct Inner {
    alg: DpopAlg,
    raw: [u8; 32],
    signer: Signer,
    /// base64url of the proof header (`typ`, `alg`, `jwk`), the same for every proof.
    header: String,
    /// RFC 7638 thumbprint of the public key: the `cnf.jkt` of tokens bound to it.
    jkt: String,
}

enum Signer {
    EdDsa(ed25519_dalek::SigningKey),
    Es256(p256::ecdsa::SigningKey),
}

/// The key as a string is not one.
#[derive(Debug, thiserror::Error)]
#[error("not a DPoP key")]
pub struct BadKey;

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey").field("alg", &self.0.alg).field("jkt", &self.0.jkt).finish_non_exhaustive()
    }
}

impl PartialEq for DpopKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.alg == other.0.alg && crate::crypto::constant_time_eq(&self.0.raw, &other.0.raw)
    }
}

/// The claims of a proof; `ath` and `nonce` only when there is one.
#[derive(Serialize)]
struct ProofClaims<'a> {
    jti: String,
    htm: &'a str,
    htu: &'a str,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
}

impl DpopKey {
    /// A fresh random key for `alg`.
    pub fn generate(alg: DpopAlg) -> Self {
        loop {
            // A random 32-byte string is a valid P-256 scalar except with negligible probability.
            if let Ok(key) = Self::from_raw(alg, crate::crypto::random_bytes::<32>()) {
                return key;
            }
        }
    }

    fn from_raw(alg: DpopAlg, raw: [u8; 32]) -> Result<Self, BadKey> {
        let (signer, jwk) = match alg {
            DpopAlg::EdDsa => {
                let key = ed25519_dalek::SigningKey::from_bytes(&raw);
                let x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
                (Signer::EdDsa(key), serde_json::json!({"crv": "Ed25519", "kty": "OKP", "x": x}))
            }
            DpopAlg::Es256 => {
                let key = p256::ecdsa::SigningKey::from_slice(&raw).map_err(|_| BadKey)?;
                let point = key.verifying_key().to_encoded_point(false);
                let (Some(x), Some(y)) = (point.x(), point.y()) else { return Err(BadKey) };
                let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
                (Signer::Es256(key), serde_json::json!({"crv": "P-256", "kty": "EC", "x": x, "y": y}))
            }
        };
        let jkt = thumbprint(&jwk).ok_or(BadKey)?;
        let header = serde_json::json!({"typ": PROOF_TYP, "alg": alg.name(), "jwk": jwk});
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        Ok(Self(Arc::new(Inner { alg, raw, signer, header, jkt })))
    }

    /// The algorithm.
    pub fn alg(&self) -> DpopAlg {
        self.0.alg
    }

    /// The RFC 7638 thumbprint of the public key (`cnf.jkt`).
    pub fn jkt(&self) -> &str {
        &self.0.jkt
    }

    /// A fresh proof for a `htm` request to `url` (its query and fragment are left out), with
    /// `ath` when an access token goes with it and the server's `nonce` when one is known.
    pub fn proof(&self, htm: &str, url: &str, access_token: Option<&str>, nonce: Option<&str>) -> String {
        let claims = ProofClaims {
            jti: crate::crypto::random_token(16),
            htm,
            htu: htu(url),
            iat: crate::clock::now(),
            ath: access_token.map(access_token_hash),
            nonce,
        };
        // Serialising a struct of strings and integers cannot fail.
        let claims = serde_json::to_vec(&claims).unwrap_or_default();
        self.sign_compact(&URL_SAFE_NO_PAD.encode(claims))
    }

    /// `header.payload.signature` with this key's header over an encoded payload.
    fn sign_compact(&self, payload: &str) -> String {
        let mut jws = String::with_capacity(self.0.header.len() + payload.len() + 90);
        jws.push_str(&self.0.header);
        jws.push('.');
        jws.push_str(payload);
        let signature: [u8; 64] = match &self.0.signer {
            Signer::EdDsa(key) => ed25519_dalek::Signer::sign(key, jws.as_bytes()).to_bytes(),
            Signer::Es256(key) => {
                let sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(key, jws.as_bytes());
                sig.to_bytes().into()
            }
        };
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        jws
    }

    /// The compact stored form, `"<alg>.<base64url raw key>"`.
    fn to_stored(&self) -> String {
        format!("{}.{}", self.0.alg.name(), URL_SAFE_NO_PAD.encode(self.0.raw))
    }

    /// Reads the compact stored form.
    pub fn from_stored(s: &str) -> Result<Self, BadKey> {
        let (alg, raw) = s.split_once('.').ok_or(BadKey)?;
        let alg = DpopAlg::from_name(alg).ok_or(BadKey)?;
        let raw: [u8; 32] =
            URL_SAFE_NO_PAD.decode(raw).map_err(|_| BadKey)?.try_into().map_err(|_| BadKey)?;
        Self::from_raw(alg, raw)
    }
}

impl Serialize for DpopKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_stored())
    }
}

impl<'de> Deserialize<'de> for DpopKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_stored(&s).map_err(serde::de::Error::custom)
    }
}
