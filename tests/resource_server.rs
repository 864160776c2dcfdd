//! The reference resource server: stateless Bearer JWT verification (RFC 8725 attacks) and the
//! notes API, against the real auth server (whose signing key the harness shares, so tests can
//! mint tokens with arbitrary claims under the genuine key).

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cloakroom::jwt::SigningKey;
use common::apps::metrics;
use common::oidc_flow::code_flow_tokens;
use common::{Browser, OTHER_USER, Stack, StackConfig, USER};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

async fn stack() -> Stack {
    common::apps::start_auth_and_resource_server(StackConfig::new()).await
}

fn now() -> i64 {
    cloakroom::clock::now()
}

/// Claims of a valid access token for `stack`.
fn claims(stack: &Stack) -> Value {
    json!({
        "iss": stack.auth_url, "sub": "forged-user", "aud": stack.rs_url,
        "exp": now() + 300, "iat": now(), "nbf": now(), "jti": "j1", "scope": "openid notes",
        "client_id": common::CLIENT_ID,
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

async fn get(stack: &Stack, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{}{path}", stack.rs_url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn assert_refused(stack: &Stack, token: &str, why: &str) {
    let res = get(stack, "/whoami", Some(token)).await;
    assert_eq!(res.status(), 401, "{why}: must be refused");
    let www = res.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(www.contains(r#"error="invalid_token""#), "{why}: WWW-Authenticate was `{www}`");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token", "{why}");
}

#[tokio::test]
async fn a_token_from_the_code_flow_is_accepted_and_whoami_reports_its_claims() {
    let stack = stack().await;
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, "openid notes offline_access").await;
    let at = tokens["access_token"].as_str().unwrap();

    let res = get(&stack, "/whoami", Some(at)).await;

    assert_eq!(res.status(), 200);
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["iss"], stack.auth_url);
    assert_eq!(me["aud"], stack.rs_url);
    for k in ["sub", "scope", "jti", "exp"] {
        assert!(!me[k].is_null(), "whoami lacks {k}: {me}");
    }
}

#[tokio::test]
async fn a_token_minted_with_the_genuine_key_and_valid_claims_is_accepted() {
    // Proves the attack tests below fail for the mutation alone, not for the test's minting.
    let stack = stack().await;
    let token = stack.signing_key.sign("at+jwt", &claims(&stack)).unwrap();
    assert_eq!(get(&stack, "/whoami", Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_refused() {
    let stack = stack().await;
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": stack.signing_key.kid()});
    let token = format!("{}.{}.", b64(&header), b64(&claims(&stack)));
    assert_refused(&stack, &token, "alg none").await;
    let token = format!("{}.{}.", b64(&with(header, "alg", json!("None"))), b64(&claims(&stack)));
    assert_refused(&stack, &token, "alg None").await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let stack = stack().await;
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": stack.signing_key.kid()});
    let jwk = stack.signing_key.public_jwk().clone();
    let public_pem = {
        use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
        let secret = p256::SecretKey::from_pkcs8_pem(stack.signing_key.to_pem()).unwrap();
        secret.public_key().to_public_key_pem(LineEnding::LF).unwrap()
    };
    for secret in [
        public_pem.into_bytes(),
        serde_json::to_vec(&jwk).unwrap(),
        jwk["x"].as_str().unwrap().as_bytes().to_vec(),
    ] {
        let token = hs256(&header, &claims(&stack), &secret);
        assert_refused(&stack, &token, "HS256 with public key material").await;
    }
}

#[tokio::test]
async fn a_token_signed_by_a_foreign_key_under_the_genuine_kid_is_refused() {
    let stack = stack().await;
    let foreign = SigningKey::generate().unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(stack.signing_key.kid().to_string());
    header.typ = Some("at+jwt".into());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(foreign.to_pem().as_bytes()).unwrap();
    let token = jsonwebtoken::encode(&header, &claims(&stack), &key).unwrap();
    assert_refused(&stack, &token, "foreign key").await;
}

#[tokio::test]
async fn header_members_that_point_at_an_attacker_key_are_ignored() {
    let stack = stack().await;
    let attacker = SigningKey::generate().unwrap();
    let key = jsonwebtoken::EncodingKey::from_ec_pem(attacker.to_pem().as_bytes()).unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(attacker.public_jwk().clone()).unwrap();
    for kid in [attacker.kid(), stack.signing_key.kid()] {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(kid.to_string());
        header.typ = Some("at+jwt".into());
        header.jku = Some("http://127.0.0.1:1/attacker-jwks".into());
        header.jwk = Some(jwk.clone());
        header.x5u = Some("http://127.0.0.1:1/attacker.pem".into());
        let token = jsonwebtoken::encode(&header, &claims(&stack), &key).unwrap();
        assert_refused(&stack, &token, "jku/jwk/x5u header").await;
    }
}

#[tokio::test]
async fn a_token_with_a_crit_header_is_refused() {
    let stack = stack().await;
    let good = stack.signing_key.sign("at+jwt", &claims(&stack)).unwrap();
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": stack.signing_key.kid(), "crit": ["b64"], "b64": false});
    let (_, rest) = good.split_once('.').unwrap();
    assert_refused(&stack, &format!("{}.{rest}", b64(&header)), "crit").await;
}

#[tokio::test]
async fn wrong_audience_issuer_expiry_and_not_before_are_refused() {
    let stack = stack().await;
    let sign = |c: Value| stack.signing_key.sign("at+jwt", &c).unwrap();
    let cases = [
        ("wrong aud", with(claims(&stack), "aud", json!("http://127.0.0.1:1"))),
        ("aud list without us", with(claims(&stack), "aud", json!(["http://127.0.0.1:1", "x"]))),
        ("aud as object", with(claims(&stack), "aud", json!({"0": stack.rs_url}))),
        ("aud as nested array", with(claims(&stack), "aud", json!([[stack.rs_url]]))),
        ("aud array in object", with(claims(&stack), "aud", json!({"aud": [stack.rs_url]}))),
        ("aud list with a number", with(claims(&stack), "aud", json!([stack.rs_url, 1]))),
        ("iss as array", with(claims(&stack), "iss", json!([stack.auth_url]))),
        ("wrong iss", with(claims(&stack), "iss", json!("http://127.0.0.1:1"))),
        ("iss with trailing slash", with(claims(&stack), "iss", json!(format!("{}/", stack.auth_url)))),
        ("expired", with(claims(&stack), "exp", json!(now() - 120))),
        ("not yet valid", with(claims(&stack), "nbf", json!(now() + 300))),
        ("issued in the future", with(claims(&stack), "iat", json!(now() + 300))),
        ("string exp", with(claims(&stack), "exp", json!((now() + 300).to_string()))),
        ("string nbf", with(claims(&stack), "nbf", json!((now() + 300).to_string()))),
        ("numeric sub", with(claims(&stack), "sub", json!(42))),
        ("float exp", with(claims(&stack), "exp", json!(now() as f64 + 300.5))),
        ("string iat", with(claims(&stack), "iat", json!(now().to_string()))),
        ("no exp", {
            let mut c = claims(&stack);
            c.as_object_mut().unwrap().remove("exp");
            c
        }),
    ];
    for (why, c) in cases {
        assert_refused(&stack, &sign(c), why).await;
    }
}

#[tokio::test]
async fn id_tokens_and_logout_tokens_are_never_accepted_as_access_tokens() {
    let stack = stack().await;
    for typ in ["JWT", "logout+jwt", "jwt", "application/jwt"] {
        let token = stack.signing_key.sign(typ, &claims(&stack)).unwrap();
        assert_refused(&stack, &token, typ).await;
    }
    let tokens = code_flow_tokens(&Browser::new(), &stack, USER, "openid notes").await;
    assert_refused(&stack, tokens["id_token"].as_str().unwrap(), "the real ID token").await;
}

#[tokio::test]
async fn missing_malformed_or_duplicated_authorization_is_refused() {
    let stack = stack().await;
    let res = get(&stack, "/whoami", None).await;
    assert_eq!(res.status(), 401);
    let www = res.headers().get("www-authenticate").unwrap().to_str().unwrap().to_string();
    assert!(www.starts_with("Bearer"), "{www}");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_token");

    let good = stack.signing_key.sign("at+jwt", &claims(&stack)).unwrap();
    let res = reqwest::Client::new()
        .get(format!("{}/whoami", stack.rs_url))
        .header("Authorization", format!("Bearer {good}"))
        .header("Authorization", format!("Bearer {good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "two Authorization headers");
    for bad in [format!("Basic {good}"), "Bearer".to_string(), format!("Bearer {good}!"), "Bearer a.b".into()]
    {
        let res = reqwest::Client::new()
            .get(format!("{}/whoami", stack.rs_url))
            .header("Authorization", bad.as_bytes())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{bad:?}");
    }
}

#[tokio::test]
async fn a_token_without_the_notes_scope_gets_403_on_notes_but_can_call_whoami() {
    let stack = stack().await;
    let token =
        stack.signing_key.sign("at+jwt", &with(claims(&stack), "scope", json!("openid profile"))).unwrap();

    let notes = get(&stack, "/notes", Some(&token)).await;
    assert_eq!(notes.status(), 403);
    let www = notes.headers().get("www-authenticate").unwrap().to_str().unwrap().to_string();
    assert_eq!(www, r#"Bearer error="insufficient_scope", scope="notes""#);
    assert_eq!(notes.json::<Value>().await.unwrap()["error"], "insufficient_scope");
    assert_eq!(get(&stack, "/whoami", Some(&token)).await.status(), 200);
    let http = reqwest::Client::new();
    let post = http
        .post(format!("{}/notes", stack.rs_url))
        .bearer_auth(&token)
        .json(&json!({"text": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403);
    let delete =
        http.delete(format!("{}/notes/some-id", stack.rs_url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(delete.status(), 403);
}

#[tokio::test]
async fn notes_are_created_listed_and_deleted_per_user_and_isolated_between_users() {
    let stack = stack().await;
    let alice = code_flow_tokens(&Browser::new(), &stack, USER, "openid notes").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = code_flow_tokens(&Browser::new(), &stack, OTHER_USER, "openid notes").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let http = reqwest::Client::new();

    let created = http
        .post(format!("{}/notes", stack.rs_url))
        .bearer_auth(&alice)
        .json(&json!({"text": "buy milk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let note: Value = created.json().await.unwrap();
    assert_eq!(note["text"], "buy milk");
    let id = note["id"].as_str().unwrap().to_string();

    let listed: Value = get(&stack, "/notes", Some(&alice)).await.json().await.unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], id);
    assert!(listed[0]["created_at"].is_i64());
    let bobs: Value = get(&stack, "/notes", Some(&bob)).await.json().await.unwrap();
    assert_eq!(bobs, json!([]), "bob must not see alice's notes");

    let by_bob = http.delete(format!("{}/notes/{id}", stack.rs_url)).bearer_auth(&bob).send().await.unwrap();
    assert_eq!(by_bob.status(), 404, "another user's note is not found");
    let by_alice =
        http.delete(format!("{}/notes/{id}", stack.rs_url)).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(by_alice.status(), 204);
    let again = http.delete(format!("{}/notes/{id}", stack.rs_url)).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn bad_note_bodies_get_clear_4xx_answers() {
    let stack = stack().await;
    let token = stack.signing_key.sign("at+jwt", &claims(&stack)).unwrap();
    let http = reqwest::Client::new();
    let post = |body: &'static str, ct: &'static str| {
        http.post(format!("{}/notes", stack.rs_url))
            .bearer_auth(&token)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_eq!(post(r#"{"text":"x"}"#, "text/plain").await.unwrap().status(), 415);
    assert_eq!(post("{not json", "application/json").await.unwrap().status(), 400);
    assert_eq!(post(r#"{"text":""}"#, "application/json").await.unwrap().status(), 400);
    assert_eq!(post(r#"{"text":5}"#, "application/json").await.unwrap().status(), 400);
    let long = format!(r#"{{"text":"{}"}}"#, "a".repeat(2001));
    let res = http
        .post(format!("{}/notes", stack.rs_url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(long)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let huge = format!(r#"{{"text":"{}"}}"#, "a".repeat(100_000));
    let res = http
        .post(format!("{}/notes", stack.rs_url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "payload_too_large");
}

#[tokio::test]
async fn readiness_and_metrics_report_keys_store_and_token_outcomes() {
    let stack = stack().await;
    assert_eq!(reqwest::get(format!("{}/readyz", stack.rs_url)).await.unwrap().status(), 200);
    let good = stack.signing_key.sign("at+jwt", &claims(&stack)).unwrap();
    assert_eq!(get(&stack, "/whoami", Some(&good)).await.status(), 200);
    assert_eq!(get(&stack, "/whoami", Some("a.b.c")).await.status(), 401);
    assert_eq!(get(&stack, "/notes", Some(&good)).await.status(), 200);

    let metrics = metrics(&stack.rs_url).await;

    for line in [
        r#"cloakroom_rs_token_checks_total{outcome="ok"} 2"#,
        r#"cloakroom_rs_token_checks_total{outcome="invalid"} 1"#,
        r#"cloakroom_rs_jwks_fetches_total{outcome="ok"} 1"#,
        r#"cloakroom_rs_notes_requests_total{op="list",outcome="ok"} 1"#,
    ] {
        assert!(metrics.contains(line), "missing `{line}` in:\n{metrics}");
    }
}
