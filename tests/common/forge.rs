//! A token forger for attack tests: reads and re-signs JWTs with the auth server's genuine key
//! (the harness shares it through `signing_key_file`), a foreign key, HMAC, or no signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloakroom::jwt::SigningKey;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// base64url(JSON) without padding.
pub fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

/// The decoded header and claims of a compact JWT (no verification).
pub fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let mut next = || {
        let raw = URL_SAFE_NO_PAD.decode(it.next().expect("JWT part")).expect("base64url");
        serde_json::from_slice::<Value>(&raw).expect("JSON part")
    };
    let header = next();
    (header, next())
}

/// `token`'s claims changed by `f`, signed again with `key` under `typ`.
pub fn resign(key: &SigningKey, typ: &str, token: &str, f: impl FnOnce(&mut Value)) -> String {
    let (_, mut claims) = parts(token);
    f(&mut claims);
    key.sign(typ, &claims).expect("sign")
}

/// `header.claims.` with no signature (`alg: none` style).
pub fn unsigned(header: &Value, claims: &Value) -> String {
    format!("{}.{}.", b64(header), b64(claims))
}

/// HS256 over `header.claims` keyed with `secret`.
pub fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("hmac key");
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// `token` with its header replaced by `header` (payload and signature kept).
pub fn with_header(token: &str, header: &Value) -> String {
    let (_, rest) = token.split_once('.').expect("JWT");
    format!("{}.{rest}", b64(header))
}

/// `token` with its claims replaced by `claims` (header and the old signature kept).
pub fn with_claims(token: &str, claims: &Value) -> String {
    let mut it = token.split('.');
    let (h, _, s) = (it.next().unwrap_or(""), it.next(), it.next().unwrap_or(""));
    format!("{h}.{}.{s}", b64(claims))
}

/// `token` with its signature replaced by `sig` bytes.
pub fn with_signature(token: &str, sig: &[u8]) -> String {
    let (signed, _) = token.rsplit_once('.').expect("JWT");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
}

/// Signed (ES256) by a freshly generated key that nobody published, under `kid`.
pub fn foreign_signed(typ: &str, kid: &str, claims: &Value) -> String {
    let foreign = SigningKey::generate().expect("key");
    let key = jsonwebtoken::EncodingKey::from_ec_pem(foreign.to_pem().as_bytes()).expect("pem");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(kid.to_string());
    header.typ = Some(typ.to_string());
    jsonwebtoken::encode(&header, claims, &key).expect("encode")
}
