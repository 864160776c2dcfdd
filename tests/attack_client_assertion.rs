//! Attacks on `private_key_jwt` at the reference auth server (RFC 7523 §3, OpenID Connect Core
//! §9): an assertion signed by another key, for another audience, expired, living too long,
//! replayed, or naming another client is `invalid_client`; a good one passes client
//! authentication (and then meets the grant check: `invalid_grant` for a made-up token).

mod common;

use cloakroom::jwt::SigningKey;
use common::apps::start_auth_server;
use common::{CLIENT_ID, Stack, StackConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// An auth server that knows the BFF's client by `key`'s public JWK only.
async fn server_knowing(key: &SigningKey) -> Stack {
    let mut cfg = StackConfig::new();
    let client = cfg.doc["auth_server"]["clients"][0].as_object_mut().expect("client");
    client.remove("client_secret");
    client.insert("token_endpoint_auth_method".into(), json!("private_key_jwt"));
    client.insert("jwks".into(), json!({ "keys": [key.public_jwk()] }));
    start_auth_server(cfg).await
}

/// Good claims for `stack`'s client; tests change one of them.
fn claims(stack: &Stack) -> Value {
    let now = cloakroom::clock::now();
    json!({
        "iss": CLIENT_ID, "sub": CLIENT_ID, "aud": stack.auth_url,
        "jti": cloakroom::crypto::random_token(16), "iat": now, "exp": now + 60,
    })
}

/// `claims` signed with `signer`'s private key under the header `kid`.
fn sign(signer: &SigningKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_string());
    let key = EncodingKey::from_ec_pem(signer.to_pem().as_bytes()).expect("key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// A refresh-token grant with a made-up token, authenticated by `assertion`.
async fn token_call(stack: &Stack, assertion: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", "made-up"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", assertion),
    ];
    let res = reqwest::Client::new()
        .post(format!("{}/token", stack.auth_url))
        .form(&form)
        .send()
        .await
        .expect("token endpoint reachable");
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

fn assert_client_refused((status, body): (u16, Value), what: &str) {
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{what}: {body}");
}

#[tokio::test]
async fn a_well_formed_assertion_authenticates_the_client() {
    let key = SigningKey::generate().unwrap();
    let stack = server_knowing(&key).await;
    let (status, body) = token_call(&stack, &sign(&key, key.kid(), &claims(&stack))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

#[tokio::test]
async fn an_assertion_signed_by_another_key_is_refused_whatever_kid_it_names() {
    let (key, attacker) = (SigningKey::generate().unwrap(), SigningKey::generate().unwrap());
    let stack = server_knowing(&key).await;
    let c = claims(&stack);
    assert_client_refused(token_call(&stack, &sign(&attacker, key.kid(), &c)).await, "registered kid");
    assert_client_refused(token_call(&stack, &sign(&attacker, attacker.kid(), &c)).await, "own kid");
}

#[tokio::test]
async fn an_assertion_for_another_audience_expired_or_living_too_long_is_refused() {
    let key = SigningKey::generate().unwrap();
    let stack = server_knowing(&key).await;
    let now = cloakroom::clock::now();
    let cases = [
        ("aud", json!("https://another-server.example"), "another audience"),
        ("exp", json!(now - 120), "expired"),
        ("exp", json!(now + 3600), "an hour-long assertion"),
        ("sub", json!("other-client"), "sub not the client"),
        ("jti", Value::Null, "no jti"),
    ];
    for (claim, value, what) in cases {
        let mut c = claims(&stack);
        c[claim] = value;
        assert_client_refused(token_call(&stack, &sign(&key, key.kid(), &c)).await, what);
    }
}

#[tokio::test]
async fn the_token_endpoint_url_is_an_accepted_audience() {
    let key = SigningKey::generate().unwrap();
    let stack = server_knowing(&key).await;
    let mut c = claims(&stack);
    c["aud"] = json!(format!("{}/token", stack.auth_url));
    let (status, body) = token_call(&stack, &sign(&key, key.kid(), &c)).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let key = SigningKey::generate().unwrap();
    let stack = server_knowing(&key).await;
    let assertion = sign(&key, key.kid(), &claims(&stack));
    let (first, _) = token_call(&stack, &assertion).await;
    assert_eq!(first, 400, "the first use authenticates");
    assert_client_refused(token_call(&stack, &assertion).await, "the same jti again");
}

#[tokio::test]
async fn a_key_client_cannot_fall_back_to_a_secret_nor_mix_two_methods() {
    let key = SigningKey::generate().unwrap();
    let stack = server_knowing(&key).await;
    let res = reqwest::Client::new()
        .post(format!("{}/token", stack.auth_url))
        .basic_auth(CLIENT_ID, Some(stack.client_secret()))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "made-up")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a secret for a private_key_jwt client");
    let assertion = sign(&key, key.kid(), &claims(&stack));
    let res = reqwest::Client::new()
        .post(format!("{}/token", stack.auth_url))
        .basic_auth(CLIENT_ID, Some("x"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "made-up"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "two methods at once");
}
