//! ES256 signing keys with RFC 7638 thumbprints as `kid`, published as a JWK.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Why a key could not be loaded or a token not signed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The PEM is not a PKCS#8 P-256 private key.
    #[error("signing key is not a PKCS#8 PEM P-256 private key: {0}")]
    BadKey(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A P-256 private key used to sign ES256 JWTs. `Debug` shows only the `kid`.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: serde_json::Value,
    pem: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, SigningError> {
        let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
        let pem = secret.to_pkcs8_pem(LineEnding::LF).map_err(|e| SigningError::BadKey(e.to_string()))?;
        Self::from_pem(&pem)
    }

    /// Loads a PKCS#8 PEM P-256 private key.
    pub fn from_pem(pem: &str) -> Result<Self, SigningError> {
        let secret = p256::SecretKey::from_pkcs8_pem(pem).map_err(|e| SigningError::BadKey(e.to_string()))?;
        let point = secret.public_key().to_encoded_point(false);
        let (Some(x), Some(y)) = (point.x(), point.y()) else {
            return Err(SigningError::BadKey("public point has no coordinates".into()));
        };
        let x = URL_SAFE_NO_PAD.encode(x);
        let y = URL_SAFE_NO_PAD.encode(y);
        // RFC 7638: members in lexicographic order, no whitespace.
        let thumbprint_input = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(thumbprint_input.as_bytes()));
        let encoding =
            EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| SigningError::BadKey(e.to_string()))?;
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "use": "sig", "alg": "ES256",
        });
        Ok(Self { kid, encoding, jwk, pem: pem.to_string() })
    }

    /// The key id (its JWK thumbprint).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK (for the JWKS document).
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// The private key as PKCS#8 PEM (to share it with another instance or a test).
    pub fn to_pem(&self) -> &str {
        &self.pem
    }

    /// Signs `claims` as an ES256 JWT whose header carries this `kid` and the given `typ`
    /// (`at+jwt`, `JWT`, `logout+jwt`).
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, SigningError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| SigningError::Sign(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_round_trips_through_pem_with_the_same_kid() {
        let k = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(k.to_pem()).unwrap();
        assert_eq!(k.kid(), again.kid());
        assert_eq!(k.public_jwk()["kid"], k.kid());
    }

    #[test]
    fn signed_tokens_carry_kid_and_typ_and_verify_with_the_published_jwk() {
        let k = SigningKey::generate().unwrap();
        let token = k.sign("at+jwt", &serde_json::json!({"sub": "a", "exp": 4_000_000_000u64})).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(k.kid()));
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(k.public_jwk().clone()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
        v.validate_aud = false;
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).is_ok());
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(
            SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").is_err()
        );
    }
}
