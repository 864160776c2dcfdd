//! From a JWK set document to verification keys, each bound to the ONE algorithm it may verify
//! (RFC 8725 §3.1): the JWK's own `alg` when present (and consistent with the key), else the
//! only sensible one for its type and curve.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use std::collections::HashMap;

/// Smallest RSA modulus accepted (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;

/// A verification key and the algorithm bound to it.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The key.
    pub key: DecodingKey,
    /// The only algorithm a token signed with this key may use.
    pub alg: Algorithm,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyingKey").field("alg", &self.alg).finish_non_exhaustive()
    }
}

/// The usable signing keys of a JWK set, by `kid`, or `None` when `doc` is not a JWK set at
/// all (no `keys` array). Keys without `kid`, keys for another use, symmetric keys, weak RSA
/// keys and unsupported types are skipped one by one, so one odd key does not hide the others.
pub fn parse_jwks(doc: &serde_json::Value) -> Option<HashMap<String, VerifyingKey>> {
    let keys = doc.get("keys")?.as_array()?;
    let mut out = HashMap::new();
    for raw in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else { continue };
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        if let Some(key) = verifying_key(&jwk) {
            out.insert(kid, key);
        }
    }
    Some(out)
}

/// The verification key of one JWK, or `None` when it must not verify signatures.
pub fn verifying_key(jwk: &Jwk) -> Option<VerifyingKey> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return None;
    }
    let alg = bound_algorithm(jwk)?;
    if let AlgorithmParameters::RSA(p) = &jwk.algorithm
        && rsa_modulus_bits(&p.n)? < MIN_RSA_BITS
    {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyingKey { key, alg })
}

/// The algorithm a JWK may verify, or `None` when the key must not be used for signatures.
fn bound_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let by_type: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => &[],
        },
        // RS256 first: the default when the JWK names no `alg` (OpenID Connect's default).
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
        // Symmetric keys would let anyone who knows them mint tokens.
        _ => &[],
    };
    match jwk.common.key_algorithm {
        Some(declared) => {
            let a = signature_algorithm(declared)?;
            by_type.contains(&a).then_some(a)
        }
        None => by_type.first().copied(),
    }
}

fn signature_algorithm(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

fn rsa_modulus_bits(n_b64: &str) -> Option<usize> {
    let n = URL_SAFE_NO_PAD.decode(n_b64.trim_end_matches('=')).ok()?;
    let first = n.iter().position(|b| *b != 0)?;
    let significant = &n[first..];
    Some((significant.len() - 1) * 8 + (8 - significant[0].leading_zeros() as usize))
}
