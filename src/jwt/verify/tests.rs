//! Every refusal path of [`Verifier::verify`], with locally generated keys and a fixed JWKS.

use super::*;
use crate::jwt::{AccessClaims, LogoutClaims, SigningKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

pub(super) const ISS: &str = "https://issuer.example";
pub(super) const AUD: &str = "https://api.example";
pub(super) const LEEWAY: u64 = 10;

struct Fixture {
    key: SigningKey,
    verifier: Verifier,
}

fn fixture() -> Fixture {
    let key = SigningKey::generate().unwrap();
    let jwks = JwksCache::fixed(ISS, &json!({ "keys": [key.public_jwk()] }));
    Fixture { key, verifier: Verifier::new(jwks, LEEWAY) }
}

fn now() -> i64 {
    crate::clock::now()
}

pub(super) fn access_claims() -> Value {
    json!({
        "iss": ISS, "sub": "user-1", "aud": AUD, "exp": now() + 300, "iat": now(), "nbf": now(),
        "jti": "jti-1", "scope": "openid notes", "client_id": "c", "sid": "s",
    })
}

fn logout_claims() -> Value {
    json!({
        "iss": ISS, "aud": AUD, "iat": now(), "exp": now() + 120, "jti": "lj-1", "sub": "user-1",
        "sid": "s", "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn without(mut v: Value, key: &str) -> Value {
    v.as_object_mut().unwrap().remove(key);
    v
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A token whose header is exactly `header`, HMAC-signed with `secret`.
fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// Signs with `pem` under a header the test builds.
pub(super) fn sign_with(pem: &str, alg: Algorithm, edit: impl FnOnce(&mut Header), claims: &Value) -> String {
    let mut header = Header::new(alg);
    edit(&mut header);
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

impl Fixture {
    fn sign(&self, typ: &str, claims: &Value) -> String {
        self.key.sign(typ, claims).unwrap()
    }

    async fn id(&self, token: &str) -> Result<Value, JwtError> {
        self.verifier.verify::<Value>(token, AUD, TokenType::Id).await
    }

    async fn logout(&self, token: &str) -> Result<LogoutClaims, JwtError> {
        self.verifier.verify::<LogoutClaims>(token, AUD, TokenType::Logout).await
    }

    async fn access(&self, token: &str) -> Result<AccessClaims, JwtError> {
        self.verifier.verify::<AccessClaims>(token, AUD, TokenType::Access).await
    }
}

fn invalid(r: Result<impl std::fmt::Debug, JwtError>) -> InvalidReason {
    match r {
        Err(JwtError::Invalid(reason)) => reason,
        other => panic!("expected JwtError::Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_access_token_verifies_into_typed_claims() {
    let f = fixture();
    let claims = f.access(&f.sign("at+jwt", &access_claims())).await.unwrap();
    assert_eq!(claims.sub, "user-1");
    assert_eq!(claims.jti, "jti-1");
    assert!(claims.has_scope("notes"));
    assert!(!claims.has_scope("note"));
}

#[tokio::test]
async fn the_access_typ_is_matched_case_insensitively_with_or_without_the_media_type_prefix() {
    let f = fixture();
    for typ in ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+Jwt"] {
        assert!(f.access(&f.sign(typ, &access_claims())).await.is_ok(), "{typ}");
    }
}

#[tokio::test]
async fn id_tokens_logout_tokens_and_untyped_tokens_are_never_access_tokens() {
    let f = fixture();
    for typ in ["JWT", "jwt", "application/jwt", "logout+jwt", "at+jwt2", "at+JWT;x", ""] {
        let r = f.access(&f.sign(typ, &access_claims())).await;
        assert!(matches!(r, Err(JwtError::WrongType)), "{typ}: {r:?}");
    }
    let untyped = sign_with(
        f.key.to_pem(),
        Algorithm::ES256,
        |h| {
            h.typ = None;
            h.kid = Some(f.key.kid().into());
        },
        &access_claims(),
    );
    assert!(matches!(f.access(&untyped).await, Err(JwtError::WrongType)));
}

#[tokio::test]
async fn an_id_token_must_be_typed_jwt_or_untyped_and_never_at_jwt_or_logout_jwt() {
    let f = fixture();
    assert!(f.id(&f.sign("JWT", &access_claims())).await.is_ok());
    let untyped = sign_with(
        f.key.to_pem(),
        Algorithm::ES256,
        |h| {
            h.typ = None;
            h.kid = Some(f.key.kid().into());
        },
        &access_claims(),
    );
    assert!(f.id(&untyped).await.is_ok());
    for typ in ["at+jwt", "application/at+jwt", "logout+jwt"] {
        assert!(matches!(f.id(&f.sign(typ, &access_claims())).await, Err(JwtError::WrongType)), "{typ}");
    }
}

#[tokio::test]
async fn a_logout_token_needs_its_type_its_event_no_nonce_a_jti_and_a_sub_or_sid() {
    let f = fixture();
    let ok = f.logout(&f.sign("logout+jwt", &logout_claims())).await.unwrap();
    assert_eq!(ok.sid.as_deref(), Some("s"));
    assert!(f.logout(&f.sign("logout+jwt", &without(logout_claims(), "sid"))).await.is_ok());
    assert!(f.logout(&f.sign("logout+jwt", &without(logout_claims(), "sub"))).await.is_ok());

    assert!(f.logout(&f.sign("JWT", &logout_claims())).await.is_ok(), "providers that type it JWT");
    for typ in ["at+jwt", "application/at+jwt"] {
        assert!(matches!(f.logout(&f.sign(typ, &logout_claims())).await, Err(JwtError::WrongType)), "{typ}");
    }
    let cases = [
        ("no events", without(logout_claims(), "events"), InvalidReason::MissingClaim),
        ("other event", with(logout_claims(), "events", json!({"urn:x": {}})), InvalidReason::MissingClaim),
        (
            "event not an object",
            with(logout_claims(), "events", json!({BACKCHANNEL_LOGOUT_EVENT: 1})),
            InvalidReason::MissingClaim,
        ),
        ("nonce", with(logout_claims(), "nonce", json!("n")), InvalidReason::Forbidden),
        ("no jti", without(logout_claims(), "jti"), InvalidReason::MissingClaim),
        ("neither sub nor sid", without(without(logout_claims(), "sub"), "sid"), InvalidReason::MissingClaim),
        ("no iat", without(logout_claims(), "iat"), InvalidReason::ClaimTypes),
    ];
    for (why, claims, reason) in cases {
        assert_eq!(invalid(f.logout(&f.sign("logout+jwt", &claims)).await), reason, "{why}");
    }
}

#[tokio::test]
async fn alg_none_is_refused_in_every_spelling() {
    let f = fixture();
    for alg in ["none", "None", "NONE", ""] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": f.key.kid()});
        let token = format!("{}.{}.", b64(&header), b64(&access_claims()));
        assert!(matches!(f.access(&token).await, Err(JwtError::Malformed)), "{alg}");
    }
}

#[tokio::test]
async fn hs256_keyed_with_any_form_of_the_public_key_is_refused() {
    let f = fixture();
    let jwk = f.key.public_jwk().clone();
    let pem = {
        use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
        let secret = p256::SecretKey::from_pkcs8_pem(f.key.to_pem()).unwrap();
        secret.public_key().to_public_key_pem(LineEnding::LF).unwrap()
    };
    let secrets = [
        pem.clone().into_bytes(),
        pem.trim_end().as_bytes().to_vec(),
        serde_json::to_vec(&jwk).unwrap(),
        jwk["x"].as_str().unwrap().as_bytes().to_vec(),
        URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
    ];
    for secret in secrets {
        for alg in ["HS256", "HS384", "HS512"] {
            let header = json!({"alg": alg, "typ": "at+jwt", "kid": f.key.kid()});
            let r = f.access(&hs256(&header, &access_claims(), &secret)).await;
            assert!(matches!(r, Err(JwtError::AlgorithmMismatch)), "{alg}: {r:?}");
        }
    }
}

#[tokio::test]
async fn a_header_alg_other_than_the_keys_bound_alg_is_refused_before_the_signature() {
    let f = fixture();
    let good = f.sign("at+jwt", &access_claims());
    let (_, rest) = good.split_once('.').unwrap();
    for alg in ["ES384", "RS256", "PS256", "EdDSA"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": f.key.kid()});
        let token = format!("{}.{rest}", b64(&header));
        assert!(matches!(f.access(&token).await, Err(JwtError::AlgorithmMismatch)), "{alg}");
    }
}

#[tokio::test]
async fn a_foreign_key_under_the_genuine_kid_fails_the_signature_check() {
    let f = fixture();
    let foreign = SigningKey::generate().unwrap();
    let token = sign_with(
        foreign.to_pem(),
        Algorithm::ES256,
        |h| {
            h.typ = Some("at+jwt".into());
            h.kid = Some(f.key.kid().into());
        },
        &access_claims(),
    );
    assert_eq!(invalid(f.access(&token).await), InvalidReason::Signature);
}

#[tokio::test]
async fn an_unknown_or_missing_kid_is_refused_and_header_keys_are_never_used() {
    let f = fixture();
    let attacker = SigningKey::generate().unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(attacker.public_jwk().clone()).unwrap();
    let forge = |kid: Option<&str>| {
        sign_with(
            attacker.to_pem(),
            Algorithm::ES256,
            |h| {
                h.typ = Some("at+jwt".into());
                h.kid = kid.map(String::from);
                h.jku = Some("https://attacker.example/jwks".into());
                h.x5u = Some("https://attacker.example/cert.pem".into());
                h.jwk = Some(jwk.clone());
            },
            &access_claims(),
        )
    };
    assert!(matches!(f.access(&forge(Some(attacker.kid()))).await, Err(JwtError::UnknownKey)));
    assert!(matches!(f.access(&forge(None)).await, Err(JwtError::UnknownKey)));
    assert_eq!(invalid(f.access(&forge(Some(f.key.kid()))).await), InvalidReason::Signature);
}

#[tokio::test]
async fn a_crit_header_is_refused_as_we_understand_no_extension() {
    let f = fixture();
    let mut token = f.sign("at+jwt", &access_claims());
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": f.key.kid(), "crit": ["exp"]});
    let (_, rest) = token.split_once('.').unwrap();
    token = format!("{}.{rest}", b64(&header));
    assert!(matches!(f.access(&token).await, Err(JwtError::Malformed)));
}

#[tokio::test]
async fn malformed_and_oversized_tokens_are_refused_before_any_key_lookup() {
    let f = fixture();
    let good = f.sign("at+jwt", &access_claims());
    let padded = format!("{good}{}", "A".repeat(MAX_TOKEN_LEN));
    for token in ["", "a.b", "a.b.c.d", "not a token", &format!("{good}.x"), &padded] {
        assert!(matches!(f.access(token).await, Err(JwtError::Malformed)), "{token:.40}");
    }
}

#[tokio::test]
async fn wrong_issuer_or_audience_is_refused_whatever_its_shape() {
    let f = fixture();
    let cases = [
        ("wrong iss", with(access_claims(), "iss", json!("https://evil.example"))),
        ("iss with slash", with(access_claims(), "iss", json!(format!("{ISS}/")))),
        ("iss array", with(access_claims(), "iss", json!([ISS]))),
        ("wrong aud", with(access_claims(), "aud", json!("https://other.example"))),
        ("aud list without us", with(access_claims(), "aud", json!(["x", "y"]))),
        ("empty aud list", with(access_claims(), "aud", json!([]))),
        ("aud object", with(access_claims(), "aud", json!({"0": AUD}))),
        ("aud nested array", with(access_claims(), "aud", json!([[AUD]]))),
        ("aud with a number", with(access_claims(), "aud", json!([AUD, 5]))),
        ("aud prefix", with(access_claims(), "aud", json!(format!("{AUD}.evil")))),
    ];
    for (why, claims) in cases {
        let r = f.access(&f.sign("at+jwt", &claims)).await;
        assert!(matches!(r, Err(JwtError::Invalid(_))), "{why}: {r:?}");
    }
    let r = f.access(&f.sign("at+jwt", &with(access_claims(), "iss", json!("https://evil.example")))).await;
    assert_eq!(invalid(r), InvalidReason::Issuer);
    let r = f.access(&f.sign("at+jwt", &with(access_claims(), "aud", json!("https://other.example")))).await;
    assert_eq!(invalid(r), InvalidReason::Audience);
    assert!(f.access(&f.sign("at+jwt", &with(access_claims(), "aud", json!(["x", AUD])))).await.is_ok());
}

#[tokio::test]
async fn time_claims_are_enforced_with_the_configured_leeway_only() {
    let f = fixture();
    let token = |k: &str, v: i64| f.sign("at+jwt", &with(access_claims(), k, json!(v)));
    assert_eq!(invalid(f.access(&token("exp", now() - 60)).await), InvalidReason::Expired);
    assert!(f.access(&token("exp", now() - 5)).await.is_ok(), "within leeway");
    assert_eq!(invalid(f.access(&token("nbf", now() + 60)).await), InvalidReason::NotYetValid);
    assert!(f.access(&token("nbf", now() + 5)).await.is_ok(), "within leeway");
    assert_eq!(invalid(f.access(&token("iat", now() + 60)).await), InvalidReason::IssuedInFuture);
    assert!(f.access(&f.sign("at+jwt", &without(access_claims(), "nbf"))).await.is_ok(), "nbf optional");
}

#[tokio::test]
async fn wrongly_typed_or_missing_registered_claims_are_refused() {
    let f = fixture();
    let cases = [
        ("string exp", with(access_claims(), "exp", json!((now() + 300).to_string()))),
        ("string nbf", with(access_claims(), "nbf", json!(now().to_string()))),
        ("string iat", with(access_claims(), "iat", json!(now().to_string()))),
        ("float exp", with(access_claims(), "exp", json!(now() as f64 + 300.5))),
        ("numeric sub", with(access_claims(), "sub", json!(42))),
        ("object sub", with(access_claims(), "sub", json!({"id": "x"}))),
        ("empty sub", with(access_claims(), "sub", json!(""))),
        ("numeric jti", with(access_claims(), "jti", json!(7))),
        ("no exp", without(access_claims(), "exp")),
        ("no iat", without(access_claims(), "iat")),
        ("no sub", without(access_claims(), "sub")),
        ("no iss", without(access_claims(), "iss")),
        ("no aud", without(access_claims(), "aud")),
        ("no jti", without(access_claims(), "jti")),
    ];
    for (why, claims) in cases {
        let r = f.access(&f.sign("at+jwt", &claims)).await;
        assert!(matches!(r, Err(JwtError::Invalid(_))), "{why}: {r:?}");
    }
}

#[tokio::test]
async fn errors_never_show_the_token() {
    let f = fixture();
    let token = f.sign("at+jwt", &with(access_claims(), "exp", json!(now() - 600)));
    let err = f.access(&token).await.unwrap_err();
    let signature = token.rsplit('.').next().unwrap();
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(signature) && !shown.contains(&token[..20]), "{shown}");
    }
}

#[tokio::test]
async fn an_id_token_typed_jwt_is_never_accepted_as_a_logout_token() {
    let f = fixture();
    let id_token = json!({
        "iss": ISS, "sub": "user-1", "aud": AUD, "exp": now() + 300, "iat": now(), "nonce": "n", "sid": "s",
        "jti": "id-1",
    });
    assert!(f.id(&f.sign("JWT", &id_token)).await.is_ok(), "it is a valid ID token");
    assert!(f.logout(&f.sign("JWT", &id_token)).await.is_err(), "but not a logout token");
    let without_nonce = without(id_token, "nonce");
    assert!(f.logout(&f.sign("JWT", &without_nonce)).await.is_err(), "no events member, still refused");
}

#[tokio::test]
async fn a_client_assertion_may_omit_iat_names_one_of_several_audiences_and_is_never_an_access_token() {
    let f = fixture();
    let claims =
        json!({ "iss": ISS, "sub": ISS, "aud": "https://as.example/token", "exp": now() + 60, "jti": "j" });
    let token = f.sign("JWT", &claims);
    let audiences = ["https://as.example", "https://as.example/token"];
    let ok: Result<Value, _> =
        f.verifier.verify_for_any(&token, &audiences, TokenType::ClientAssertion).await;
    assert!(ok.is_ok(), "{ok:?}");
    let other: Result<Value, _> =
        f.verifier.verify_for_any(&token, &["https://other.example"], TokenType::ClientAssertion).await;
    assert!(matches!(other, Err(JwtError::Invalid(InvalidReason::Audience))), "{other:?}");
    let typed = f.sign("at+jwt", &claims);
    let wrong: Result<Value, _> =
        f.verifier.verify_for_any(&typed, &audiences, TokenType::ClientAssertion).await;
    assert!(matches!(wrong, Err(JwtError::WrongType)), "{wrong:?}");
}
