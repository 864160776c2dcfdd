//! Back-channel logout tokens through `cloakroom::jwt::Verifier` (`TokenType::Logout`, a fixed
//! JWKS) and `LogoutClaims::check`. Whatever is accepted must be a logout token of the issuer
//! for this client, unexpired, with the logout event, a `jti`, a `sub` or `sid`, and no `nonce`.
//!
//! Input: a mode byte, then either a raw token (mode even) or a JSON claims object that is
//! signed with the issuer's key (mode odd; the mode also picks the `typ` header). In claims,
//! `exp_in` / `iat_in` (integers) are made relative to now so valid tokens are reachable.
#![no_main]

use cloakroom::bff::backchannel::LogoutClaims;
use cloakroom::bff::session::{sid_index_key, sub_index_key};
use cloakroom::jwt::{JwksCache, SigningKey, TokenType, Verifier};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use std::sync::LazyLock;

const ISSUER: &str = "https://op.example";
const CLIENT: &str = "cloakroom-bff";
const LEEWAY: u64 = 30;
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
const TYPES: [&str; 5] = ["logout+jwt", "JWT", "application/logout+jwt", "at+jwt", "jwt"];

struct Fixture {
    key: SigningKey,
    verifier: Verifier,
    runtime: tokio::runtime::Runtime,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let key = SigningKey::from_pem(include_str!("../fuzz-only-p256.pem")).expect("fuzz key");
    let jwks = json!({ "keys": [key.public_jwk()] });
    let verifier = Verifier::new(JwksCache::fixed(ISSUER, &jwks), LEEWAY);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    Fixture { key, verifier, runtime }
});

fn payload(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("payload part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).expect("payload base64");
    serde_json::from_slice(&bytes).expect("payload JSON")
}

fn non_empty(v: &Value, name: &str) -> bool {
    v.get(name).and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let Some((&mode, rest)) = data.split_first() else { return };
    let now = cloakroom::clock::now();
    let token = if mode % 2 == 0 {
        let Ok(t) = std::str::from_utf8(rest) else { return };
        t.to_string()
    } else {
        let Ok(Value::Object(mut claims)) = serde_json::from_slice::<Value>(rest) else { return };
        for (rel, abs) in [("exp_in", "exp"), ("iat_in", "iat")] {
            if let Some(d) = claims.remove(rel).and_then(|v| v.as_i64()) {
                claims.insert(abs.into(), json!(now.saturating_add(d)));
            }
        }
        let typ = TYPES[(mode as usize / 2) % TYPES.len()];
        f.key.sign(typ, &claims).expect("sign")
    };

    let verified = f.runtime.block_on(f.verifier.verify::<LogoutClaims>(&token, CLIENT, TokenType::Logout));
    let Ok(claims) = verified else { return };
    let p = payload(&token);
    assert_eq!(p["iss"], ISSUER);
    let aud_ok = p["aud"] == CLIENT || p["aud"].as_array().is_some_and(|a| a.iter().any(|x| x == CLIENT));
    assert!(aud_ok, "audience {}", p["aud"]);
    let exp = p["exp"].as_i64().expect("integer exp");
    assert!(exp >= now - LEEWAY as i64 - 2, "expired token accepted");
    assert!(p["iat"].as_i64().expect("integer iat") <= now + LEEWAY as i64 + 2, "iat in the future");
    assert!(p["events"][EVENT].is_object(), "no logout event");
    assert!(p.get("nonce").is_none(), "nonce accepted");
    assert!(non_empty(&p, "jti"), "no jti");
    assert!(non_empty(&p, "sub") || non_empty(&p, "sid"), "neither sub nor sid");

    if let Ok(req) = claims.check(now, LEEWAY) {
        assert!(req.jti_ttl.as_secs() >= 1);
        assert!(req.jti_key.starts_with("bcl:jti:"));
        let expected = match (p["sid"].as_str(), p["sub"].as_str()) {
            (Some(sid), _) if !sid.is_empty() => sid_index_key(sid),
            (_, Some(sub)) => sub_index_key(sub),
            _ => panic!("a target without sid or sub"),
        };
        assert_eq!(req.target.index_key(), expected);
    }
});
