//! The other key families (RSA, P-384, Ed25519): each key verifies its one bound algorithm,
//! and a weak RSA key is never loaded.

use super::tests::{AUD, ISS, LEEWAY, access_claims, sign_with};
use super::*;
use crate::jwt::AccessClaims;
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

/// Test-only keys of the other supported families (generated with openssl for these tests).
const RSA_2048: &str = include_str!("../testdata/test-only-rsa2048.pem");
const RSA_1024: &str = include_str!("../testdata/test-only-rsa1024.pem");
const P384: &str = include_str!("../testdata/test-only-p384.pem");
const ED25519: &str = include_str!("../testdata/test-only-ed25519.pem");
const ED25519_X: &str = include_str!("../testdata/test-only-ed25519.x");

fn public_jwk(pem: &str, alg: Algorithm, kid: &str, declared_alg: Option<&str>) -> Value {
    let mut jwk = if alg == Algorithm::EdDSA {
        json!({"kty": "OKP", "crv": "Ed25519", "x": ED25519_X.trim()})
    } else {
        let key = match alg {
            Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
        }
        .unwrap();
        let mut jwk =
            serde_json::to_value(jsonwebtoken::jwk::Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
        jwk.as_object_mut().unwrap().remove("alg");
        jwk
    };
    jwk["kid"] = json!(kid);
    if let Some(a) = declared_alg {
        jwk["alg"] = json!(a);
    }
    jwk
}

fn verifier_for(jwks: Vec<Value>) -> Verifier {
    Verifier::new(JwksCache::fixed(ISS, &json!({ "keys": jwks })), LEEWAY)
}

fn signed(pem: &str, alg: Algorithm, kid: &str) -> String {
    sign_with(
        pem,
        alg,
        |h| {
            h.typ = Some("at+jwt".into());
            h.kid = Some(kid.into());
        },
        &access_claims(),
    )
}

#[tokio::test]
async fn an_rsa_key_without_alg_verifies_rs256_only() {
    let v = verifier_for(vec![public_jwk(RSA_2048, Algorithm::RS256, "r", None)]);
    let ok = v.verify::<AccessClaims>(&signed(RSA_2048, Algorithm::RS256, "r"), AUD, TokenType::Access).await;
    assert!(ok.is_ok(), "{ok:?}");
    for alg in [Algorithm::PS256, Algorithm::RS512] {
        let r = v.verify::<AccessClaims>(&signed(RSA_2048, alg, "r"), AUD, TokenType::Access).await;
        assert!(matches!(r, Err(JwtError::AlgorithmMismatch)), "{alg:?}: {r:?}");
    }
}

#[tokio::test]
async fn an_rsa_key_that_declares_ps256_verifies_ps256_only() {
    let v = verifier_for(vec![public_jwk(RSA_2048, Algorithm::RS256, "p", Some("PS256"))]);
    let ok = v.verify::<AccessClaims>(&signed(RSA_2048, Algorithm::PS256, "p"), AUD, TokenType::Access).await;
    assert!(ok.is_ok(), "{ok:?}");
    let r = v.verify::<AccessClaims>(&signed(RSA_2048, Algorithm::RS256, "p"), AUD, TokenType::Access).await;
    assert!(matches!(r, Err(JwtError::AlgorithmMismatch)));
}

#[tokio::test]
async fn p384_and_ed25519_keys_verify_their_one_algorithm() {
    let v = verifier_for(vec![
        public_jwk(P384, Algorithm::ES384, "e384", None),
        public_jwk(ED25519, Algorithm::EdDSA, "ed", None),
    ]);
    for (pem, alg, kid) in [(P384, Algorithm::ES384, "e384"), (ED25519, Algorithm::EdDSA, "ed")] {
        let r = v.verify::<AccessClaims>(&signed(pem, alg, kid), AUD, TokenType::Access).await;
        assert!(r.is_ok(), "{alg:?}: {r:?}");
    }
}

#[tokio::test]
async fn a_weak_rsa_key_is_never_loaded() {
    let v = verifier_for(vec![public_jwk(RSA_1024, Algorithm::RS256, "weak", None)]);
    let r =
        v.verify::<AccessClaims>(&signed(RSA_1024, Algorithm::RS256, "weak"), AUD, TokenType::Access).await;
    assert!(matches!(r, Err(JwtError::UnknownKey)), "{r:?}");
}
